"""TranscriptionSession end to end over loopback against ``livetx serve`` (script engine)."""

from __future__ import annotations

import itertools
import time
import wave

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import (
    ArraySource,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    QueueSource,
    TranscriptionSession,
    WavFile,
)
from livetx_widgets.events import FinalTranscript, PartialTranscript, SessionEnded
from livetx_widgets.server import Faults, LocalServer

PROVIDERS = ["deepgram", "assemblyai"]
#: AssemblyAI sessions are paced at real time (~4.5 s for the 5 s file): slow, Deepgram is not.
PACED = ["deepgram", pytest.param("assemblyai", marks=pytest.mark.slow)]


def run_session(provider, url, wav, **kw):
    session = TranscriptionSession(provider, source=WavFile(wav, realtime=False), url=url, **kw)
    session.start()
    assert session.wait(30), "a finite source must end the session by itself"
    return session


@pytest.mark.parametrize("provider", PACED)
def test_full_session_from_a_wav_file(provider, server, wav5, h):
    partials, finals = [], []
    session = run_session(
        provider, server.url, wav5, on_partial=partials.append, on_final=finals.append
    )
    transcript = session.stop()
    assert session.error is None
    assert transcript.text.split() == h.script_words
    assert [s.text for s in finals] == [s.text for s in transcript]
    assert partials and all(isinstance(p, PartialTranscript) for p in partials)
    df = transcript.to_dataframe()
    assert list(df["text"]) == [s.text for s in transcript]
    assert df["start"].is_monotonic_increasing
    assert (df["end"] >= df["start"]).all()
    # Deepgram segments start where the previous final ended; words carry the speech times.
    assert transcript[0].words[0].start == pytest.approx(0.3, abs=0.15)
    assert (df["provider"] == provider).all()
    meta = session.metadata
    assert meta.state == "stopped"
    assert meta.terminal_message is True
    assert meta.audio_sent_s == pytest.approx(5.0, abs=0.06)
    assert meta.reconnects == 0
    assert meta.finals == len(transcript)
    if provider == "assemblyai":
        assert meta.session_id  # from Begin
        assert meta.expires_at
    else:
        assert meta.request_id  # from the dg-request-id header
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stop_is_prompt_and_idempotent(provider, server, wav5, h):
    session = TranscriptionSession(
        provider, source=WavFile(wav5, realtime=True), url=server.url
    ).start()
    assert h.wait_until(lambda: session.state == "live")
    t0 = time.monotonic()
    transcript = session.stop(timeout=5)
    elapsed = time.monotonic() - t0
    # The reference scripts slept 0.5 s (Deepgram) and 5 s (AssemblyAI) unconditionally.
    assert elapsed < 2.0 * support.TIMING, elapsed
    assert session.metadata.terminal_message
    assert session.stop() is transcript
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_key_fails_fast_with_a_typed_error(provider, wav5, h):
    with LocalServer(engine="script", api_key="right-key", rate_limit=False) as srv:
        errors = []
        session = TranscriptionSession(
            provider, source=WavFile(wav5), url=srv.url, api_key="wrong-key",
            on_error=errors.append,
        ).start()  # fmt: skip
        assert session.wait(10)
    assert isinstance(session.error, AuthenticationError)
    assert errors == [session.error]
    assert session.state == "error"
    assert session.metadata.reconnects == 0  # never retried
    assert "wrong-key" not in str(session.error) and "wrong-key" not in repr(session)
    assert "wrong-key" not in repr(session.metadata)
    assert not h.livetx_threads()


def test_audio_a_queue_source_dropped_is_counted_in_the_metadata(server, h):
    """A queue source (what the browser microphone feeds) drops audio past its bound; the
    session's metadata says how much, whichever front end fed it."""
    q = QueueSource(max_backlog_s=1.0)
    q.push(np.zeros(16000 * 3, np.int16).tobytes())  # 3 s into a 1 s queue, before Start
    q.end()
    session = TranscriptionSession("deepgram", source=q, url=server.url, api_key="k").start()
    assert session.wait(30)
    meta = session.metadata
    assert meta.dropped_audio_s == pytest.approx(2.0)
    assert meta.raw["source"]["pushed_s"] == pytest.approx(3.0)
    assert meta.audio_sent_s == pytest.approx(1.0, abs=0.06)


def test_connection_refused_is_a_connect_error(wav5, h):
    with LocalServer(engine="script") as srv:
        url = srv.url  # the port is free again once the server is closed
    session = TranscriptionSession("deepgram", source=WavFile(wav5), url=url).start()
    assert session.wait(10)
    assert isinstance(session.error, ConnectError)
    assert "refused" in str(session.error)
    assert not h.livetx_threads()


def test_missing_key_is_reported_before_anything_starts(monkeypatch):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="DEEPGRAM_API_KEY"):
        TranscriptionSession("deepgram", source=ArraySource(np.zeros(1600)))


def test_unknown_option_names_the_closest_one():
    with pytest.raises(ConfigurationError, match="interim_results"):
        TranscriptionSession(
            "deepgram", url="ws://127.0.0.1:9", options={"interim_result": True},
            source=ArraySource(np.zeros(1600)),
        )  # fmt: skip


@pytest.mark.parametrize("provider", PACED)
def test_drop_mid_session_reconnects_without_losing_audio(provider, wav5, h):
    faults = Faults(drop_after_frames=40, connections=1)  # 2 s into the first connection
    with LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False) as srv:
        session = run_session(provider, srv.url, wav5)
        transcript = session.stop()
        records = srv.sessions
    assert session.error is None, session.error
    meta = session.metadata
    assert meta.reconnects == 1
    assert meta.dropped_audio_s == 0
    # Every scripted word exactly once, in order, on one continuous clock.
    assert transcript.text.split() == h.script_words
    words = list(transcript.words())
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end <= 5.1
    # The provider side got all the audio: what the first connection lost was replayed.
    assert len(records) == 2
    assert records[1].audio_bytes >= 5.0 * 32000 - records[0].audio_bytes
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PACED)
def test_missing_terminal_message_still_stops_within_timeout(provider, wav5, h):
    with LocalServer(
        engine="script", script=h.script, faults=Faults(never_terminal=True), rate_limit=False
    ) as srv:
        session = TranscriptionSession(
            provider, source=WavFile(wav5, realtime=False), url=srv.url, stop_timeout=1.0
        ).start()
        assert session.wait(15)
        t0 = time.monotonic()
        transcript = session.stop(timeout=1.0)
        assert time.monotonic() - t0 < 2.5 * support.TIMING
    assert session.metadata.terminal_message is False
    assert transcript.text.split() == h.script_words  # everything received is kept
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PACED)
def test_malformed_frames_are_survived(provider, wav5, h):
    faults = Faults(malformed_after_frames=10, unknown_type_after_frames=20)
    events = []
    with LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False) as srv:
        session = run_session(provider, srv.url, wav5, on_event=events.append)
        transcript = session.stop()
    assert session.error is None
    assert transcript.text.split() == h.script_words
    warnings = [e for e in events if type(e).__name__ == "ProviderWarning"]
    assert len(warnings) >= 2


@pytest.mark.slow  # 4-22 s: real-time audio or many sessions
def test_pause_sends_keepalive_past_the_idle_limit(wav5, h):
    """Paused for longer than Deepgram's real 10 s NET-0001 limit: KeepAlive holds it open."""
    with LocalServer(engine="script", script=h.script, rate_limit=False) as srv:
        assert srv.options.idle_timeout_s == 10.0
        session = TranscriptionSession(
            "deepgram", source=WavFile(wav5, realtime=True), url=srv.url
        ).start()
        assert h.wait_until(lambda: session.state == "live")
        session.pause()
        assert session.state == "paused"
        assert not session.wait(11.5)  # still running after the idle limit has passed
        assert session.error is None
        session.resume()
        assert session.wait(15)
        transcript = session.stop()
        records = srv.wait_idle(5)
    assert session.error is None
    assert session.metadata.keepalives_sent >= 2
    assert records[0].close_code == 1000  # closed normally, never by NET-0001
    keepalives = [c for c in records[0].controls if c == {"type": "KeepAlive"}]
    assert len(keepalives) >= 2
    assert transcript.text.split() == h.script_words
    assert session.metadata.paused_s >= 11.0


@pytest.mark.parametrize("provider", PACED)
def test_server_error_close_is_retried(provider, wav5, h):
    faults = Faults(close_after_frames=30, close_code=1011, close_reason="NET-0000", connections=1)
    with LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False) as srv:
        session = run_session(provider, srv.url, wav5)
        transcript = session.stop()
    assert session.error is None, session.error
    assert session.metadata.reconnects == 1
    assert transcript.text.split() == h.script_words


@pytest.mark.slow  # 4-22 s: real-time audio or many sessions
def test_connection_lost_for_good_keeps_what_was_transcribed(tmp_path, h):
    # The server goes away after the first sentence is final: every reconnection attempt is
    # refused, so after max_reconnects attempts without progress the session gives up. What
    # was final stays final; the words only heard as partials are kept as is_final=False.
    wav = h.tone_wav(tmp_path / "ten.wav", 10.0)
    errors = []
    with LocalServer(engine="script", script=h.script, rate_limit=False) as srv:
        session = TranscriptionSession(
            "deepgram", source=WavFile(wav, realtime=True), url=srv.url, max_reconnects=2,
            on_error=errors.append,
        ).start()  # fmt: skip
        assert h.wait_until(lambda: len(session.transcript) == 1 and session.transcript.partials)
    assert session.wait(10)
    transcript = session.stop()
    assert isinstance(session.error, ConnectionLostError)
    assert "made no progress" in str(session.error)
    assert errors == [session.error]
    assert session.metadata.reconnects == 0
    assert session.state == "error"
    finals = [s.text for s in transcript if s.is_final]
    assert finals == ["Hello there, this is the first sentence."]
    unfinished = [s.text for s in transcript if not s.is_final]
    assert len(unfinished) == 1 and unfinished[0].startswith("And")
    assert not h.livetx_threads()


def test_listener_exceptions_do_not_kill_the_session(server, wav5, h):
    def broken(_):
        raise RuntimeError("listener bug")

    errors = []
    session = run_session("deepgram", server.url, wav5, on_final=broken, on_error=errors.append)
    transcript = session.stop()
    assert session.error is None
    assert transcript.text.split() == h.script_words
    assert any("listener bug" in str(e) for e in session.listener_errors)
    assert errors and all(isinstance(e, RuntimeError) for e in errors)


def test_events_iterator_ends_with_the_session(server, wav5):
    session = TranscriptionSession("deepgram", source=WavFile(wav5, realtime=False), url=server.url)
    events = session.events()
    session.start()
    seen = list(events)  # blocks until the session ends
    session.stop()
    assert any(isinstance(e, FinalTranscript) for e in seen)
    assert isinstance(seen[-1], SessionEnded) or any(isinstance(e, SessionEnded) for e in seen)


@pytest.mark.slow  # 4-22 s: real-time audio or many sessions
def test_record_to_writes_exactly_the_audio_sent(server, wav5, tmp_path):
    out = tmp_path / "sent.wav"
    session = run_session("assemblyai", server.url, wav5, record_to=out)
    session.stop()
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        frames = w.readframes(w.getnframes())
    with wave.open(str(wav5)) as w:
        original = w.readframes(w.getnframes())
    assert frames[: len(original)] == original
    assert len(frames) - len(original) < 1600  # at most the silence that pads the last chunk
    assert len(frames) / 32000 == pytest.approx(session.metadata.audio_sent_s)


def test_context_manager_and_array_source(server, h):
    audio = np.zeros(16000 * 5, dtype=np.float32)
    with TranscriptionSession("deepgram", source=ArraySource(audio), url=server.url) as s:
        assert s.wait(20)
    assert s.transcript.text.split() == h.script_words
    assert not h.livetx_threads()


def test_a_session_runs_once(server, wav5):
    session = run_session("deepgram", server.url, wav5)
    session.stop()
    with pytest.raises(ConfigurationError, match="runs once"):
        session.start()


@pytest.mark.slow  # 4-22 s: real-time audio or many sessions
def test_realtime_paced_audio_is_accepted_by_a_rate_limited_server(wav5, h):
    """AssemblyAI refuses faster-than-real-time audio (3007): the session paces itself."""
    with LocalServer(engine="script", script=h.script, rate_limit=True) as srv:
        session = TranscriptionSession(
            "assemblyai", source=WavFile(wav5, realtime=False), url=srv.url
        ).start()
        assert session.wait(20)
        transcript = session.stop()
    assert session.error is None, session.error
    assert transcript.text.split() == h.script_words


@pytest.mark.slow  # 4-22 s: real-time audio or many sessions
def test_start_stop_cycles_leave_no_thread_and_no_socket(server, h):
    audio = np.zeros(16000, dtype=np.int16)
    before = h.open_fds()
    for i in range(100):
        session = TranscriptionSession(
            "deepgram" if i % 2 else "assemblyai", source=ArraySource(audio), url=server.url
        ).start()
        session.stop(timeout=5)
        assert session.error is None, (i, session.error)
    assert not h.livetx_threads()
    assert h.wait_until(lambda: h.open_fds() <= before + 2, timeout=5 * h.TIMING), (
        before,
        h.open_fds(),
    )


def test_local_provider_names_the_offline_engine(h):
    session = TranscriptionSession(
        "local", source=ArraySource(np.zeros(16000 * 5)), local_engine="script",
        local_options={"script": h.script},
    ).start()  # fmt: skip
    assert session.wait(20)
    transcript = session.stop()
    assert session.error is None
    assert session.metadata.provider == "local"
    assert session.metadata.model == "script (offline)"
    assert transcript.text.split() == h.script_words
    assert TranscriptionSession("local", source=ArraySource(np.zeros(10))).metadata.model == (
        "whisper tiny.en (offline)"
    )


def test_speaker_revision_reaches_the_session_transcript_and_listeners(h):
    """AssemblyAI with speaker_labels over a real socket: PENDING words are not a speaker, the
    SpeakerRevision sent before Termination re-labels them, and the revised segments go to
    the final listeners again (same segment_id)."""
    script = {
        "words": [
            {"text": "Hello", "start": 0.2, "end": 0.5, "speaker": 0},
            {"text": "world.", "start": 0.5, "end": 0.9, "speaker": 0, "pending": True},
            {"text": "Second", "start": 2.4, "end": 2.7, "speaker": 1, "pending": True},
            {"text": "turn.", "start": 2.7, "end": 3.0, "speaker": 1, "pending": True},
        ]
    }
    finals = []
    with LocalServer(engine="script", script=script, rate_limit=False) as srv:
        session = TranscriptionSession(
            "assemblyai", source=ArraySource(np.zeros(16000 * 4, dtype=np.int16)),
            url=srv.url, options={"speaker_labels": True}, pace=False, on_final=finals.append,
        ).start()  # fmt: skip
        assert session.wait(15)
    assert session.error is None, session.error
    segments = list(session.transcript)
    assert [s.text for s in segments] == ["Hello world.", "Second turn."]
    speakers = [s.speaker for s in segments]
    assert None not in speakers and "PENDING" not in speakers and "UNKNOWN" not in speakers
    assert speakers[0] != speakers[1]
    words = session.transcript.words_dataframe()
    assert "PENDING" not in set(words["speaker"].dropna())
    # Each segment was emitted as a final, and again once revised.
    ids = [s.segment_id for s in finals]
    assert len(ids) > len(set(ids))
    assert finals[-1].speaker == speakers[finals[-1].segment_id]
