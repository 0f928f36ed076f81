"""ArraySource: numpy audio of any shape, type and rate as 16 kHz mono chunks."""

from __future__ import annotations

import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.audio import ArraySource, chunk_bytes, resample
from livetx_widgets.errors import ConfigurationError


def drain(src) -> np.ndarray:
    chunks = []
    for _ in range(100_000):  # bounded
        c = src.read(timeout=5)
        if c is None:
            return np.frombuffer(b"".join(chunks), np.int16)
        chunks.append(c)
    raise AssertionError("source did not end")


def test_int16_at_16k_passes_through_exactly():
    x = np.random.default_rng(0).integers(-32768, 32767, 16000, dtype=np.int16)
    src = ArraySource(x)
    assert src.duration_s == 1.0 and not src.live and not src.realtime
    with src:
        assert np.array_equal(drain(src), x)
    assert src.position_s == pytest.approx(1.0)


def test_float_array_is_scaled_and_clipped():
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0], np.float64)
    with ArraySource(x) as src:
        got = drain(src)
    assert got.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768]


def test_stereo_48k_is_downmixed_and_resampled():
    t = np.arange(48000) / 48000
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    x = np.stack([left, np.zeros_like(left)], axis=1).astype(np.float32)
    src = ArraySource(x, sample_rate=48000, chunk_ms=20)
    assert src.duration_s == pytest.approx(1.0)
    with src:
        chunks = []
        for _ in range(1000):  # bounded
            c = src.read()
            if c is None:
                break
            chunks.append(c)
    assert {len(c) for c in chunks} == {chunk_bytes(20)}
    got = np.frombuffer(b"".join(chunks), np.int16)
    assert np.array_equal(got, resample(left.astype(np.float32) / 2, 48000))
    assert len(got) == 16000


def test_list_input_and_empty_array():
    with ArraySource([0.0, 0.25]) as src:
        assert drain(src).tolist() == [0, 8192]
    with ArraySource(np.zeros(0, np.int16)) as src:
        assert src.read() is None
        assert src.duration_s == 0


def test_realtime_array_is_paced():
    src = ArraySource(np.zeros(4800, np.int16), realtime=True)  # 0.3 s
    t = time.monotonic()
    with src:
        got = drain(src)
    assert len(got) == 4800
    assert 0.3 - 0.005 <= time.monotonic() - t < 1.0 * support.TIMING


def test_stop_from_another_thread_interrupts_a_paced_read():
    src = ArraySource(np.zeros(32000, np.int16), realtime=True, chunk_ms=1000)
    src.start()
    timer = threading.Timer(0.1, src.stop)
    t = time.monotonic()
    timer.start()
    try:
        assert src.read() is None
    finally:
        timer.join(timeout=5)
    assert time.monotonic() - t < 0.5 * support.TIMING


@pytest.mark.parametrize(
    "array,rate,match",
    [
        (np.zeros((2, 48000), np.float32), 48000, r"array\.T"),
        (np.zeros((4, 4, 4), np.float32), 16000, "1-D"),
        (np.array(["a", "b"]), 16000, "sample type"),
        (np.zeros(10, np.float32), 0, "sample_rate"),
        (np.zeros(10, np.float32), "fast", "sample_rate"),
        ([[1.0], [2.0, 3.0]], 16000, "numpy array"),
    ],
)
def test_bad_input_is_a_configuration_error(array, rate, match):
    with pytest.raises(ConfigurationError, match=match):
        ArraySource(array, rate)
