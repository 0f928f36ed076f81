"""Injected faults on both protocols seen from a raw client over loopback: what needs a real
connection (upgrade refusals and hangs, TCP drops, stop reading, response delays, timers on
the loop's clock) and the ``Faults`` value itself. Exactly when each trigger fires and what
each fault sends is tested without sockets in test_faults_core.py."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import socket
import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as raw_connect

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.server import Faults, ScriptEngine, Trigger, timecode_pcm
from livetx_widgets.server.faults import (
    OVERSIZED_BYTES,
    OVERSIZED_MESSAGE_TYPE,
    PYTHON_ONLY,
    UNKNOWN_MESSAGE_TYPE,
    add_fault_arguments,
    faults_from_args,
    oversized_frame,
)
from livetx_widgets.server.script_engine import read_timecode

PROTOCOLS = ["deepgram", "assemblyai"]


@contextlib.contextmanager
def connect(h, srv, protocol: str, **params):
    """Open a session; for AssemblyAI also read its Begin."""
    if protocol == "deepgram":
        with h.open_ws(h.dg_url(srv, **params)) as ws:
            yield ws
        return
    with h.open_ws(h.aai_url(srv, **params), scheme=None) as ws:
        assert h.recv_json(ws)["type"] == "Begin"
        yield ws


def send_frames(h, ws, n: int, ms: int = 100) -> None:
    for chunk in h.chunks(h.silence(n * ms / 1000), ms):
        ws.send(chunk)


def end_message(protocol: str) -> str:
    return json.dumps({"type": "CloseStream" if protocol == "deepgram" else "Terminate"})


TERMINAL = {"deepgram": "Metadata", "assemblyai": "Termination"}


def fault_server(server_factory, **faults):
    return server_factory(rate_limit=False, faults=Faults(**faults))


# ---------------------------------------------------------------------- refuse auth
def test_refuse_auth_refuses_even_the_right_key(server_factory, h):
    srv = server_factory(api_key="sekret", faults=Faults(refuse_auth=True))
    with pytest.raises(InvalidStatus) as info:
        h.open_ws(h.dg_url(srv), key="sekret")
    assert info.value.response.status_code == 401
    with h.open_ws(h.aai_url(srv), key="sekret", scheme=None) as ws:
        messages, code, _ = h.drain(ws)
    assert messages[0]["error"] == "Unauthorized Connection: Invalid API key" and code == 1008
    records = srv.wait_idle(h.TIMEOUT)
    assert [(r.faults_applied, r.faults_fired) for r in records] == [(True, ("refuse_auth",))] * 2


# ----------------------------------------------------------------------------- close
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_close_after_frames(server_factory, h, protocol):
    srv = fault_server(server_factory, close_after_frames=5, close_code=4001, close_reason="bye")
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 5)
        messages, code, reason = h.drain(ws)
    assert (code, reason) == (4001, "bye")
    errors = h.of_type(messages, "Error")
    if protocol == "assemblyai":  # the real service sends an Error frame before error closes
        assert errors == [{"type": "Error", "error_code": 4001, "error": "bye"}]
    else:
        assert errors == []
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.audio_frames, record.close_code, record.close_reason) == (5, 4001, "bye")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_close_after_seconds(server_factory, h, protocol):
    srv = fault_server(server_factory, close_after_s=h.SHORT, close_code=1011,
                       close_reason="NET-0000")  # fmt: skip
    t0 = time.monotonic()
    with connect(h, srv, protocol) as ws:
        _messages, code, reason = h.drain(ws)
    assert (code, reason) == (1011, "NET-0000")
    assert h.SHORT * 0.8 <= time.monotonic() - t0 < h.TIMEOUT


# ------------------------------------------------------------------------------ drop
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_drop_after_frames_aborts_without_a_close_frame(server_factory, h, protocol):
    srv = fault_server(server_factory, drop_after_frames=3)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 3)
        _messages, code, _ = h.drain(ws)
    assert code is None  # no close frame: the TCP connection just ended
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert record.dropped and record.close_code is None and record.audio_frames == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_drop_after_seconds(server_factory, h, protocol):
    srv = fault_server(server_factory, drop_after_s=h.SHORT)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 2)
        _messages, code, _ = h.drain(ws)
    assert code is None and srv.wait_idle(h.TIMEOUT)[0].dropped


# -------------------------------------------------------------------------- terminal
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_terminal_message_delayed(server_factory, h, protocol):
    srv = fault_server(server_factory, terminal_delay_s=2 * h.SHORT)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 20)
        t0 = time.monotonic()
        ws.send(end_message(protocol))
        messages = h.until(ws, lambda m: m.get("type") == TERMINAL[protocol])
        waited = time.monotonic() - t0
        _, code, _ = h.drain(ws)
    assert waited >= 2 * h.SHORT * 0.9 and code == 1000
    assert len([m for m in messages if m.get("is_final") or m.get("end_of_turn")]) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_terminal_message_never_sent_and_never_closed(server_factory, h, protocol):
    srv = fault_server(server_factory, never_terminal=True)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 20)  # "Hello world." is final at 1.4 s
        ws.send(end_message(protocol))
        h.until(ws, lambda m: m.get("is_final") or m.get("end_of_turn"))
        h.assert_still_open(ws, 2 * h.SHORT)  # no terminal message, no close
        record = srv.sessions[0]
        assert record.terminal_withheld and not record.done and record.close_code is None
    # The client gave up and closed: now the server is done with it.
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert TERMINAL[protocol] not in record.sent and record.close_code is None


# ------------------------------------------------------------------------- garbage
# --------------------------------------------------------------------------- delay
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_response_is_slowed(server_factory, h, protocol):
    delay_ms = 100
    srv = fault_server(server_factory, response_delay_ms=delay_ms)
    t0 = time.monotonic()
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 20)
        ws.send(end_message(protocol))
        messages, code, _ = h.drain(ws)
    sent = len(messages) + (1 if protocol == "assemblyai" else 0)  # + Begin
    assert code == 1000 and sent >= 2
    assert time.monotonic() - t0 >= sent * delay_ms / 1000 * 0.9


# ---------------------------------------------------------------------------- scope
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_faults_apply_to_the_first_k_connections_only(server_factory, h, protocol):
    srv = fault_server(server_factory, drop_after_frames=2, connections=1)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 2)
        assert h.drain(ws)[1] is None  # connection 1: dropped
    with connect(h, srv, protocol) as ws:  # connection 2: a normal session
        send_frames(h, ws, 20)
        ws.send(end_message(protocol))
        messages, code, _ = h.drain(ws)
    assert code == 1000 and messages[-1]["type"] == TERMINAL[protocol]
    records = srv.wait_idle(h.TIMEOUT)
    assert [(r.index, r.faults_applied, r.dropped) for r in records] == [
        (1, True, True), (2, False, False)
    ]  # fmt: skip


def test_set_faults_applies_to_the_next_connections(server, h):
    server.set_faults(Faults(refuse_auth=True, connections=2))
    for _ in range(2):
        with pytest.raises(InvalidStatus):
            h.open_ws(h.dg_url(server))
    with h.open_ws(h.dg_url(server)) as ws:
        ws.send(b"")
        assert h.drain(ws)[1] == 1000
    server.set_faults(None)
    assert [r.http_status for r in server.wait_idle(h.TIMEOUT)] == [401, 401, 101]


# ------------------------------------------------------------------------ the value
@pytest.mark.parametrize(
    "kwargs",
    [
        {"close_after_frames": 0},
        {"drop_after_frames": 1.5},
        {"close_after_s": -1},
        {"terminal_delay_s": -0.1},
        {"connections": -1},
        {"response_delay_ms": -5},
        {"close_code": 1006},
        {"close_code": 999},
        {"close_reason": "x" * 124},
    ],
)
def test_bad_fault_values_are_configuration_errors(kwargs):
    with pytest.raises(ConfigurationError):
        Faults(**kwargs)


def test_cli_flags_build_every_fault():
    parser = argparse.ArgumentParser()
    add_fault_arguments(parser)
    assert faults_from_args(parser.parse_args([])) == Faults()
    args = parser.parse_args([
        "--connect-hang", "--refuse-status", "503",
        "--refuse-auth", "--close-after-seconds", "1.5", "--close-after-frames", "7",
        "--close-code", "4002", "--close-reason", "gone", "--no-close-error-frame",
        "--drop-after-seconds", "2", "--drop-after-frames", "9", "--terminal-delay", "0.5",
        "--no-terminal", "--malformed-after-frames", "3", "--unknown-type-after-frames", "4",
        "--response-delay-ms", "25", "--fault-connections", "1",
        "--drop-when", "finals:1", "--close-when", "end", "--unrequested-terminal-when",
        "idle:0.5", "--stop-reading-when", "frames:2", "--malformed-when", "seconds:0",
        "--unknown-type-when", "finals:2", "--oversized-when", "end",
    ])  # fmt: skip
    faults = faults_from_args(args)
    assert faults == Faults(
        connect_hang=True, refuse_status=503,
        refuse_auth=True, close_after_s=1.5, close_after_frames=7, close_code=4002,
        close_reason="gone", close_error_frame=False, drop_after_s=2.0, drop_after_frames=9,
        terminal_delay_s=0.5, never_terminal=True, malformed_after_frames=3,
        unknown_type_after_frames=4, response_delay_ms=25.0, connections=1,
        drop_when=Trigger(finals=1), close_when=Trigger(on_end=True),
        unrequested_terminal_when=Trigger(idle_s=0.5), stop_reading_when=Trigger(frames=2),
        malformed_when=Trigger(seconds=0), unknown_type_when=Trigger(finals=2),
        oversized_when=Trigger(on_end=True),
    )  # fmt: skip
    # Every field but the Python-only ones has a flag: none is left at its default above.
    defaults = Faults()
    assert all(getattr(faults, f.name) != getattr(defaults, f.name)
               for f in dataclasses.fields(Faults) if f.name not in PYTHON_ONLY)  # fmt: skip
    with pytest.raises(SystemExit):  # argparse reports a bad trigger as a usage error
        parser.parse_args(["--drop-when", "sometimes"])


# -------------------------------------------------------------------------- triggers
@pytest.mark.parametrize(
    ("text", "trigger"),
    [("frames:3", Trigger(frames=3)), ("seconds:0", Trigger(seconds=0)),
     ("seconds:1.5", Trigger(seconds=1.5)), ("finals:2", Trigger(finals=2)),
     ("idle:0.3", Trigger(idle_s=0.3)), ("end", Trigger(on_end=True))],
)  # fmt: skip
def test_trigger_text_round_trips(text, trigger):
    assert Trigger.parse(text) == trigger
    assert str(trigger) == text


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"frames": 1, "seconds": 1}, {"frames": 0}, {"finals": True}, {"seconds": -1},
     {"idle_s": float("nan")}, {"frames": 1.5}],
)  # fmt: skip
def test_bad_triggers_are_configuration_errors(kwargs):
    with pytest.raises(ConfigurationError):
        Trigger(**kwargs)


@pytest.mark.parametrize("text", ["", "frames", "frames:x", "end:1", "later:2", "idle:-1"])
def test_bad_trigger_text_is_a_configuration_error(text):
    with pytest.raises(ConfigurationError):
        Trigger.parse(text)


def test_shorthands_and_triggers_make_one_schedule():
    faults = Faults(drop_after_frames=3, close_when=Trigger(finals=1), malformed_after_frames=2)
    assert faults.schedule() == (
        ("malformed", Trigger(frames=2)), ("close", Trigger(finals=1)), ("drop", Trigger(frames=3))
    )  # fmt: skip


def test_then_chains_faults_for_later_connections():
    second = Faults(refuse_status=503, connections=2)
    faults = Faults(drop_after_frames=1, connections=1, then=second)
    assert faults.for_connection(1) is faults
    assert faults.for_connection(2) is second and faults.for_connection(3) is second
    assert faults.for_connection(4) == Faults()
    with pytest.raises(ConfigurationError, match="connections"):
        Faults(then=second)


# --------------------------------------------------------------------- at the upgrade
REFUSAL_STATUSES = [401, 403, 429, 500, 503]


@pytest.mark.parametrize("status", REFUSAL_STATUSES)
def test_refuse_status_deepgram_body(server_factory, h, status):
    srv = server_factory(faults=Faults(refuse_status=status))
    with pytest.raises(InvalidStatus) as info:
        h.open_ws(h.dg_url(srv))
    response = info.value.response
    body = json.loads(response.body)
    assert response.status_code == status
    assert set(body) == {"err_code", "err_msg", "request_id"}
    assert response.headers["dg-error"] == body["err_msg"]
    assert response.headers["dg-request-id"] == body["request_id"]
    if status == 401:  # exactly what a wrong key gets
        assert body["err_code"] == "INVALID_AUTH"
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert record.http_status == status and record.faults_fired == ("refuse_status",)


@pytest.mark.parametrize("status", REFUSAL_STATUSES)
def test_refuse_status_assemblyai_body(server_factory, h, status):
    srv = server_factory(faults=Faults(refuse_status=status))
    with pytest.raises(InvalidStatus) as info:
        h.open_ws(h.aai_url(srv), scheme=None)
    response = info.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert set(json.loads(response.body)) == {"error"}


def test_refuse_status_must_be_an_http_error():
    for bad in (200, 101, 600, "503", True):
        with pytest.raises(ConfigurationError):
            Faults(refuse_status=bad)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connect_hang_never_answers_until_the_client_leaves(server_factory, h, protocol):
    srv = server_factory(faults=Faults(connect_hang=True))
    address = h.dg_url(srv) if protocol == "deepgram" else h.aai_url(srv)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        raw_connect(address, open_timeout=h.SHORT)
    assert time.monotonic() - t0 >= h.SHORT * 0.9  # it waited: TCP was accepted, no answer
    record = srv.wait_idle(h.TIMEOUT)[0]  # the server noticed the client left
    assert record.faults_fired == ("connect_hang",) and record.http_status is None


def test_connect_hang_is_answered_503_when_the_server_stops(server_factory, h):
    srv = server_factory(faults=Faults(connect_hang=True))
    outcome: dict = {}

    def client() -> None:
        try:
            raw_connect(h.dg_url(srv), open_timeout=h.TIMEOUT).close()
        except Exception as exc:  # the result is checked below
            outcome["error"] = exc

    thread = threading.Thread(target=client)
    thread.start()
    srv.wait_for(lambda records: records and records[0].faults_fired, h.TIMEOUT)
    t0 = time.monotonic()
    srv.close()
    thread.join(h.TIMEOUT)
    assert not thread.is_alive() and time.monotonic() - t0 < h.TIMEOUT
    assert isinstance(outcome["error"], InvalidStatus)
    assert outcome["error"].response.status_code == 503


def test_a_chain_drops_then_refuses_then_serves(server_factory, h):
    faults = Faults(drop_after_frames=1, connections=1,
                    then=Faults(refuse_status=503, connections=1))  # fmt: skip
    srv = server_factory(rate_limit=False, faults=faults)
    with connect(h, srv, "deepgram") as ws:
        send_frames(h, ws, 1)
        assert h.drain(ws)[1] is None
    with pytest.raises(InvalidStatus):
        h.open_ws(h.dg_url(srv))
    with connect(h, srv, "deepgram") as ws:
        ws.send(b"")
        assert h.drain(ws)[1] == 1000
    records = srv.wait_idle(h.TIMEOUT)
    assert [(r.dropped, r.http_status) for r in records] == [(True, 101), (False, 503),
                                                               (False, 101)]  # fmt: skip


# ---------------------------------------------------------------- triggers in a session
def final_of(protocol: str, message: dict) -> bool:
    if protocol == "deepgram":
        return message.get("type") == "Results" and message["is_final"]
    return message.get("type") == "Turn" and message["end_of_turn"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_finals_trigger_fires_right_after_the_first_final(server_factory, h, protocol):
    srv = fault_server(server_factory, drop_when=Trigger(finals=1))
    with connect(h, srv, protocol) as ws:
        h.send_all(ws, h.chunks(h.silence(4.0), 100))  # the first final is due at 1.4 s
        messages, code, _ = h.drain(ws)
    assert code is None  # dropped
    assert final_of(protocol, messages[-1])  # the final went out, then nothing
    assert len([m for m in messages if final_of(protocol, m)]) == 1
    assert srv.wait_idle(h.TIMEOUT)[0].faults_fired == ("drop",)


# AssemblyAI in the full suite only: triggers are evaluated in the shared ProtocolCore
@pytest.mark.parametrize("protocol", ["deepgram", pytest.param("assemblyai",
                                                               marks=pytest.mark.slow)])
def test_idle_trigger_fires_after_a_pause_in_the_audio(server_factory, h, protocol):
    srv = fault_server(server_factory, close_when=Trigger(idle_s=2 * h.SHORT),
                       close_code=1011, close_reason="NET-0000")  # fmt: skip
    with connect(h, srv, protocol) as ws:
        h.assert_still_open(ws, 3 * h.SHORT)  # no audio yet: the idle clock has not started
        send_frames(h, ws, 2)
        t0 = time.monotonic()
        ws.send(json.dumps({"type": "KeepAlive"}))  # only audio counts, not KeepAlive
        _messages, code, reason = h.drain(ws)
    assert (code, reason) == (1011, "NET-0000")
    assert time.monotonic() - t0 >= 2 * h.SHORT * 0.8


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stop_reading_fills_the_clients_buffers(server_factory, h, protocol):
    srv = fault_server(server_factory, stop_reading_when=Trigger(frames=2))
    frame = h.silence(0.1)
    sent = []
    with connect(h, srv, protocol) as ws:

        def flood() -> None:
            with contextlib.suppress(Exception):  # ends when the socket is shut down below
                for _ in range(20_000):  # 2 000 s of audio: far more than any TCP buffer
                    ws.send(frame)
                    sent.append(1)

        thread = threading.Thread(target=flood)
        thread.start()
        # The sends block once the buffers are full: the count stops growing.
        counts = []
        for _ in range(200):
            counts.append(len(sent))
            if len(counts) > 5 and counts[-1] == counts[-6]:
                break
            time.sleep(0.05)  # sampling a count another thread owns; no event exists for it
        assert counts[-1] == counts[-6] < 20_000, counts[-10:]
        assert srv.sessions[0].audio_frames == 2  # nothing read after the trigger
        assert srv.sessions[0].faults_fired == ("stop_reading",)
        ws.socket.shutdown(socket.SHUT_RDWR)
        thread.join(h.TIMEOUT)
        assert not thread.is_alive()
    t0 = time.monotonic()
    srv.close()  # a peer that does not read is aborted, not left to its close timeout
    assert time.monotonic() - t0 < 2.0 * support.TIMING


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oversized_frame_is_one_valid_json_mebibyte(server_factory, h, protocol):
    srv = fault_server(server_factory, oversized_when=Trigger(frames=1))
    address = h.dg_url(srv) if protocol == "deepgram" else h.aai_url(srv)
    with h.open_ws(address, scheme="Token" if protocol == "deepgram" else None,
                   max_size=None) as ws:  # fmt: skip
        if protocol == "assemblyai":
            assert h.recv_json(ws)["type"] == "Begin"
        send_frames(h, ws, 1)
        text = ws.recv(timeout=h.TIMEOUT)
    assert len(text.encode()) == OVERSIZED_BYTES
    assert json.loads(text)["type"] == OVERSIZED_MESSAGE_TYPE
    assert oversized_frame() == text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_seconds_zero_fires_at_once(server_factory, h, protocol):
    srv = fault_server(server_factory, unknown_type_when=Trigger(seconds=0))
    with connect(h, srv, protocol) as ws:  # AssemblyAI: after Begin
        assert h.recv_json(ws)["type"] == UNKNOWN_MESSAGE_TYPE


# ------------------------------------------------------------------ the timecode engine
def test_timecode_is_read_at_any_offset_and_parity():
    for start in (0, 1, 2, 799, 20_800, 16_000 * 3600 + 1):
        pcm = timecode_pcm(0.01, start_s=start / 16000)
        assert read_timecode(pcm) == start
        assert read_timecode(pcm[2:]) == start + 1
    assert read_timecode(b"\0" * 3200) is None  # silence
    tone = (np.sin(np.arange(1600) / 5) * 20000).astype("<i2").tobytes()
    assert read_timecode(tone) is None
    assert read_timecode(timecode_pcm(0.01)[:8]) is None  # too short to tell


def test_timecode_stream_hears_the_script_from_its_position():
    engine = ScriptEngine({"turns": [{"text": "One two.", "start": 0.2, "end": 0.6},
                                     {"text": "Three four.", "start": 1.2, "end": 1.6}]},
                          timecode=True)  # fmt: skip
    replay = engine.open_stream(16000)  # a reconnect replaying from 0.9 s
    results = replay.feed(timecode_pcm(1.5, start_s=0.9))
    finals = [r for r in results if r.kind == "final"]
    assert [w.text for r in finals for w in r.words] == ["Three", "four."]
    assert [round(w.start, 3) for w in finals[0].words] == [0.3, 0.5]  # relative to 0.9 s
    fresh = engine.open_stream(16000)  # audio without a timecode starts at 0, as before
    words = [w.text for r in fresh.feed(b"\0" * 96000) if r.kind == "final" for w in r.words]
    assert words == ["One", "two.", "Three", "four."]
