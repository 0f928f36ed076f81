"""Every injected fault, on both protocols, seen from a raw client over loopback."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time

import pytest
from websockets.exceptions import InvalidStatus

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.server import Faults
from livetx_widgets.server.faults import (
    MALFORMED_FRAME,
    UNKNOWN_MESSAGE_TYPE,
    add_fault_arguments,
    faults_from_args,
)

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
    assert [r.faults_applied for r in srv.wait_idle(h.TIMEOUT)] == [True, True]


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


def test_close_without_the_error_frame(server_factory, h):
    srv = fault_server(server_factory, close_after_frames=1, close_code=3005,
                       close_error_frame=False)  # fmt: skip
    with connect(h, srv, "assemblyai") as ws:
        send_frames(h, ws, 1)
        messages, code, _ = h.drain(ws)
    assert messages == [] and code == 3005


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
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_json_and_unknown_type_after_frames(server_factory, h, protocol):
    srv = fault_server(server_factory, malformed_after_frames=2, unknown_type_after_frames=3)
    with connect(h, srv, protocol) as ws:
        send_frames(h, ws, 2)
        # Results may come first (speech starts at 0.2 s); the injected frame follows.
        texts = []
        for _ in range(3):
            texts.append(ws.recv(timeout=h.TIMEOUT))
            if texts[-1] == MALFORMED_FRAME:
                break
        assert texts[-1] == MALFORMED_FRAME
        assert all(json.loads(t)["type"] == "SpeechStarted" for t in texts[:-1])
        with pytest.raises(ValueError):
            json.loads(MALFORMED_FRAME)
        send_frames(h, ws, 1)
        assert h.until(ws, lambda m: m["type"] == UNKNOWN_MESSAGE_TYPE)
        send_frames(h, ws, 20)  # the session carries on normally
        ws.send(end_message(protocol))
        messages, code, _ = h.drain(ws)
    assert code == 1000 and messages[-1]["type"] == TERMINAL[protocol]


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
        "--refuse-auth", "--close-after-seconds", "1.5", "--close-after-frames", "7",
        "--close-code", "4002", "--close-reason", "gone", "--no-close-error-frame",
        "--drop-after-seconds", "2", "--drop-after-frames", "9", "--terminal-delay", "0.5",
        "--no-terminal", "--malformed-after-frames", "3", "--unknown-type-after-frames", "4",
        "--response-delay-ms", "25", "--fault-connections", "1",
    ])  # fmt: skip
    faults = faults_from_args(args)
    assert faults == Faults(
        refuse_auth=True, close_after_s=1.5, close_after_frames=7, close_code=4002,
        close_reason="gone", close_error_frame=False, drop_after_s=2.0, drop_after_frames=9,
        terminal_delay_s=0.5, never_terminal=True, malformed_after_frames=3,
        unknown_type_after_frames=4, response_delay_ms=25.0, connections=1,
    )  # fmt: skip
    # Every field has a flag: none of them is left at its default above.
    defaults = Faults()
    assert all(getattr(faults, f.name) != getattr(defaults, f.name)
               for f in dataclasses.fields(Faults))  # fmt: skip
