"""AssemblyAI /v3/ws over real loopback sockets, with websockets' sync client as the client:
the upgrade (auth, query, refusals) and the asyncio shell (Begin first, the loop's clock for
the rate check and the inactivity timer, closing while the client streams). What the protocol
decides is in test_assemblyai_core.py."""

from __future__ import annotations

import json
import re
import time
import uuid

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest
from websockets.exceptions import InvalidStatus


def begin(h, ws) -> dict:
    message = h.recv_json(ws)
    assert message["type"] == "Begin"
    return message


def send_audio(h, ws, seconds: float, chunk_ms: int = 100) -> None:
    for chunk in h.chunks(h.silence(seconds), chunk_ms):
        ws.send(chunk)


def terminate(h, ws) -> tuple[list[dict], int | None, str]:
    ws.send(json.dumps({"type": "Terminate"}))
    return h.drain(ws)


@pytest.fixture
def fast(server_factory):
    """Rate check off: tests stream seconds of audio in milliseconds."""
    return server_factory(rate_limit=False)


# ----------------------------------------------------------------------------- auth
@pytest.mark.parametrize("how", ["header", "query"])
def test_raw_key_in_header_or_token_in_query_is_accepted(server_factory, h, how):
    srv = server_factory(api_key="sekret")
    if how == "header":
        ws = h.open_ws(h.aai_url(srv), key="sekret", scheme=None)
    else:
        ws = h.open_ws(h.aai_url(srv, token="sekret"), key=None)
    with ws:
        begin(h, ws)
        _messages, code, reason = terminate(h, ws)
    assert (code, reason) == (1000, "Session Ended")
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.auth, record.authorized) == (how, True)
    assert "sekret" not in repr(record)
    if how == "query":
        assert record.query["token"] == ["***"]
    else:
        assert record.headers["Authorization"] == "***"


def test_webhook_auth_value_is_masked_in_the_records_as_in_client_urls(server, h):
    """The records mask the query keys the client masks in URLs (``credentials``, one list):
    a webhook's auth header value is a credential too. Before, the records showed it."""
    url = h.aai_url(
        server,
        webhook_url="https://example.invalid/hook",
        webhook_auth_header_name="X-Auth",
        webhook_auth_header_value="hook-secret",
    )
    with h.open_ws(url, scheme=None) as ws:
        begin(h, ws)
        terminate(h, ws)
    record = server.wait_idle(h.TIMEOUT)[0]
    assert record.query["webhook_auth_header_value"] == ["***"]
    assert record.query["webhook_auth_header_name"] == ["X-Auth"]
    assert "hook-secret" not in repr(record)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": "wrong", "scheme": None}, "Unauthorized Connection: Invalid API key"),
        ({"key": "sekret", "scheme": "Bearer"}, "Unauthorized Connection: Invalid API key"),
        ({"key": None}, "Unauthorized Connection: Missing Authorization header"),
    ],
    ids=["wrong-key", "bearer-prefix", "missing"],
)
def test_bad_auth_is_101_then_error_frame_then_1008(server_factory, h, kwargs, error):
    srv = server_factory(api_key="sekret")
    with h.open_ws(h.aai_url(srv), **kwargs) as ws:  # the upgrade itself succeeds
        messages, code, reason = h.drain(ws)
    assert messages == [{"type": "Error", "error_code": 1008, "error": error}]
    assert (code, reason) == (1008, "See Error message for details")
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.http_status, record.authorized, record.close_code) == (101, False, 1008)


def test_bad_token_in_query_is_refused(server_factory, h):
    srv = server_factory(api_key="sekret")
    with h.open_ws(h.aai_url(srv, token="nope"), key=None) as ws:
        messages, code, _ = h.drain(ws)
    assert messages[0]["error"] == "Unauthorized Connection: Invalid API key" and code == 1008


def test_without_api_key_no_key_is_needed(server, h):
    with h.open_ws(h.aai_url(server), key=None) as ws:
        begin(h, ws)


# ---------------------------------------------------------------------- parameters
def test_begin_carries_id_expiry_and_configuration(fast, h):
    headers = {"AssemblyAI-Version": "2025-05-12"}
    with h.open_ws(h.aai_url(fast), scheme=None, additional_headers=headers) as ws:
        message = begin(h, ws)
    assert list(message) == ["type", "id", "expires_at", "configuration"]
    assert uuid.UUID(message["id"])
    assert isinstance(message["expires_at"], int)
    assert abs(message["expires_at"] - (time.time() + 3 * 3600)) < 60
    config = message["configuration"]
    assert (config["model"], config["api_version"]) == ("u3-rt-pro", "2025-05-12")
    assert fast.sessions[0].request_id == message["id"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"speaker_labels": "yes"}, "speaker_labels"),
        ({"sample_rate": "16000.5"}, "sample_rate"),
        ({"keyterms_prompt": "foo"}, "JSON-encoded array"),
        ({"keyterms_prompt": '"foo"'}, "JSON array"),
        ({"keyterms_prompt": "[1, 2]"}, "string"),
        ({"inactivity_timeout": "2"}, "minimum"),
        ({"encoding": "pcm_f32le"}, "encoding"),
        ({"encoding": "opus"}, "livetx serve decodes only"),
        ({"end_of_turn_confidence_threshold": "1.5"}, "maximum"),
        ({"llm_gateway": "[]"}, "JSON-encoded object"),
    ],
)
def test_bad_parameter_values_are_refused_at_the_upgrade(fast, h, params, fragment):
    with pytest.raises(InvalidStatus) as info:
        h.open_ws(h.aai_url(fast, **params), scheme=None)
    response = info.value.response
    assert response.status_code == 400
    assert fragment in json.loads(response.body)["error"]


# ------------------------------------------------------------------------- turns
def test_turns_follow_u3_semantics_and_terminate_ends_the_session(fast, h):
    with h.open_ws(h.aai_url(fast, speaker_labels="true"), scheme=None) as ws:
        begin(h, ws)
        send_audio(h, ws, 4.0)
        messages, code, reason = terminate(h, ws)
    assert (code, reason) == (1000, "Session Ended")
    assert [m["type"] for m in messages] == [
        "SpeechStarted", "Turn", "Turn", "Turn", "SpeechStarted", "Turn", "Turn", "Turn",
        "Termination",
    ]  # fmt: skip
    turns = h.of_type(messages, "Turn")
    for turn in turns:
        assert list(turn)[-1] == "type"  # observed key order: type last
        final = turn["end_of_turn"]
        assert turn["turn_is_formatted"] is final
        assert turn["end_of_turn_confidence"] == (1 if final else 0)
        assert turn["utterance"] == (turn["transcript"] if final else "")
        assert all(w["word_is_final"] is final for w in turn["words"])
        assert all(isinstance(w["start"], int) and isinstance(w["end"], int) for w in turn["words"])
    assert [(t["turn_order"], t["end_of_turn"], t["transcript"]) for t in turns] == [
        (0, False, "Hello"), (0, False, "Hello world"), (0, True, "Hello world."),
        (1, False, "Second"), (1, False, "Second turn"), (1, True, "Second turn."),
    ]  # fmt: skip
    assert turns[2]["words"] == [
        {"start": 200, "end": 500, "text": "Hello", "confidence": 0.9, "word_is_final": True,
         "speaker": "UNKNOWN"},
        {"start": 500, "end": 900, "text": "world.", "confidence": 0.8, "word_is_final": True,
         "speaker": "UNKNOWN"},
    ]  # fmt: skip
    assert turns[5]["speaker_label"] == "B"  # script speaker 1
    started = h.of_type(messages, "SpeechStarted")
    assert [s["timestamp"] for s in started] == [200, 2400]
    assert messages[-1] == {
        "type": "Termination", "audio_duration_seconds": 4, "session_duration_seconds": 0
    }  # fmt: skip


# ----------------------------------------------------------------------- 3006/3007
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "Invalid JSON: not json"),
        ('{"type": "Flush"}', "Invalid Message Type: Flush"),
        ('["Terminate"]', 'Invalid Message: ["Terminate"]'),
        ('{"kind": "Terminate"}', 'Invalid Message: {"kind": "Terminate"}'),
        (
            '{"type": "UpdateConfiguration", "max_turn_silence": "5000"}',
            "Invalid Message: max_turn_silence has the wrong type (str)",
        ),
        ('{"type": "UpdateConfiguration", "keyterms_prompt": "x"}', "Invalid Message:"),
        ('{"type": "UpdateConfiguration", "min_turn_silence": true}', "Invalid Message:"),
    ],
)
def test_bad_client_json_closes_with_3006(fast, h, text, error):
    with h.open_ws(h.aai_url(fast), scheme=None) as ws:
        begin(h, ws)
        ws.send(text)
        messages, code, reason = h.drain(ws)
    assert messages[0]["type"] == "Error" and messages[0]["error_code"] == 3006
    assert messages[0]["error"].startswith(error)
    assert code == 3006 and reason == messages[0]["error"]


def test_audio_faster_than_real_time_closes_with_3007(server_factory, h):
    srv = server_factory(rate_burst_s=0.5)  # rate check on by default
    with h.open_ws(h.aai_url(srv), scheme=None) as ws:
        begin(h, ws)
        h.send_all(ws, h.chunks(h.silence(2.0), 100))
        messages, code, reason = h.drain(ws)
    error = messages[-1]
    assert error["type"] == "Error" and error["error_code"] == 3007
    found = re.fullmatch(
        r"Audio Transmission Rate Exceeded: Received (\d+\.\d) sec\. audio in (\d+\.\d) sec",
        error["error"],
    )
    assert found, error
    audio_s, wall_s = float(found[1]), float(found[2])
    assert audio_s >= wall_s + 0.5 and audio_s < 2.0  # caught as soon as the burst ran out
    assert (code, reason) == (3007, error["error"])
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert record.close_code == 3007 and record.audio_frames >= 6


# ------------------------------------------------------------------ inactivity
def test_inactivity_timeout_ends_with_termination(server_factory, h):
    srv = server_factory(rate_limit=False, inactivity_unit_s=h.SHORT / 5)
    with h.open_ws(h.aai_url(srv, inactivity_timeout=5), scheme=None) as ws:
        begin(h, ws)
        send_audio(h, ws, 0.6)
        t0 = time.monotonic()
        messages, code, reason = h.drain(ws)
        waited = time.monotonic() - t0
    assert (code, reason) == (1000, "Session Ended")
    assert messages[-1]["type"] == "Termination"
    assert [m["transcript"] for m in messages if m.get("end_of_turn")] == ["Hello"]
    assert h.SHORT * 0.8 <= waited < h.TIMEOUT


def test_error_close_completes_while_the_client_keeps_streaming(fast, h):
    """The server keeps reading during its close handshake, so a client still sending audio
    cannot stall the close until the 5 s close timeout."""
    with h.open_ws(h.aai_url(fast), scheme=None) as ws:
        begin(h, ws)
        ws.send("not json")
        # 40 frames, more than the server's receive queue (unless it closed first).
        h.send_all(ws, h.chunks(h.silence(4.0), 100))
        _messages, code, _ = h.drain(ws)
        assert code == 3006
    t0 = time.monotonic()
    fast.wait_idle(h.TIMEOUT)
    assert time.monotonic() - t0 < 1.0 * support.TIMING
