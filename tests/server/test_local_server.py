"""LocalServer's lifecycle: starts listening before it returns, always stops and joins, never
leaks a thread or a socket, and refuses misuse clearly."""

from __future__ import annotations

import dataclasses
import socket

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest
from websockets.exceptions import ConnectionClosed

from livetx_widgets.errors import ConfigurationError, LivetxError
from livetx_widgets.server import Faults, LocalServer, ScriptEngine


def server_threads() -> list[str]:
    """Every ``livetx-*`` thread: a server that stopped leaves none, nor does a test's client."""
    return support.livetx_threads()


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_context_manager_listens_on_loopback_then_frees_thread_and_port(h):
    assert server_threads() == []
    with LocalServer(engine="script") as srv:
        assert srv.url.startswith("ws://127.0.0.1:") and srv.url == f"ws://127.0.0.1:{srv.port}"
        port = srv.port
        with h.open_ws(h.dg_url(srv)) as ws:  # listening as soon as start() returned
            ws.send(b"")
            assert h.drain(ws)[1] == 1000
        assert server_threads()
    assert server_threads() == []
    assert port_is_closed(port)


def test_closing_with_a_client_connected_closes_it_with_1001(h):
    srv = LocalServer(engine="script").start()
    ws = h.open_ws(h.aai_url(srv), scheme=None)
    with ws:
        assert h.recv_json(ws)["type"] == "Begin"
        srv.close()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=h.TIMEOUT)
    assert info.value.rcvd.code == 1001
    assert server_threads() == []


def test_close_is_idempotent_and_restart_after_close_works(h):
    srv = LocalServer(engine="script")
    srv.start()
    first_port = srv.port
    srv.close()
    srv.close()
    assert port_is_closed(first_port)
    with pytest.raises(LivetxError, match="not started"):
        _ = srv.url
    srv.start()
    try:
        with h.open_ws(h.dg_url(srv)) as ws:
            ws.send(b"")
            assert h.drain(ws)[1] == 1000
    finally:
        srv.close()
    assert server_threads() == []


def test_double_start_is_refused():
    with LocalServer(engine="script") as srv, pytest.raises(LivetxError, match="already started"):
        srv.start()


def test_busy_port_is_a_clear_error_without_leaks():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{port}"):
            LocalServer(engine="script", port=port).start()
    assert server_threads() == []


def test_engine_instances_are_used_but_not_owned(h):
    closed = []

    class Tracked(ScriptEngine):
        def close(self):
            closed.append(True)

    engine = Tracked({"text": "Owned elsewhere."})
    with LocalServer(engine=engine) as srv, h.open_ws(h.dg_url(srv, punctuate="true")) as ws:
        ws.send(h.silence(2.0))
        ws.send(b"")
        messages, _, _ = h.drain(ws)
    assert messages[0]["channel"]["alternatives"][0]["transcript"] == "Owned elsewhere."
    assert closed == []
    with pytest.raises(ConfigurationError, match="only to an engine name"):
        LocalServer(engine=engine, script={"text": "x"})
    with pytest.raises(ConfigurationError, match="engine must be"):
        LocalServer(engine=42)


def test_bad_settings_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="unknown engine"):
        LocalServer(engine="vosk").start()
    with pytest.raises(ConfigurationError, match="idle_timeout_s"):
        LocalServer(idle_timeout_s=0)
    with pytest.raises(ConfigurationError, match="api_key"):
        LocalServer(api_key="")
    assert server_threads() == []


def test_the_key_never_shows(h):
    with LocalServer(engine="script", api_key="sekret-123") as srv:
        with h.open_ws(h.dg_url(srv), key="sekret-123") as ws:
            ws.send(b"")
            h.drain(ws)
        with h.open_ws(h.aai_url(srv, token="sekret-123"), key=None) as ws:
            h.recv_json(ws)
        text = repr(srv) + repr(srv.options) + repr(srv.wait_idle(h.TIMEOUT))
    assert "sekret" not in text


def test_session_records_are_frozen_snapshots_and_waits_are_bounded(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        record = server.wait_for(lambda rs: len(rs) == 1, h.TIMEOUT)[0]
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.audio_frames = 99
        ws.send(h.silence(0.1))
        ws.send(b"")
        h.drain(ws)
    assert record.audio_frames == 0  # the old snapshot did not change
    assert server.wait_idle(h.TIMEOUT)[0].audio_frames == 2
    with pytest.raises(TimeoutError):
        server.wait_for(lambda rs: len(rs) == 5, 0.1)


def test_set_faults_before_start_becomes_the_initial_faults(h):
    srv = LocalServer(engine="script")
    srv.set_faults(Faults(refuse_auth=True))
    with srv, h.open_ws(h.aai_url(srv), scheme=None) as ws:
        assert h.drain(ws)[1] == 1008
