"""The session's lifecycle: bounded stop in every state, listeners, illegal actions, statuses.

Each test here failed on the session before the lifecycle rewrite (issue 9, defects 1, 2, 4
and 6): stop() waited for the connect timeout, stop() from a listener raised after 6 s,
pause() after stop() corrupted the state and metadata, codec bugs were swallowed.
"""

from __future__ import annotations

import logging
import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import ConnectError, TranscriptionSession, WavFile
from livetx_widgets.errors import CodecError, SessionStateError
from livetx_widgets.providers import deepgram as deepgram_codec
from livetx_widgets.server import Faults, LocalServer
from livetx_widgets.session import lifecycle

PROVIDERS = ["deepgram", "assemblyai"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stop_while_the_upgrade_hangs_is_bounded(provider, wav5, h, silent_peer):
    fds = h.open_fds()
    url, accepted = silent_peer
    session = TranscriptionSession(
        provider, source=WavFile(wav5, realtime=True), url=url, api_key="k",
        connect_timeout=30,
    ).start()  # fmt: skip
    assert h.wait_until(lambda: accepted)  # TCP is up, the upgrade is in progress
    assert session.state == "connecting"
    t0 = time.monotonic()
    session.stop(timeout=1)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.8 * support.TIMING, elapsed  # was ~connect_timeout
    assert session.state == "error"
    assert isinstance(session.error, ConnectError)
    assert "before the connection" in str(session.error)
    assert session.stop(timeout=1) is session.transcript  # idempotent
    assert not h.livetx_threads()
    session.close()  # and its kept audio (a temporary file, kept after stop for playback)
    # The client's socket is released; the peer's accepted end stays open until teardown.
    assert h.wait_until(lambda: h.open_fds() <= fds + len(accepted))


def test_connect_timeout_covers_a_hanging_upgrade(wav5, h, silent_peer):
    url, _ = silent_peer
    session = TranscriptionSession(
        "deepgram", source=WavFile(wav5), url=url, api_key="k", connect_timeout=0.5
    ).start()
    assert session.wait(5)
    assert isinstance(session.error, ConnectError)
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stop_from_a_listener_returns_at_once(provider, server, wav5, h):
    calls = []

    def on_final(segment):
        t0 = time.monotonic()
        returned = session.stop(timeout=5)
        calls.append((time.monotonic() - t0, returned, session.wait(0)))

    session = TranscriptionSession(
        provider, source=WavFile(wav5, realtime=False), url=server.url, on_final=on_final,
        pace=False,
    ).start()  # fmt: skip
    assert session.wait(15)
    assert session.error is None
    assert calls and calls[0][0] < 0.5 * support.TIMING
    assert calls[0][1] is session.transcript
    assert calls[0][2] is False  # wait() from its own thread cannot wait for itself
    assert session.state == "stopped"
    assert session.listener_errors == []
    assert not h.livetx_threads()


def test_stop_from_a_status_listener_returns_at_once(server, wav5, h):
    seen = []

    def on_status(state):
        seen.append(state)
        if state == "live":
            session.stop()

    session = TranscriptionSession(
        "deepgram", source=WavFile(wav5, realtime=True), url=server.url, on_status=on_status
    ).start()
    assert session.wait(10)
    assert seen[-2:] == ["stopping", "stopped"]
    assert session.listener_errors == []
    assert not h.livetx_threads()


def test_statuses_come_in_order_from_one_thread_and_follow_the_table(server, wav5, h):
    seen: list[tuple[str, str]] = []
    session = TranscriptionSession(
        "deepgram", source=WavFile(wav5, realtime=True), url=server.url,
        on_status=lambda s: seen.append((s, threading.current_thread().name)),
    ).start()  # fmt: skip
    assert h.wait_until(lambda: session.state == "live")
    for _ in range(5):  # pause/resume from the caller's thread, racing the session's own
        session.pause()
        session.resume()
    session.stop()
    states = [s for s, _ in seen]
    assert {name for _, name in seen} == {"livetx-control"}
    previous = "idle"
    for state in states:
        assert state in lifecycle.TRANSITIONS[previous], (previous, state)
        previous = state
    assert states[0] == "connecting" and states[-1] == "stopped"
    assert states.count("paused") == 5


def test_pause_resume_finalize_after_stop_raise_and_keep_metadata(server, wav5, h):
    session = TranscriptionSession(
        "deepgram", source=WavFile(wav5, realtime=False), url=server.url
    ).start()
    session.stop()
    paused_s = session.metadata.paused_s
    for action in (session.pause, session.resume, session.finalize):
        with pytest.raises(SessionStateError, match="ended"):
            action()
    assert session.state == "stopped"
    time.sleep(0.05)
    assert session.metadata.paused_s == paused_s == 0.0
    assert session.metadata.state == "stopped"


def test_actions_before_start(wav5):
    session = TranscriptionSession("deepgram", url="ws://127.0.0.1:9", source=WavFile(wav5))
    with pytest.raises(SessionStateError, match="start"):
        session.pause()
    session.stop()  # before start: ends it, starts nothing
    assert session.state == "stopped"
    with pytest.raises(SessionStateError, match="already started"):
        session.start()


def test_pause_while_connecting_is_kept(wav5, h, silent_peer):
    url, accepted = silent_peer
    session = TranscriptionSession("deepgram", source=WavFile(wav5), url=url, api_key="k").start()
    assert h.wait_until(lambda: accepted)
    session.pause()
    assert session.state == "connecting" and session.paused
    assert session.finalize() is False  # no connection to ask yet: a documented no-op
    session.stop(timeout=0.5)
    assert not h.livetx_threads()


def test_a_codec_bug_ends_the_session_with_a_typed_error(monkeypatch, server, wav5, h, caplog):
    def broken(codec, data):
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(deepgram_codec._HANDLERS, "Results", broken)
    caplog.set_level(logging.ERROR, logger="livetx_widgets.session")
    session = TranscriptionSession(
        "deepgram", source=WavFile(wav5, realtime=False), url=server.url
    ).start()
    assert session.wait(10)
    assert isinstance(session.error, CodecError)
    assert "bug in livetx" in str(session.error)
    assert session.metadata.reconnects == 0
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    assert not h.livetx_threads()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_warnings_are_logged_and_counted(provider, wav5, h, caplog):
    faults = Faults(malformed_after_frames=10, unknown_type_after_frames=20)
    caplog.set_level(logging.WARNING, logger="livetx_widgets.session")
    with LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False) as srv:
        session = TranscriptionSession(
            provider, source=WavFile(wav5, realtime=False), url=srv.url, pace=False
        ).start()
        assert session.wait(15)
    assert session.error is None
    meta = session.metadata
    assert meta.warnings == 2
    assert "unknown message type" in meta.last_warning
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 2
    assert session.transcript.text.split() == h.script_words


def test_pace_false_sends_assemblyai_audio_faster_than_real_time(server, h):
    audio = np.zeros(16000 * 4, dtype=np.int16)
    t0 = time.monotonic()
    session = TranscriptionSession(
        "assemblyai", source=audio, url=server.url, pace=False, realtime=False
    ).start()
    assert session.wait(10)
    assert session.error is None
    assert time.monotonic() - t0 < 3.5  # paced, 4 s takes at least 3.5 s: not a tolerance, unscaled
    assert session.metadata.audio_sent_s == pytest.approx(4.0, abs=0.1)
