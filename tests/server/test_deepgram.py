"""Deepgram /v1/listen over real loopback sockets, with websockets' sync client as the client."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
import wave

import numpy as np
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


def test_without_interim_results_only_finals_and_without_punctuate_raw_words(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        stream_all(h, ws, 4.0)
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, _, _ = h.drain(ws)
    results = h.of_type(messages, "Results")
    assert all(r["is_final"] for r in results)
    assert [r["channel"]["alternatives"][0]["transcript"] for r in results] == [
        "hello world",
        "second turn",
    ]
    assert "punctuated_word" not in results[0]["channel"]["alternatives"][0]["words"][0]
    assert not h.of_type(messages, "SpeechStarted") and not h.of_type(messages, "UtteranceEnd")


def test_endpointing_false_never_marks_speech_final(server, h):
    with h.open_ws(h.dg_url(server, endpointing="false")) as ws:
        stream_all(h, ws, 4.0)
        ws.send(b"")
        messages, _, _ = h.drain(ws)
    finals = h.of_type(messages, "Results")
    assert len(finals) == 2 and not any(r["speech_final"] for r in finals)


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


def test_finalize_before_any_audio_is_answered(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        ws.send(json.dumps({"type": "Finalize"}))
        result = h.recv_json(ws)
        assert result["from_finalize"] and result["duration"] == 0.0


def test_zero_length_frame_is_a_legacy_close_stream(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        stream_all(h, ws, 2.0)
        ws.send(b"")
        messages, code, _ = h.drain(ws)
    assert code == 1000
    assert [m["type"] for m in messages] == ["Results", "Metadata"]
    assert messages[1]["duration"] == 2.0


def test_close_stream_finalizes_the_open_utterance(server, h):
    with h.open_ws(h.dg_url(server)) as ws:
        stream_all(h, ws, 2.8)  # "Second" heard, its utterance still open
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, _, _ = h.drain(ws)
    transcripts = [m["channel"]["alternatives"][0]["transcript"] for m in messages[:-1]]
    assert transcripts == ["hello world", "second"]
    assert not messages[1]["speech_final"]


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


def test_configure_is_acknowledged(server, h):
    with h.open_ws(h.dg_url(server, keyterm="alpha")) as ws:
        ws.send(json.dumps({"type": "Configure", "keyterms": ["Deepgram", "customer service"]}))
        reply = h.recv_json(ws)
    assert reply["type"] == "ConfigureSuccess"
    assert reply["keyterms"] == ["Deepgram", "customer service"]


# ------------------------------------------------------------------- audio formats
def test_multichannel_gives_results_per_channel(server, h):
    stereo = np.zeros((2 * 16000 * 2), dtype="<i2").tobytes()  # 2 s, 2 channels
    with h.open_ws(h.dg_url(server, channels=2, multichannel="true")) as ws:
        for chunk in h.chunks(stereo, 100, width=4):
            ws.send(chunk)
        ws.send(json.dumps({"type": "Finalize", "channel": 1}))
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, _code, _ = h.drain(ws)
    results = h.of_type(messages, "Results")
    # One final per channel (at 1.4 s), then the empty answer to Finalize on channel 1.
    assert sorted(r["channel_index"][0] for r in results) == [0, 1, 1]
    assert all(r["channel_index"][1] == 2 for r in results)
    from_finalize = [r for r in results if r["from_finalize"]]
    assert len(from_finalize) == 1 and from_finalize[0]["channel_index"] == [1, 2]
    assert messages[-1]["channels"] == 2 and messages[-1]["duration"] == 2.0


def test_mulaw_audio_runs_on_its_own_clock(server, h):
    with h.open_ws(h.dg_url(server, encoding="mulaw", sample_rate=8000)) as ws:
        ws.send(b"\xff" * 8000 * 2)  # 2 s of mu-law silence at 8 kHz
        ws.send(b"")
        messages, _, _ = h.drain(ws)
    assert messages[-1]["duration"] == 2.0
    assert len(h.of_type(messages, "Results")) == 1


def test_wav_file_without_encoding_is_read_from_its_header(server, h):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 2)
    data = buffer.getvalue()
    with h.open_ws(h.dg_url(server, encoding=None, sample_rate=None)) as ws:
        for i in range(0, len(data), 4000):
            ws.send(data[i : i + 4000])
        ws.send(b"")
        messages, _, _ = h.drain(ws)
    assert messages[-1]["duration"] == 2.0 and len(h.of_type(messages, "Results")) == 1


def test_raw_audio_without_encoding_is_undecodable(server, h):
    with h.open_ws(h.dg_url(server, encoding=None, sample_rate=None)) as ws:
        ws.send(h.silence(0.1))
        messages, code, reason = h.drain(ws)
    assert (messages, code, reason) == ([], 1008, "DATA-0000")


def test_same_audio_in_any_framing_gives_the_same_messages(server, h):
    address = h.dg_url(server, interim_results="true", vad_events="true", utterance_end_ms=1000)
    audio = h.silence(4.0)

    def run(frames: list[bytes]) -> list[dict]:
        with h.open_ws(address) as ws:
            for frame in frames:
                ws.send(frame)
            ws.send(json.dumps({"type": "CloseStream"}))
            messages, _, _ = h.drain(ws)
        for m in messages:  # per-connection identities differ, the rest must not
            m.pop("request_id", None), m.pop("created", None), m.get("metadata", {}).clear()
        return messages

    one_frame = run([audio])
    assert [m["type"] for m in one_frame].count("UtteranceEnd") == 2
    assert run(h.chunks(audio, 20)) == one_frame
    assert run(h.chunks(audio, 330)) == one_frame
