"""Segment playback, headless: the session keeps exactly the audio it sent, bounded, on disk.

Sessions are real (loopback ``livetx serve``, script engine with known word times). The audio
is ``timecode_pcm``: every sample encodes its own index, so a span that is off by one sample,
or audio from the wrong place after a reconnect, cannot compare equal by chance.

Temporary files are looked for in a per-test ``tempfile.tempdir`` (the kept audio is an
anonymous, already unlinked file there): the process's open descriptors that point into that
folder are exactly the session's kept-audio files.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import wave
from pathlib import Path

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import (
    ArraySource,
    AudioDroppedError,
    AudioNotKeptError,
    ConfigurationError,
    QueueSource,
    SegmentNotFoundError,
    TranscriptionSession,
)
from livetx_widgets.audio.base import AudioSource
from livetx_widgets.errors import AudioDeviceError
from livetx_widgets.server import Faults, LocalServer, Trigger, timecode_pcm
from livetx_widgets.session.pcmfile import PcmFile

RATE = 16000
PROVIDERS = ["deepgram", "assemblyai"]
#: Exact word times (seconds of audio): three utterances, each endpointed by a pause.
WORDS = {
    "words": [
        {"text": "one", "start": 0.40, "end": 0.70},
        {"text": "two", "start": 0.80, "end": 1.25},
        {"text": "three", "start": 2.10, "end": 2.50},
        {"text": "four", "start": 2.60, "end": 3.05},
        {"text": "five", "start": 4.00, "end": 4.40},
        {"text": "six", "start": 4.50, "end": 4.90},
    ]
}
SECONDS = 6.0
AUDIO = np.frombuffer(timecode_pcm(SECONDS), dtype="<i2").astype(np.int16)


def source_span(start: float, end: float) -> np.ndarray:
    return AUDIO[round(start * RATE) : round(end * RATE)]


@pytest.fixture
def kept_dir(tmp_path, monkeypatch) -> Path:
    """A temp folder only this test's kept audio goes to."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def kept_files(folder: Path) -> list[int]:
    """Sizes of the files in ``folder`` this process holds open (deleted or not)."""
    sizes = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                sizes.append(os.stat(f"/proc/self/fd/{fd}").st_size)
        except OSError:
            continue
    return sizes


@pytest.fixture(scope="module")
def words_server():
    with LocalServer(engine="script", script=WORDS, rate_limit=False) as srv:
        yield srv


def run(provider: str, url: str, **kw) -> TranscriptionSession:
    kw.setdefault("source", ArraySource(AUDIO))
    session = TranscriptionSession(provider, url=url, pace=False, **kw)
    session.start()
    assert session.wait(30 * support.TIMING)
    session.stop()
    return session


# -- exact samples ---------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_segment_audio_is_the_source_at_the_segment_span(provider, words_server, kept_dir):
    session = run(provider, words_server.url)
    assert session.error is None, session.error
    segments = list(session.transcript)
    assert [s.text.lower().strip(".") for s in segments] == ["one two", "three four", "five six"]
    for seg in segments:
        samples = session.segment_audio(seg.segment_id)
        assert samples.dtype == np.int16 and samples.ndim == 1
        assert len(samples) == round(seg.end * RATE) - round(seg.start * RATE) > 0
        np.testing.assert_array_equal(samples, source_span(seg.start, seg.end))
        # The segment's span holds its words' speech (the clock is the script's clock).
        assert seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end + 1e-6
        np.testing.assert_array_equal(session.segment_audio(seg), samples)  # a Segment too
    # The whole kept clock is the source (plus the silence padding the last chunk).
    everything = session.audio_span(0, 1e6)
    np.testing.assert_array_equal(everything[: len(AUDIO)], AUDIO)
    assert not everything[len(AUDIO) :].any()
    assert len(everything) * 2 / 32000 == pytest.approx(session.metadata.audio_sent_s)
    meta = session.metadata
    assert meta.kept_audio_from_s == 0.0 and meta.kept_audio_warning is None
    assert len(kept_files(kept_dir)) == 1
    session.close()
    assert kept_files(kept_dir) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_segment_audio_is_exact_across_a_reconnect(provider, kept_dir):
    """The server drops the link after the first final; the session replays the rest on a
    new connection. Segments before and after it are the source at their span."""
    faults = Faults(drop_when=Trigger(finals=1), connections=1)
    with LocalServer(engine="script", script=WORDS, rate_limit=False, faults=faults,
                     engine_options={"timecode": True}) as srv:  # fmt: skip
        session = run(provider, srv.url)
        records = srv.sessions
    assert session.error is None, session.error
    assert session.metadata.reconnects == 1 and len(records) == 2
    segments = list(session.transcript)
    assert " ".join(s.text.lower().strip(".") for s in segments) == "one two three four five six"
    for seg in segments:
        samples = session.segment_audio(seg.segment_id)
        np.testing.assert_array_equal(samples, source_span(seg.start, seg.end))
    # After the reconnect the times are still the script's: the audio clock did not move.
    last = segments[-1]
    assert last.words[0].start == pytest.approx(4.0, abs=0.01)
    # Replayed audio is kept once: the kept clock is the source, not source + replay.
    kept = session.audio_span(0, 1e6)
    np.testing.assert_array_equal(kept[: len(AUDIO)], AUDIO)
    assert records[0].audio_bytes + records[1].audio_bytes > len(kept) * 2  # a replay happened
    session.close()


def test_audio_span_cuts_the_end_and_checks_its_arguments(words_server, kept_dir):
    session = run("deepgram", words_server.url)
    np.testing.assert_array_equal(session.audio_span(1.5, 2.25), source_span(1.5, 2.25))
    np.testing.assert_array_equal(session.audio_span(2, 2), AUDIO[:0])
    sent = session.metadata.audio_sent_s
    assert len(session.audio_span(sent - 0.5, sent + 100)) == round(0.5 * RATE)
    assert len(session.audio_span(sent + 1, sent + 2)) == 0
    for bad in [(-1, 2), (3, 2), (0, float("nan")), (0, float("inf")), ("0", 1), (True, 2)]:
        with pytest.raises(ConfigurationError):
            session.audio_span(*bad)
    session.close()


def test_unknown_segment_ids_raise_a_typed_error(words_server, kept_dir):
    session = run("deepgram", words_server.url)
    n = len(session.transcript)
    for bad in (n, -1, 10**6):
        with pytest.raises(SegmentNotFoundError, match=f"ids 0 to {n - 1}"):
            session.segment_audio(bad)
    for bad in ("0", 1.0, None, True):
        with pytest.raises(SegmentNotFoundError, match="segment_id"):
            session.segment_audio(bad)
    assert len(session.segment_audio(np.int64(0))) > 0
    session.close()
    empty = TranscriptionSession("deepgram", url=words_server.url, source=ArraySource(AUDIO))
    with pytest.raises(SegmentNotFoundError, match="no segments yet"):
        empty.segment_audio(0)
    assert len(empty.audio_span(0, 1)) == 0  # not started: nothing sent, nothing kept yet


# -- keep_audio=False, record_to --------------------------------------------------------------
def test_keep_audio_false_keeps_nothing_and_says_how_to_turn_it_on(words_server, kept_dir):
    session = TranscriptionSession(
        "deepgram", url=words_server.url, source=QueueSource(), keep_audio=False
    ).start()
    session.source.push(AUDIO[: RATE * 2])
    assert support.wait_until(lambda: session.metadata.audio_sent_s >= 2.0)
    assert kept_files(kept_dir) == []  # nothing written anywhere while it runs
    with pytest.raises(AudioNotKeptError, match="keep_audio=True"):
        session.audio_span(0, 1)
    session.stop()
    assert len(session.transcript) >= 1
    with pytest.raises(AudioNotKeptError, match="keep_audio=True"):
        session.segment_audio(0)
    assert session.metadata.kept_audio_from_s is None


def test_with_record_to_the_recording_is_read_back_and_no_copy_is_made(
    words_server, kept_dir, tmp_path
):
    out = tmp_path / "sent.wav"
    session = run("deepgram", words_server.url, record_to=out)
    assert kept_files(kept_dir) == []  # the recording is the kept audio
    for seg in session.transcript:
        np.testing.assert_array_equal(
            session.segment_audio(seg.segment_id), source_span(seg.start, seg.end)
        )
    session.close()
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    np.testing.assert_array_equal(frames[: len(AUDIO)], AUDIO)
    assert len(frames) * 2 / 32000 == pytest.approx(session.metadata.audio_sent_s)
    with pytest.raises(AudioNotKeptError, match="released"):
        session.segment_audio(0)


def test_record_to_without_keep_audio_records_but_does_not_play(words_server, tmp_path):
    out = tmp_path / "sent.wav"
    session = run("deepgram", words_server.url, record_to=out, keep_audio=False)
    with pytest.raises(AudioNotKeptError, match="keep_audio=False"):
        session.segment_audio(0)
    with wave.open(str(out)) as w:
        assert w.getnframes() * 2 / 32000 == pytest.approx(session.metadata.audio_sent_s)


# -- the bound ---------------------------------------------------------------------------------
def test_kept_audio_is_bounded_and_the_oldest_is_dropped(words_server, kept_dir):
    session = TranscriptionSession(
        "assemblyai", url=words_server.url, source=QueueSource(), pace=False,
        keep_audio_max_s=2.0,
    ).start()  # fmt: skip
    session.source.push(AUDIO)
    assert support.wait_until(lambda: len(session.transcript) == 3, 20 * support.TIMING)
    # The file never grows past the bound, however long the session.
    assert kept_files(kept_dir) == [2 * RATE * 2]
    session.stop()
    meta = session.metadata
    sent = meta.audio_sent_s
    assert meta.kept_audio_from_s == pytest.approx(sent - 2.0)
    assert "keep_audio_max_s" in meta.kept_audio_warning
    first, *_, last = session.transcript
    with pytest.raises(AudioDroppedError, match="keep_audio_max_s") as info:
        session.segment_audio(first.segment_id)
    assert isinstance(info.value, AudioNotKeptError)
    assert last.start >= sent - 2.0
    np.testing.assert_array_equal(
        session.segment_audio(last.segment_id), source_span(last.start, last.end)
    )
    np.testing.assert_array_equal(session.audio_span(sent - 2.0, sent)[: -RATE], AUDIO[
        round((sent - 2.0) * RATE) : round((sent - 1.0) * RATE)])  # fmt: skip
    session.close()
    assert kept_files(kept_dir) == []


@pytest.mark.parametrize("capacity", [6, 7 * 2, 64])
def test_the_ring_file_holds_the_newest_bytes_at_any_chunking(tmp_path, capacity):
    rng = np.random.default_rng(capacity)
    model = bytearray()
    with open(tmp_path / "ring", "w+b", buffering=0) as f:
        ring = PcmFile(f, capacity=capacity)
        for _ in range(200):
            chunk = rng.integers(0, 256, int(rng.integers(0, 3 * capacity))).astype(
                np.uint8).tobytes()  # fmt: skip
            ring.write(chunk)
            model += chunk
            assert ring.written == len(model)
            assert ring.first == max(0, len(model) - capacity)
            a = int(rng.integers(ring.first, len(model) + 1))
            b = int(rng.integers(a, len(model) + 1))
            assert ring.read(a, b) == bytes(model[a:b])
        assert os.fstat(f.fileno()).st_size <= capacity


# -- temporary files never leak -----------------------------------------------------------------
class FailingSource(AudioSource):
    live = True

    def start(self) -> None:
        raise AudioDeviceError("no such device (test)")

    def read(self, timeout=None):  # pragma: no cover - never started
        return None


def test_no_temp_file_is_left_on_any_path(words_server, kept_dir):
    # closed
    session = run("deepgram", words_server.url)
    assert len(kept_files(kept_dir)) == 1
    session.close()
    session.close()  # idempotent
    assert kept_files(kept_dir) == []
    # garbage-collected without close()
    session = run("deepgram", words_server.url)
    assert len(kept_files(kept_dir)) == 1
    del session
    gc.collect()
    assert kept_files(kept_dir) == []
    # start() fails locally
    failing = TranscriptionSession("deepgram", url=words_server.url, source=FailingSource())
    with pytest.raises(AudioDeviceError):
        failing.start()
    assert kept_files(kept_dir) == []
    # the session fails remotely (nothing listens): the audio sent so far stays until close
    with LocalServer(engine="script") as gone:
        url = gone.url
    failed = TranscriptionSession("deepgram", url=url, source=ArraySource(AUDIO)).start()
    assert failed.wait(10 * support.TIMING) and failed.error is not None
    failed.close()
    assert kept_files(kept_dir) == []
    # close() on a running session stops it first
    live = TranscriptionSession("deepgram", url=words_server.url, source=QueueSource()).start()
    assert support.wait_until(lambda: live.state == "live")
    live.close()
    assert live.state == "stopped" and kept_files(kept_dir) == []
    assert not support.livetx_threads(exclude=support.SERVER_THREADS)


def test_fifty_start_stop_cycles_leave_no_temp_file(words_server, kept_dir):
    for i in range(50):
        session = TranscriptionSession(
            "deepgram", url=words_server.url, source=ArraySource(AUDIO[: RATE // 2]), pace=False
        ).start()
        assert session.wait(10 * support.TIMING)
        session.stop()
        assert len(session.audio_span(0, 1)) == RATE // 2
        if i % 2:
            session.close()  # half closed, half only dropped
        del session
        assert len(kept_files(kept_dir)) <= 1, i  # refcounting frees a dropped session
    gc.collect()
    assert kept_files(kept_dir) == []
    assert not support.livetx_threads(exclude=support.SERVER_THREADS)


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from livetx_widgets import QueueSource, TranscriptionSession
    from livetx_widgets.server import LocalServer
    with LocalServer(engine="script", rate_limit=False) as srv:
        s = TranscriptionSession("deepgram", url=srv.url, source=QueueSource()).start()
        s.source.push(np.zeros(16000, dtype=np.int16))
        deadline = time.monotonic() + 20
        while s.metadata.audio_sent_s < 1.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        print("kept", len(s.audio_span(0, 1)), flush=True)
        if sys.argv[1] == "exit":
            s.source.end()  # the session ends by itself; no stop(), no close()
            s.wait(20)
            sys.exit(0)  # interpreter exit with the session (and its kept audio) referenced
        time.sleep(60)  # killed here
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_temp_file_survives_the_process(tmp_path, how):
    folder = tmp_path / "tmp"
    folder.mkdir()
    env = {**os.environ, "TMPDIR": str(folder), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, how], stdout=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.strip() == "kept 16000", line
        # While it runs, the kept audio has no name on disk: nothing a crash could leave.
        assert list(folder.iterdir()) == []
        if how == "kill":
            proc.kill()
        proc.wait(timeout=30 * support.TIMING)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
    assert list(folder.iterdir()) == []


# -- threads ------------------------------------------------------------------------------------
def test_reading_while_the_sender_writes_never_sees_partial_or_stale_audio(words_server, kept_dir):
    """A kernel-side reader hammers the newest audio while the sender writes it into a ring
    small enough to wrap many times: every read is exact or says it was dropped."""
    source = QueueSource()
    session = TranscriptionSession(
        "deepgram", url=words_server.url, source=source, pace=False, keep_audio_max_s=0.25
    ).start()
    results = {"exact": 0, "dropped": 0, "failures": []}
    done = threading.Event()

    def reader() -> None:
        rng = np.random.default_rng(1)
        while not done.is_set():
            sent = session.metadata.audio_sent_s
            start = max(0.0, sent - float(rng.uniform(0.0, 0.4)))
            end = start + float(rng.uniform(0.0, 0.3))
            try:
                got = session.audio_span(start, end)
            except AudioDroppedError:
                results["dropped"] += 1
                continue
            want = source_span(start, end)[: len(got)]
            if len(got) > len(want) or not np.array_equal(got, want):
                results["failures"].append((start, end, len(got)))
            else:
                results["exact"] += 1

    thread = threading.Thread(target=reader, name="test-reader")
    thread.start()
    try:
        for i in range(0, len(AUDIO), 800):  # 50 ms pushes, as a microphone would
            source.push(AUDIO[i : i + 800])
            if i % 8000 == 0:
                support.wait_until(lambda i=i: session.metadata.audio_sent_s >= i / RATE)
        source.end()
        assert session.wait(20 * support.TIMING)
    finally:
        done.set()
        thread.join(10)
    session.close()
    assert not results["failures"], results["failures"][:5]
    assert results["exact"] > 20 and results["dropped"] > 0, results


def test_a_full_disk_stops_keeping_with_a_warning_and_the_session_goes_on(
    words_server, kept_dir, monkeypatch
):
    writes = {"n": 0}
    real_write = PcmFile.write

    def write(self, pcm):
        writes["n"] += 1
        if writes["n"] > 20:  # one second of 50 ms chunks, then the disk is full
            raise OSError(28, "No space left on device")
        real_write(self, pcm)

    monkeypatch.setattr(PcmFile, "write", write)
    session = run("deepgram", words_server.url)
    assert session.error is None and len(session.transcript) == 3  # transcription went on
    meta = session.metadata
    assert "No space left" in meta.kept_audio_warning and meta.kept_audio_from_s is None
    with pytest.raises(AudioNotKeptError, match="no longer kept"):
        session.segment_audio(0)
    assert kept_files(kept_dir) == []  # the temporary file is closed at once
