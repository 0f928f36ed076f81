"""The resampler keeps frequency, amplitude and timing, stops aliasing, and streams exactly."""

from __future__ import annotations

from itertools import pairwise

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livetx_widgets.audio import Resampler, resample
from livetx_widgets.audio.resampler import float_to_int16, to_mono_float
from livetx_widgets.errors import ConfigurationError


def sine(freq, rate, seconds=1.0, amp=0.5):
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def amplitude_at(y: np.ndarray, freq: float, rate: int = 16000, edge: int = 2000) -> float:
    """Amplitude of the ``freq`` component of int16 ``y`` (edges cut: filter start-up)."""
    x = y[edge:-edge].astype(np.float64) / 32768
    t = np.arange(len(x)) / rate
    return 2 * abs(np.mean(x * np.exp(-2j * np.pi * freq * t)))


def peak_frequency(y: np.ndarray, rate: int = 16000) -> float:
    x = y.astype(np.float64) * np.hanning(len(y))
    spectrum = np.abs(np.fft.rfft(x, n=8 * len(x)))
    return np.argmax(spectrum) * rate / (8 * len(x))


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 32000, 44100, 48000])
def test_1khz_keeps_frequency_and_amplitude(rate):
    y = resample(sine(1000, rate), rate)
    assert y.dtype == np.int16
    assert len(y) == 16000
    assert peak_frequency(y) == pytest.approx(1000, abs=2)
    assert amplitude_at(y, 1000) == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_pass_band_reaches_7khz(rate):
    assert amplitude_at(resample(sine(7000, rate), rate), 7000) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_79khz_tone_is_attenuated(rate):
    y = resample(sine(7900, rate), rate)
    assert amplitude_at(y, 7900) < 0.5 * 1e-3  # more than 60 dB down
    assert np.sqrt(np.mean((y[2000:-2000] / 32768.0) ** 2)) < 1e-3


@pytest.mark.parametrize("freq", [8500, 9000, 12000, 20000])
def test_no_aliasing_from_above_nyquist(freq):
    # Plain decimation would fold these onto 16000 - freq (7.5, 7, 4 and 4 kHz).
    y = resample(sine(freq, 48000), 48000)
    assert amplitude_at(y, abs(16000 - freq)) < 0.5 * 1e-3
    assert np.abs(y[2000:-2000]).max() <= 40  # ~ -58 dBFS: nothing audible left


def test_zero_phase_timing():
    # A click at input time 0.1 s comes out at output time 0.1 s: no delay to correct.
    for rate in (8000, 44100, 48000):
        x = np.zeros(rate // 2, np.float32)
        x[rate // 10] = 1.0
        y = resample(x, rate)
        assert np.argmax(np.abs(y)) == 1600


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_output_length(rate):
    for n in (0, 1, 2, 3, 441, 1000, 12345):
        assert len(resample(np.zeros(n, np.float32), rate)) == -(-n * 16000 // rate)


def test_16khz_int16_is_passed_through_exactly():
    x = np.random.default_rng(1).integers(-32768, 32767, 5000, dtype=np.int16)
    assert np.array_equal(resample(x, 16000), x)
    r = Resampler(16000)
    assert np.array_equal(np.concatenate([r.process(x[:7]), r.process(x[7:]), r.flush()]), x)


def test_stereo_is_downmixed_by_averaging():
    s = sine(1000, 48000)
    assert not resample(np.stack([s, -s], axis=1), 48000).any()  # opposite channels cancel
    assert np.array_equal(resample(np.stack([s, s], axis=1), 48000), resample(s, 48000))
    i16 = (np.stack([s, s * 0], axis=1) * 32767).astype(np.int16)
    assert amplitude_at(resample(i16, 48000), 1000) == pytest.approx(0.25, rel=0.01)


def signal(rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * sine(440, rate, seconds) + rng.uniform(-0.3, 0.3, round(rate * seconds))).astype(
        np.float32
    )


def chunked(rate: int, x: np.ndarray, cuts: list[int]) -> np.ndarray:
    r = Resampler(rate)
    bounds = [0, *sorted(min(c, len(x)) for c in cuts), len(x)]
    parts = [r.process(x[a:b]) for a, b in pairwise(bounds)]
    return np.concatenate([*parts, r.flush()])


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_chunked_equals_one_shot_50ms(rate):
    x = signal(rate, 2.0, seed=rate)
    step = rate // 20
    got = chunked(rate, x, list(range(step, len(x), step)))
    want = resample(x, rate)
    assert len(got) == len(want)
    assert np.abs(got.astype(np.int32) - want).max() <= 1


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([8000, 11025, 44100, 48000]),
    cuts=st.lists(st.integers(min_value=0, max_value=9000), max_size=12),
)
def test_chunked_equals_one_shot_any_split(rate, cuts):
    x = signal(rate, 0.2, seed=7)
    got = chunked(rate, x, cuts)
    want = resample(x, rate)
    assert len(got) == len(want)
    assert np.abs(got.astype(np.int32) - want).max() <= 1


def test_flush_starts_afresh():
    x = signal(44100, 0.3, seed=3)
    r = Resampler(44100)
    first = np.concatenate([r.process(x), r.flush()])
    second = np.concatenate([r.process(x), r.flush()])
    assert np.array_equal(first, second)
    assert r.delay_samples > 0


def test_int16_and_float_inputs_agree():
    x = signal(48000, 0.2, seed=5)
    i16 = float_to_int16(x)
    assert np.abs(resample(i16, 48000).astype(np.int32) - resample(i16 / 32768.0, 48000)).max() <= 1


def test_full_scale_clips_instead_of_wrapping():
    y = resample(np.full(4800, 1.5, np.float32), 48000)
    assert y.min() >= 0 and y.max() == 32767


@pytest.mark.parametrize("bad", [0, -16000, 44100.5, "16000", None, True])
def test_bad_rates_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError, match="rate"):
        Resampler(bad)


def test_bad_arrays_are_configuration_errors():
    with pytest.raises(ConfigurationError, match=r"array\.T"):
        to_mono_float(np.zeros((2, 48000), np.float32))
    with pytest.raises(ConfigurationError, match="1-D"):
        to_mono_float(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ConfigurationError, match="sample type"):
        to_mono_float(np.zeros(10, np.complex64))
    with pytest.raises(ValueError):  # ConfigurationError is a ValueError too
        to_mono_float(np.zeros((10, 0), np.float32))


def test_realtime_factor_leaves_room_for_a_microphone():
    # 10 s of 48 kHz in well under 10 s: a live 48 kHz microphone costs a few % of a core.
    import time

    x = signal(48000, 10.0, seed=9)
    t = time.perf_counter()
    resample(x, 48000)
    assert time.perf_counter() - t < 2.0 * support.TIMING


def test_float_output_is_the_int16_output_before_rounding():
    """``as_float`` (for the offline engine, which decodes floats) is the same filter: the
    int16 output is its rounding, chunk by chunk and at the flush."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(48000 * 2) * 0.2).astype(np.float32)
    as_int, as_float = Resampler(48000), Resampler(48000, as_float=True)
    for piece in np.array_split(x, 37):
        a, f = as_int.process(piece), as_float.process(piece)
        assert f.dtype == np.float32 and len(a) == len(f)
        assert np.array_equal(a, np.clip(np.rint(f * 32768.0), -32768, 32767).astype(np.int16))
    a, f = as_int.flush(), as_float.flush()
    assert f.dtype == np.float32 and len(a) == len(f)
    assert Resampler(16000, as_float=True).process(np.zeros(5, np.int16)).dtype == np.float32
