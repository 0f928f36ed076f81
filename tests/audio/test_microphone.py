"""Microphone against a real PulseAudio virtual source: capture, devices, errors, silence on fd 2.

The ``pulse_mic`` fixture (conftest.py) starts a private daemon; what it plays into the null
sink is what pyaudio's ``pulse`` input hears. No part of PortAudio is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import wave

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.audio import Microphone, list_devices
from livetx_widgets.audio.microphone import quiet_stderr
from livetx_widgets.errors import AudioDeviceError, ConfigurationError

mic = pytest.mark.mic
pytestmark = pytest.mark.slow  # a PulseAudio daemon per test, 1-8 s each


def first_audio(m: Microphone, limit_s: float = 10.0) -> bytes:
    """Read until the device delivers (PortAudio's pulse route can take ~2 s to begin)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        c = m.read(timeout=0.5)
        assert c is not None
        if c:
            return c
    raise AssertionError(f"no audio from the microphone within {limit_s} s")


def envelope(x: np.ndarray, frame: int = 320) -> np.ndarray:
    """RMS per 20 ms frame."""
    n = len(x) // frame
    return np.sqrt(np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1))


def best_correlation(recorded: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """Peak normalized cross-correlation of the two envelopes over all lags, and its lag."""
    r, s = envelope(recorded), envelope(reference)
    s = (s - s.mean()) / (s.std() * len(s))
    best, lag = -1.0, 0
    for k in range(len(r) - len(s) + 1):  # bounded by the recording length
        w = r[k : k + len(s)]
        if w.std() == 0:
            continue
        c = float(np.sum(s * (w - w.mean()) / w.std()))
        if c > best:
            best, lag = c, k
    return best, lag


def read_wav(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def record_while_playing(pulse_mic, m: Microphone, wav_path, seconds: float) -> np.ndarray:
    """Everything read after the device delivered its first chunk, while the file plays."""
    first_audio(m)
    player = pulse_mic.play(wav_path)
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded by the deadline
        c = m.read(timeout=0.5)
        assert c is not None
        chunks.append(c)
    player.wait(timeout=10)
    assert player.returncode == 0, player.stderr.read()
    return np.frombuffer(b"".join(chunks), np.int16)


@mic
@pytest.mark.timeout(60)
def test_list_devices_shows_pulse_and_default(pulse_mic):
    devices = list_devices()
    names = [d.name for d in devices]
    assert "pulse" in names and "default" in names, names
    assert sum(d.is_default for d in devices) == 1
    assert all(d.max_input_channels > 0 and d.default_sample_rate > 0 for d in devices)


@mic
@pytest.mark.timeout(60)
def test_captures_what_is_played(pulse_mic, short_wav):
    reference = read_wav(short_wav)
    with Microphone(device="PULSE") as m:  # case-insensitive name match
        assert m.device_name == "pulse" and m.input_rate == 16000
        recorded = record_while_playing(pulse_mic, m, short_wav, seconds=len(reference) / 16000 + 2)
        first_chunk_s = m.chunk_ms / 1000
        assert m.position_s == pytest.approx(len(recorded) / 16000 + first_chunk_s)
    assert len(recorded) >= len(reference)
    rms = np.sqrt(np.mean(recorded.astype(np.float64) ** 2))
    assert rms > 300, f"recorded RMS {rms:.0f}: silence"
    corr, lag = best_correlation(recorded, reference)
    assert corr > 0.5, f"recording does not follow the file (envelope correlation {corr:.2f})"
    assert lag * 0.02 < 2.0, f"speech started {lag * 0.02:.2f} s after play()"


@mic
@pytest.mark.timeout(60)
def test_resampling_path_when_16k_is_not_used(pulse_mic, short_wav):
    class NativeRateMicrophone(Microphone):
        _PREFER_16K = False  # open at the device's own rate (44.1 kHz here) and convert

    reference = read_wav(short_wav)
    with NativeRateMicrophone(device="default", chunk_ms=20) as m:
        assert m.input_rate != 16000
        recorded = record_while_playing(pulse_mic, m, short_wav, seconds=len(reference) / 16000 + 2)
    corr, _ = best_correlation(recorded, reference)
    assert corr > 0.5, f"envelope correlation {corr:.2f}"


@mic
@pytest.mark.timeout(60)
def test_unknown_device_lists_the_available_ones(pulse_mic):
    m = Microphone(device="no-such-device")
    with pytest.raises(AudioDeviceError, match="no-such-device") as e:
        m.start()
    assert "'pulse'" in str(e.value) and "'default'" in str(e.value)
    with pytest.raises(AudioDeviceError, match="index 99"):
        Microphone(device=99).start()
    # PortAudio was terminated after the failures: a good device still opens.
    with Microphone(device=0) as ok:
        assert first_audio(ok)


@mic
@pytest.mark.timeout(60)
def test_opening_prints_nothing_on_fd2(pulse_mic, capfd):
    import pyaudio

    pa = pyaudio.PyAudio()  # unsilenced, as a control: PortAudio's ALSA/JACK chatter
    pa.terminate()
    control = capfd.readouterr().err

    devices = list_devices()
    with Microphone(device="pulse") as m:
        first_audio(m)
    assert devices
    assert capfd.readouterr().err == ""
    if not control:
        pytest.skip("PortAudio printed nothing even unsilenced here: the check proves little")


@mic
@pytest.mark.timeout(60)
def test_stop_from_another_thread_unblocks_read(pulse_mic):
    m = Microphone(chunk_ms=1000)
    m.start()
    try:
        timer = threading.Timer(0.2, m.stop)
        t = time.monotonic()
        timer.start()
        try:
            result = m.read(timeout=None)
        finally:
            timer.join(timeout=5)
        assert result is None
        assert time.monotonic() - t < 0.9 * support.TIMING
    finally:
        m.stop()
    m.stop()  # idempotent
    assert m.read(timeout=0) is None


@mic
@pytest.mark.timeout(60)
def test_device_vanishing_mid_stream_is_an_audio_device_error(pulse_mic):
    m = Microphone(device="pulse")
    m.start()
    try:
        first_audio(m)
        pulse_mic.kill()
        t = time.monotonic()
        with pytest.raises(AudioDeviceError, match="stopped delivering audio") as e:
            for _ in range(1000):  # bounded; the error must come within the stall timeout
                m.read(timeout=0.2)
        assert time.monotonic() - t < 10 * support.TIMING
        assert 'source="browser"' in str(e.value)
        assert m.read(timeout=0) is None  # closed after the error
    finally:
        m.stop()


@mic
@pytest.mark.timeout(60)
def test_restart_after_stop(pulse_mic):
    m = Microphone()
    for _ in range(2):
        m.start()
        m.start()  # no-op while running
        assert first_audio(m)
        m.stop()


def test_read_before_start_and_bad_device_argument():
    with pytest.raises(ConfigurationError, match="start"):
        Microphone().read(timeout=0)
    with pytest.raises(ConfigurationError, match="device"):
        Microphone(device=1.5)
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        Microphone(chunk_ms=0)


def test_missing_pyaudio_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyaudio", None)  # makes `import pyaudio` fail
    with pytest.raises(AudioDeviceError, match=r'pip install "livetx-widgets\[mic\]"') as e:
        Microphone().start()
    assert "portaudio19-dev" in str(e.value)
    with pytest.raises(AudioDeviceError, match="pip install"):
        list_devices()


def test_package_imports_without_pyaudio():
    code = (
        "import sys; sys.modules['pyaudio'] = None\n"
        "import livetx_widgets.audio as a\n"
        "from livetx_widgets import Microphone, WavFile, BrowserMicrophone\n"
        "assert Microphone is a.Microphone\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_quiet_stderr_silences_fd2_and_always_restores_it(capfd):
    os.write(2, b"before\n")
    with quiet_stderr():
        os.write(2, b"hidden\n")
    with pytest.raises(RuntimeError), quiet_stderr():
        os.write(2, b"hidden too\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"
