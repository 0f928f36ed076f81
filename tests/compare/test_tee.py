"""The audio tee without sockets: same chunks for every branch, nobody waits for a laggard."""

from __future__ import annotations

import threading

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.audio import ArraySource
from livetx_widgets.audio.base import AudioSource
from livetx_widgets.compare.tee import FRAME_S, AudioTee, LaggingError
from livetx_widgets.errors import AudioDeviceError


def _drain(branch, limit: int = 10_000) -> list[bytes]:
    chunks = []
    for _ in range(limit):
        chunk = branch.read(timeout=1.0 * support.TIMING)
        if chunk is None:
            return chunks
        if chunk:
            chunks.append(chunk)
    raise AssertionError("the branch never ended")


def _samples(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(-20000, 20000, int(seconds * 16000), dtype=np.int16)


def test_every_branch_gets_every_chunk_in_order_from_threads():
    samples = _samples(3.0)
    tee = AudioTee(ArraySource(samples))
    branches = [tee.branch(name) for name in ("a", "b", "c")]
    tee.start()
    got: dict[str, list[bytes]] = {}
    threads = [
        threading.Thread(target=lambda b=b: got.__setitem__(b.name, _drain(b)), name=f"t-{b.name}")
        for b in branches
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10 * support.TIMING)
    assert got["a"] == got["b"] == got["c"]
    assert b"".join(got["a"]) == samples.tobytes()
    assert len(got["a"]) == 60  # 50 ms chunks: the source's own framing, read once
    assert tee.audio_s == pytest.approx(3.0)


def test_a_branch_that_does_not_read_never_holds_the_others():
    samples = _samples(2.0)
    tee = AudioTee(ArraySource(samples), max_lag_s=10)
    fast, idle = tee.branch("fast"), tee.branch("idle")
    tee.start()
    assert b"".join(_drain(fast)) == samples.tobytes()  # while `idle` read nothing
    assert idle.lag_s == pytest.approx(2.0)
    assert b"".join(_drain(idle)) == samples.tobytes()  # it still gets all of it, later


def test_a_branch_past_max_lag_is_cut_off_and_its_backlog_freed():
    tee = AudioTee(ArraySource(_samples(3.0)), max_lag_s=1.0)
    fast, slow = tee.branch("fast"), tee.branch("slow")
    tee.start()
    assert len(_drain(fast)) == 60
    with pytest.raises(LaggingError, match=r"slow fell more than 1 s behind"):
        slow.read(timeout=0)
    assert len(tee._chunks) == 0  # nobody active needs the audio: nothing kept


def test_a_stopped_branch_no_longer_pins_the_buffer():
    tee = AudioTee(ArraySource(_samples(2.0)))
    a, b = tee.branch("a"), tee.branch("b")
    tee.start()
    for _ in range(10):
        a.read(timeout=1)
    assert len(tee._chunks) == 10  # kept for b
    b.stop()
    assert b.read(timeout=0) is None
    assert len(tee._chunks) == 0


class _Failing(AudioSource):
    live = True

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def read(self, timeout=None):
        if self.good == 0:
            raise AudioDeviceError("the microphone vanished")
        self.good -= 1
        return bytes(1600)


def test_a_source_error_reaches_every_branch():
    tee = AudioTee(_Failing(good=2))
    a, b = tee.branch("a"), tee.branch("b")
    tee.start()
    assert [a.read(1), a.read(1)] == [bytes(1600)] * 2
    with pytest.raises(AudioDeviceError):
        a.read(1)
    assert [b.read(1), b.read(1)] == [bytes(1600)] * 2  # what was read before, then the error
    with pytest.raises(AudioDeviceError):
        b.read(1)


def test_the_shared_clock_and_loudness():
    samples = np.zeros(16000, np.int16)
    samples[8000:] = support.tone(0.5)
    tee = AudioTee(ArraySource(samples))
    branch = tee.branch("a")
    tee.start()
    _drain(branch)
    times = [tee.clock_at(t) for t in (0.05, 0.5, 1.0)]
    assert times[0] <= times[1] <= times[2]
    assert tee.clock_at(1.01) is None  # never read: there is no such audio
    energy = tee.energy()
    assert len(energy) == round(1.0 / FRAME_S)
    assert energy[: len(energy) // 2].max() == 0 and energy[len(energy) // 2 :].min() > 0.05


def test_loudness_read_mid_stream_covers_every_whole_frame_read_so_far():
    """Loudness is computed in batches; reading it between batches still sees every frame
    read so far, with the same values as measuring each frame on its own."""
    samples = _samples(2.5)
    tee = AudioTee(ArraySource(samples, chunk_ms=30))  # chunks that split frames
    branch = tee.branch("a")
    tee.start()
    frame = int(FRAME_S * 16000)
    for _ in range(7):  # 0.21 s: inside the first batch
        assert branch.read(timeout=1.0 * support.TIMING)
    early = tee.energy()
    assert len(early) == int(0.21 / FRAME_S)
    _drain(branch)
    energy = tee.energy()
    whole = len(samples) // frame
    want = [np.sqrt(np.mean(samples[i * frame : (i + 1) * frame].astype(np.float32) ** 2))
            / 32768.0 for i in range(whole)]  # fmt: skip
    assert len(energy) == whole
    np.testing.assert_allclose(energy, want, rtol=1e-6)
    np.testing.assert_array_equal(energy[: len(early)], early)


class _Live(AudioSource):
    live = True

    def __init__(self) -> None:
        super().__init__()
        self.stopped = threading.Event()

    def read(self, timeout=None):
        return None if self.stopped.is_set() else bytes(1600)

    def stop(self) -> None:
        self.stopped.set()


def test_the_source_is_released_once_every_branch_has_let_go():
    source = _Live()
    tee = AudioTee(source)
    a, b = tee.branch("a"), tee.branch("b")
    tee.start()
    assert a.read(1) == bytes(1600)
    a.stop()
    assert not source.stopped.is_set()  # b may still read
    b.stop()
    assert source.stopped.is_set()  # e.g. a microphone: closed without waiting for stop()
