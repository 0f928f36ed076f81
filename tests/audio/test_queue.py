"""QueueSource / BrowserMicrophone: pushes of any size from any thread, read as chunks."""

from __future__ import annotations

import random
import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.audio import BrowserMicrophone, QueueSource, chunk_bytes, resample
from livetx_widgets.errors import ConfigurationError

CHUNK = chunk_bytes(50)


def ramp_bytes(n_samples: int, start: int = 0) -> bytes:
    """Distinct consecutive samples, so any reordering or loss shows."""
    return ((np.arange(start, start + n_samples) % 65536) - 32768).astype("<i2").tobytes()


def test_rechunks_pushes_of_any_size():
    data = ramp_bytes(16000)  # 1 s
    q = QueueSource()
    q.start()
    rng = random.Random(4)
    pos = 0
    while pos < len(data):  # bounded: pos grows by >= 1 each pass
        n = rng.choice([1, 3, 77, 320, 1600, 2001, 5000])
        q.push(data[pos : pos + n])  # odd byte counts included
        pos += n
    q.end()
    chunks = []
    for _ in range(100):
        c = q.read(timeout=1)
        if c is None:
            break
        chunks.append(c)
    assert b"".join(chunks) == data
    assert {len(c) for c in chunks} == {CHUNK}
    assert q.position_s == pytest.approx(1.0)
    assert q.read(timeout=0) is None


def test_backlog_and_partial_last_chunk():
    q = QueueSource()
    q.push(ramp_bytes(2000))  # before start: kept
    assert q.backlog_s == pytest.approx(0.125)
    q.start()
    assert len(q.read(timeout=0)) == CHUNK
    assert q.backlog_s == pytest.approx(0.075)
    assert len(q.read(timeout=0)) == CHUNK
    t = time.monotonic()
    assert q.read(timeout=0.05) == b""  # 25 ms queued: not a full chunk yet
    assert time.monotonic() - t >= 0.045
    assert q.backlog_s == pytest.approx(0.025)
    q.end()
    assert q.read(timeout=0) == ramp_bytes(400, start=1600)
    assert q.read(timeout=0) is None
    q.push(ramp_bytes(800))  # after end: ignored
    assert q.backlog_s == 0 and q.read(timeout=0) is None


def test_end_wakes_a_waiting_reader():
    q = QueueSource()
    q.start()
    q.push(ramp_bytes(100))
    timer = threading.Timer(0.1, q.end)
    timer.start()
    try:
        t = time.monotonic()
        assert q.read(timeout=None) == ramp_bytes(100)
        assert time.monotonic() - t < 1.0 * support.TIMING
    finally:
        timer.join(timeout=5)


def test_stop_wakes_a_waiting_reader_and_drops_later_pushes():
    q = BrowserMicrophone()
    q.start()
    timer = threading.Timer(0.1, q.stop)
    timer.start()
    try:
        t = time.monotonic()
        assert q.read(timeout=None) is None
        assert time.monotonic() - t < 1.0 * support.TIMING
    finally:
        timer.join(timeout=5)
    q.push(ramp_bytes(1600))
    assert q.read(timeout=0) is None and q.backlog_s == 0
    q.start()  # a new recording after stop starts empty
    q.push(ramp_bytes(800))
    assert q.read(timeout=1) == ramp_bytes(800)
    assert q.position_s == pytest.approx(0.05)


def test_other_rates_are_resampled_statefully():
    t = np.arange(48000) / 48000
    x = (0.4 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    q = QueueSource(sample_rate=48000)
    q.start()
    for i in range(0, len(x), 480):  # 10 ms pieces, like an AudioWorklet would send
        q.push(x[i : i + 480])
    q.end()
    got = b"".join(iter(lambda: q.read(timeout=1), None))
    want = resample(x, 48000)
    assert len(got) == 2 * len(want)
    assert np.abs(np.frombuffer(got, np.int16).astype(np.int32) - want).max() <= 1


def test_push_rate_override_and_rate_change():
    q = QueueSource()
    q.start()
    s16 = ramp_bytes(800)
    q.push(s16)  # 16 kHz: passed through
    q.push(np.zeros((4410, 2), np.int16), sample_rate=44100)  # 0.1 s stereo at 44.1 kHz
    q.push(s16)  # back to 16 kHz: the 44.1 kHz tail is flushed first
    q.end()
    got = b"".join(iter(lambda: q.read(timeout=1), None))
    assert got[: len(s16)] == s16
    assert got[-len(s16) :] == s16
    assert len(got) == 2 * len(s16) + 2 * 1600
    assert not np.frombuffer(got[len(s16) : -len(s16)], np.int16).any()


def test_backlog_bound_counts_what_it_drops():
    q = QueueSource(max_backlog_s=0.1)
    q.start()
    q.push(ramp_bytes(4800))  # 0.3 s into a 0.1 s queue
    assert q.backlog_s == pytest.approx(0.1)
    assert q.dropped_s == pytest.approx(0.2)
    assert q.pushed_s == pytest.approx(0.3)
    assert q.read(timeout=0) == ramp_bytes(800)  # the oldest audio is what was kept


def test_concurrent_producer_and_consumer_lose_nothing():
    total = 16000 * 5
    data = ramp_bytes(total)
    q = BrowserMicrophone(chunk_ms=20)
    q.start()
    errors = []

    def produce():
        try:
            rng = random.Random(1)
            pos = 0
            while pos < len(data):  # bounded
                n = rng.randrange(1, 4000)
                q.push(data[pos : pos + n])
                pos += n
                if rng.random() < 0.1:
                    time.sleep(0.001)  # let the consumer catch up now and then
            q.end()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    producer = threading.Thread(target=produce, name="test-producer")
    producer.start()
    chunks = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            c = q.read(timeout=0.2)
            if c is None:
                break
            if c:
                chunks.append(c)
    finally:
        q.stop()
        producer.join(timeout=10)
    assert not producer.is_alive() and not errors
    assert b"".join(chunks) == data
    assert q.dropped_s == 0


def test_several_producers_all_arrive():
    q = QueueSource()
    q.start()
    n_threads, pushes = 4, 200
    piece = ramp_bytes(160)
    threads = [
        threading.Thread(target=lambda: [q.push(piece) for _ in range(pushes)])
        for _ in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    q.end()
    got = b"".join(iter(lambda: q.read(timeout=1), None))
    assert len(got) == n_threads * pushes * len(piece)


def test_live_source_attributes():
    q = BrowserMicrophone()
    assert isinstance(q, QueueSource)
    assert q.live and q.realtime and q.duration_s is None and q.sample_rate == 16000
    assert "BrowserMicrophone" in repr(q)


def test_bad_use_is_a_configuration_error():
    q = QueueSource()
    with pytest.raises(ConfigurationError, match="start"):
        q.read(timeout=0)
    with pytest.raises(ConfigurationError, match="bytes or a numpy array"):
        q.push("hello")
    with pytest.raises(ConfigurationError, match="sample_rate"):
        q.push(b"\x00\x00", sample_rate=-1)
    with pytest.raises(ConfigurationError, match="max_backlog_s"):
        QueueSource(max_backlog_s=0)
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        QueueSource(chunk_ms=5000)
