"""BrowserMicrophone.receive: numbered chunks, holes filled with silence, repeats dropped,
overlaps trimmed, the capture clock kept, failures raised from read."""

from __future__ import annotations

import numpy as np
import pytest

from livetx_widgets.audio import BrowserMicrophone
from livetx_widgets.errors import AudioDeviceError


def ramp(n: int, start: int = 0) -> bytes:
    """Distinct consecutive samples (1..), so any loss, repeat or shift shows."""
    return (((np.arange(start, start + n) % 30000) + 1).astype("<i2")).tobytes()


def drain(mic: BrowserMicrophone) -> np.ndarray:
    mic.end()
    out = []
    for _ in range(10_000):  # bounded
        chunk = mic.read(timeout=1)
        if chunk is None:
            break
        out.append(chunk)
    return np.frombuffer(b"".join(out), "<i2")


def test_in_order_chunks_come_out_unchanged():
    mic = BrowserMicrophone()
    mic.start()
    for seq in range(10):
        assert mic.receive(ramp(1600, seq * 1600), seq=seq, offset=seq * 1600) == "ok"
    assert mic.last_seq == 9
    got = drain(mic)
    assert got.tobytes() == ramp(16000)
    assert mic.stats()["received_s"] == 1.0 and mic.stats()["gaps"] == 0


def test_a_hole_is_filled_with_silence_of_its_length():
    mic = BrowserMicrophone()
    mic.start()
    mic.receive(ramp(1600), seq=0, offset=0)
    assert mic.receive(ramp(1600, 4800), seq=3, offset=4800) == "held"
    got = drain(mic)  # end(): the missing chunks will not come; silence takes their place
    assert len(got) == 6400
    assert (got[1600:4800] == 0).all() and got[4800] == 4801
    stats = mic.stats()
    assert stats["gaps"] == 1 and stats["gap_s"] == 0.2 and stats["last_seq"] == 3
    assert stats["last_gap"] == {"seq": 3, "at_s": 0.1, "length_s": 0.2}


def test_chunks_are_queued_in_order_whatever_order_they_come_in():
    mic = BrowserMicrophone()
    mic.start()
    order = [0, 1, 5, 6, 2, 3, 7, 4, 8, 9]  # a burst handled newest-first in places
    results = [mic.receive(ramp(1600, s * 1600), seq=s, offset=s * 1600) for s in order]
    assert results == ["ok", "ok", "held", "held", "ok", "ok", "held", "ok", "ok", "ok"]
    assert drain(mic).tobytes() == ramp(16000)
    stats = mic.stats()
    assert stats["gaps"] == 0 and stats["reordered"] == 3 and stats["held"] == 0


def test_a_chunk_that_never_comes_is_given_up_after_the_wait():
    mic = BrowserMicrophone(reorder_wait_s=0.2)
    mic.start()
    mic.receive(ramp(1600), seq=0, offset=0)
    mic.receive(ramp(1600, 3200), seq=2, offset=3200)
    assert mic.read(timeout=0.05) is not None  # seq 0 (two 50 ms chunks)
    assert mic.read(timeout=0.05) is not None
    assert mic.read(timeout=0.05) == b""  # seq 2 waits for seq 1
    got = b""
    for _ in range(100):  # bounded: the wait is 0.2 s, reads wait up to 0.05 s
        got += mic.read(timeout=0.05) or b""
        if len(got) >= 6400:
            break
    samples = np.frombuffer(got, "<i2")
    assert (samples[:1600] == 0).all() and samples[1600] == 3201
    assert mic.receive(ramp(1600, 1600), seq=1, offset=1600) == "late"
    assert mic.stats()["too_late"] == 1 and mic.stats()["gaps"] == 1


def test_repeats_are_dropped_and_overlaps_trimmed():
    mic = BrowserMicrophone()
    mic.start()
    mic.receive(ramp(1600), seq=0, offset=0)
    assert mic.receive(ramp(1600), seq=0, offset=0) == "duplicate"
    # A chunk that starts 100 samples early: only its new part is kept.
    mic.receive(ramp(1600, 1500), seq=1, offset=1500)
    got = drain(mic)
    assert got.tobytes() == ramp(3100)
    assert mic.stats()["duplicates"] == 1


def test_without_offsets_chunks_are_assumed_contiguous():
    mic = BrowserMicrophone()
    mic.start()
    mic.receive(ramp(800), seq=0)
    mic.receive(ramp(800, 800), seq=5)
    assert drain(mic).tobytes() == ramp(1600)


def test_capture_times_map_stream_time_to_the_browser_clock():
    mic = BrowserMicrophone()
    mic.start()
    for seq in range(5):
        mic.receive(ramp(1600), seq=seq, offset=seq * 1600, captured_at=1000.0 + 0.1 * (seq + 1))
    assert mic.captured_at(0.25) == pytest.approx(1000.25)
    assert mic.captured_at(0.5) == pytest.approx(1000.5)
    assert mic.captured_at(0.6) is None  # not received yet
    assert len(mic.timeline) == 5


def test_late_arrival_is_measured_without_the_clock_offset():
    mic = BrowserMicrophone()
    mic.start()
    # Browser clock 100 s ahead of the kernel's: only the extra lateness counts.
    import time

    now = time.time()
    mic.receive(ramp(1600), seq=0, offset=0, captured_at=now + 100)
    mic.receive(ramp(1600), seq=1, offset=1600, captured_at=now + 100 - 3.0)  # 3 s late
    stats = mic.stats()
    assert 2.9 < stats["late_s"] < 3.5 and stats["max_late_s"] == stats["late_s"]


def test_fail_ends_reading_with_the_message():
    mic = BrowserMicrophone()
    mic.start()
    mic.receive(ramp(1600), seq=0)
    mic.fail("The microphone stopped delivering audio.")
    with pytest.raises(AudioDeviceError, match="stopped delivering"):
        mic.read(timeout=0.1)


def test_after_end_chunks_are_ignored_and_a_restart_starts_clean():
    mic = BrowserMicrophone()
    mic.start()
    mic.receive(ramp(1600), seq=0)
    mic.end()
    assert mic.receive(ramp(1600), seq=1) == "ignored"
    mic.stop()
    mic.start()
    assert mic.last_seq == -1 and mic.stats()["chunks"] == 0
    assert mic.receive(ramp(1600), seq=0, offset=0) == "ok"
