"""Deepgram /v1/listen over real loopback sockets, with websockets' sync client as the client:
the upgrade (auth, query, refusals) and the asyncio shell (frames in order, engine calls off
the loop, the idle timer, the close). What the protocol decides is in test_deepgram_core.py."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest
from websockets.exceptions import InvalidStatus


def refused(h, address: str, **kwargs):
    with pytest.raises(InvalidStatus) as info:
        h.open_ws(address, **kwargs)
    return info.value.response


# ----------------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("scheme", "method"), [("Token", "token"), ("token", "token"), ("Bearer", "bearer"),
                           ("bearer", "bearer")]
)  # fmt: skip
def test_authorization_header_schemes_are_accepted(server_factory, h, scheme, method):
    srv = server_factory(api_key="sekret")
    with h.open_ws(h.dg_url(srv), key="sekret", scheme=scheme) as ws:
        assert uuid.UUID(ws.response.headers["dg-request-id"])
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, _ = h.drain(ws)
    assert code == 1000 and h.of_type(messages, "Metadata")
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.auth, record.authorized, record.http_status) == (method, True, 101)
    assert record.headers["Authorization"] == f"{scheme} ***"
    assert "sekret" not in repr(srv.sessions)


def test_subprotocol_auth_is_accepted_and_echoed(server_factory, h):
    srv = server_factory(api_key="sekret")
    with h.open_ws(h.dg_url(srv), key=None, subprotocols=["token", "sekret"]) as ws:
        assert ws.subprotocol == "token"
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "token"
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.auth, record.subprotocol) == ("subprotocol", "token")
    assert record.headers["Sec-WebSocket-Protocol"] == "token, ***"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": "wrong"},
        {"key": None},
        {"key": "sekret", "scheme": "Basic"},
        {"key": None, "subprotocols": ["token", "wrong"]},
    ],
    ids=["wrong-key", "no-key", "bad-scheme", "wrong-subprotocol-key"],
)
def test_bad_credentials_are_refused_with_401_before_the_upgrade(server_factory, h, kwargs):
    srv = server_factory(api_key="sekret")
    response = refused(h, h.dg_url(srv), **kwargs)
    assert response.status_code == 401
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_AUTH"
    assert body["err_msg"] == response.headers["dg-error"] == "Invalid credentials."
    assert body["request_id"] == response.headers["dg-request-id"]
    assert response.headers["Content-Type"] == "application/json"
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.authorized, record.http_status, record.done) == (False, 401, True)


def test_without_api_key_any_key_or_none_is_accepted(server, h):
    for key in ("anything", None):
        with h.open_ws(h.dg_url(server), key=key) as ws:
            ws.send(b"")
            assert h.drain(ws)[1] == 1000


# ------------------------------------------------------------------ query parameters
@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"interim_results": "True"}, "interim_results"),
        ({"sample_rate": "16k"}, "sample_rate"),
        ({"encoding": "wav"}, "encoding"),
        ({"encoding": "opus"}, "livetx serve decodes only"),
        ({"sample_rate": None}, "sample_rate is required"),
        ({"endpointing": "soon"}, "endpointing"),
        ({"utterance_end_ms": "-5"}, "utterance_end_ms"),
        ({"channels": "0"}, "channels"),
        ({"redact": "everything"}, "redact"),
        ({"diarize_model": "v2"}, "diarize_model"),
        ({"extra": "novalue"}, "key:value"),
    ],
)
def test_bad_query_values_are_refused_with_400(server, h, params, fragment):
    response = refused(h, h.dg_url(server, **params))
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_QUERY_PARAMETER"
    assert fragment in body["err_msg"] and fragment in response.headers["dg-error"]
    assert response.headers["dg-request-id"] == body["request_id"]


def test_documented_parameters_parse_and_unknown_ones_are_ignored(server, h):
    params = {
        "channels": 1, "multichannel": "false", "language": "en-US", "punctuate": "true",
        "smart_format": "true", "interim_results": "true", "endpointing": "false",
        "utterance_end_ms": 1000, "vad_events": "true", "diarize": "true",
        "keyterm": ["customer service", "Deepgram"], "keywords": "foo:2", "numerals": "true",
        "profanity_filter": "false", "dictation": "false", "filler_words": "true",
        "detect_entities": "false", "redact": ["pci", "ssn"], "replace": "a:b", "search": "x",
        "tag": "t1", "extra": "team:qa", "version": "latest", "mip_opt_out": "true",
        "callback": "http://127.0.0.1:1/cb", "callback_method": "post", "no_delay": "true",
        "some_future_option": "whatever",
    }  # fmt: skip
    with h.open_ws(h.dg_url(server, **params)) as ws:
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, _ = h.drain(ws)
    assert code == 1000
    assert messages[-1]["extra"] == {"team": "qa"}
    query = server.wait_idle(h.TIMEOUT)[0].query
    assert query["keyterm"] == ["customer service", "Deepgram"]
    assert query["some_future_option"] == ["whatever"]


def test_unknown_path_is_404(server, h):
    response = refused(h, f"{server.url}/v1/speak")
    assert response.status_code == 404
    assert server.sessions == []


# ------------------------------------------------------------------------- results
def stream_all(h, ws, seconds: float, chunk_ms: int = 100) -> None:
    for chunk in h.chunks(h.silence(seconds), chunk_ms):
        ws.send(chunk)


def test_full_session_interims_finals_vad_utterance_end_and_metadata(server, h):
    address = h.dg_url(server, interim_results="true", vad_events="true", utterance_end_ms=1000,
                       punctuate="true", diarize="true")  # fmt: skip
    audio = h.silence(5.0)
    with h.open_ws(address) as ws:
        request_id = ws.response.headers["dg-request-id"]
        for chunk in h.chunks(audio, 100):
            ws.send(chunk)
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, reason = h.drain(ws)
    assert (code, reason) == (1000, "")
    kinds = [m["type"] for m in messages]
    assert kinds == [
        "SpeechStarted", "Results", "Results", "Results", "UtteranceEnd",
        "SpeechStarted", "Results", "Results", "Results", "UtteranceEnd", "Metadata",
    ]  # fmt: skip
    results = h.of_type(messages, "Results")
    for r in results:  # the three flags are always present
        assert {"is_final", "speech_final", "from_finalize"} <= r.keys()
        assert r["channel_index"] == [0, 1]
        assert r["metadata"]["request_id"] == request_id
        assert not r["from_finalize"]
    assert [(r["is_final"], r["speech_final"]) for r in results] == [
        (False, False), (False, False), (True, True), (False, False), (False, False),
        (True, True),
    ]  # fmt: skip
    assert [r["channel"]["alternatives"][0]["transcript"] for r in results] == [
        "Hello", "Hello world.", "Hello world.", "Second", "Second turn.", "Second turn.",
    ]  # fmt: skip
    first_final, second_final = results[2], results[5]
    assert (first_final["start"], first_final["duration"]) == (0.0, 0.9)
    # Segments tile the audio: the next one starts where the previous final ended.
    assert (second_final["start"], second_final["duration"]) == (0.9, 2.1)
    words = first_final["channel"]["alternatives"][0]["words"]
    assert words == [
        {"word": "hello", "start": 0.2, "end": 0.5, "confidence": 0.9, "speaker": 0,
         "punctuated_word": "Hello"},
        {"word": "world", "start": 0.5, "end": 0.9, "confidence": 0.8, "speaker": 0,
         "punctuated_word": "world."},
    ]  # fmt: skip
    assert second_final["channel"]["alternatives"][0]["words"][0]["speaker"] == 1
    starts = h.of_type(messages, "SpeechStarted")
    assert starts[0] == {"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.2}
    ends = h.of_type(messages, "UtteranceEnd")
    assert ends[0] == {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 0.9}
    meta = messages[-1]
    assert meta["request_id"] == request_id and meta["transaction_key"] == "deprecated"
    assert meta["duration"] == 5.0 and meta["channels"] == 1
    assert meta["sha256"] == hashlib.sha256(audio).hexdigest()
    assert meta["created"].endswith("Z")
    record = server.wait_idle(h.TIMEOUT)[0]
    assert record.audio_frames == 50 and record.audio_bytes == len(audio)
    assert record.request_id == request_id
    assert record.control_types == ("CloseStream",)
    assert record.sent == tuple(kinds)
    assert (record.close_code, record.close_reason) == (1000, "")


def test_finalize_flushes_with_from_finalize(server, h):
    with h.open_ws(h.dg_url(server, interim_results="true")) as ws:
        stream_all(h, ws, 0.6)  # "Hello" heard, "world." not yet
        ws.send(json.dumps({"type": "Finalize"}))
        messages = h.until(ws, lambda m: m.get("type") == "Results" and m["is_final"])
        final = messages[-1]
        assert final["from_finalize"] and final["speech_final"]
        assert final["channel"]["alternatives"][0]["transcript"] == "hello"
        # Nothing buffered now: Finalize is still answered, with an empty final.
        ws.send(json.dumps({"type": "Finalize", "channel": 0}))
        empty = h.until(ws, lambda m: m.get("type") == "Results")[-1]
        assert empty["from_finalize"] and empty["is_final"]
        assert empty["channel"]["alternatives"][0] == {
            "transcript": "", "confidence": 1.0, "words": []
        }  # fmt: skip
        assert empty["start"] == final["start"] + final["duration"]
        ws.send(json.dumps({"type": "CloseStream"}))
        rest, code, _ = h.drain(ws)
    assert code == 1000 and rest[-1]["type"] == "Metadata"


def test_zero_length_frame_is_a_legacy_close_stream(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        stream_all(h, ws, 2.0)
        ws.send(b"")
        messages, code, _ = h.drain(ws)
    assert code == 1000
    assert [m["type"] for m in messages] == ["Results", "Metadata"]
    assert messages[1]["duration"] == 2.0


# ------------------------------------------------------------------------ timeouts
def test_idle_client_is_closed_with_net_0001(server_factory, h):
    srv = server_factory(idle_timeout_s=h.SHORT)
    with h.open_ws(h.dg_url(srv)) as ws:
        t0 = time.monotonic()
        messages, code, reason = h.drain(ws)
        waited = time.monotonic() - t0
    assert (messages, code, reason) == ([], 1011, "NET-0001")
    assert h.SHORT * 0.8 <= waited < h.TIMEOUT
    assert srv.wait_idle(h.TIMEOUT)[0].close_code == 1011


def test_keepalive_keeps_an_idle_session_open(server_factory, h):
    srv = server_factory(idle_timeout_s=h.SHORT)
    with h.open_ws(h.dg_url(srv)) as ws:
        for _ in range(6):  # 6 x SHORT/2: three idle timeouts' worth
            ws.send(json.dumps({"type": "KeepAlive"}))
            h.assert_still_open(ws, h.SHORT / 2)  # KeepAlive gets no reply
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, _ = h.drain(ws)
    assert code == 1000 and [m["type"] for m in messages] == ["Metadata"]
    assert srv.sessions[0].control_types.count("KeepAlive") == 6


# -------------------------------------------------------------------- bad messages
@pytest.mark.parametrize(
    "text", ['{"type": "Flush"}', "not json at all", "[1, 2]", '{"kind": "KeepAlive"}',
             '{"type": "Finalize", "channel": 3}', '{"type": "Configure", "keyterms": "x"}']
)  # fmt: skip
def test_bad_text_gets_schema_error_and_the_session_stays_open(server, h, text):
    with h.open_ws(h.dg_url(server)) as ws:
        ws.send(text)
        error = h.recv_json(ws)
        assert error["type"] == "Error" and error["variant"] == "SchemaError"
        assert error["message"] == text and error["description"]
        stream_all(h, ws, 2.0)
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, _ = h.drain(ws)
    assert code == 1000 and [m["type"] for m in messages] == ["Results", "Metadata"]
