"""Every HTTP refusal, close code and error frame in the protocol notes -> a typed error."""

from __future__ import annotations

import pytest

from livetx_widgets.errors import (
    AuthenticationError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
)
from livetx_widgets.events import ProviderErrorEvent
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec

KEY = "dg-key-SECRET-0123456789"


def check_no_key(error: LivetxError) -> None:
    assert KEY not in str(error) and KEY not in repr(error)


# -- Deepgram: HTTP upgrade refusals ---------------------------------------------------------


def test_deepgram_401_with_the_documented_body(dg_fixture):
    codec = DeepgramCodec()
    codec.connect_request(KEY)
    error = codec.handshake_error(
        401, {"dg-request-id": "req-9"}, dg_fixture("http-401-invalid-auth-body")
    )
    assert isinstance(error, AuthenticationError)
    assert error.code == 401 and error.reason == "Invalid credentials."
    message = str(error)
    assert "INVALID_AUTH" in message and "Invalid credentials." in message
    assert "DEEPGRAM_API_KEY" in message and "api_key=" in message
    assert "req-9" in message
    check_no_key(error)


def test_deepgram_400_names_the_bad_parameter_from_dg_error():
    codec = DeepgramCodec(language="english")
    error = codec.handshake_error(
        400,
        {"DG-Error": "Bad Request: invalid value for language"},
        '{"err_code":"INVALID_QUERY_PARAMETER",'
        '"err_msg":"Bad Request: invalid value for language"}',
    )
    assert type(error) is ProviderError and error.code == 400
    assert "'language' option" in str(error) and "language='english'" in str(error)


def test_deepgram_400_from_a_plain_text_body():
    codec = DeepgramCodec(encoding="opus")
    error = codec.handshake_error(400, {}, "Invalid encoding for sample_rate.\n")
    # the longest option name the text mentions wins
    assert "'sample_rate' option" in str(error) or "'encoding' option" in str(error)
    assert "Invalid encoding for sample_rate." in str(error)


def test_deepgram_400_keyterm_limit():
    error = DeepgramCodec().handshake_error(400, {}, '{"err_code":"KEYWORD_LIMIT_EXCEEDED"}')
    assert "500 tokens" in str(error)


def test_deepgram_400_without_detail_gives_general_advice():
    error = DeepgramCodec().handshake_error(400, {}, "")
    assert "Check the options" in str(error)


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (402, ProviderError, "add funds"),
        (403, AuthenticationError, "permissions"),
        (429, ProviderError, "concurrent streams"),
        (500, ProviderError, "retry"),
        (503, ProviderError, "retry"),
        (404, ProviderError, "base_url"),
        (418, ProviderError, "not accepted"),
    ],
)
def test_deepgram_other_refusals(status, cls, advice):
    body = '{"err_code":"X","err_msg":"provider words here","request_id":"r"}'
    error = DeepgramCodec().handshake_error(status, {}, body)
    assert type(error) is cls and error.code == status
    assert advice in str(error) and "provider words here" in str(error)


def test_deepgram_long_bodies_are_shortened():
    error = DeepgramCodec().handshake_error(500, {}, "x" * 5000)
    assert len(str(error)) < 500


# -- Deepgram: close codes and error frames --------------------------------------------------


def test_deepgram_normal_close_is_not_an_error():
    codec = DeepgramCodec()
    assert codec.close_error(1000, "") is None


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (1011, "NET-0001", "KeepAlive"),
        (1011, "NET-0000", "Retry"),
        (1008, "DATA-0000", "encoding='linear16' and sample_rate=16000"),
        (1002, "DATA-0000", "encoding='linear16' and sample_rate=16000"),
        (1011, "something else", "internal error"),
        (4000, "custom", "custom"),
    ],
)
def test_deepgram_error_closes(code, reason, advice):
    error = DeepgramCodec().close_error(code, reason)
    assert type(error) is ProviderError
    assert (error.code, error.reason) == (code, reason)
    assert advice in str(error) and reason in str(error)


def test_deepgram_undecodable_audio_advice_follows_the_options():
    error = DeepgramCodec(encoding="mulaw", sample_rate=8000).close_error(1008, "DATA-0000")
    assert "encoding='mulaw' and sample_rate=8000" in str(error)
    error = DeepgramCodec(encoding=None).close_error(1008, "DATA-0000")
    assert "container" in str(error)


@pytest.mark.parametrize("code", [None, 1006, 1001, 1012, 1013])
def test_deepgram_lost_connections(code):
    error = DeepgramCodec().close_error(code, "")
    assert isinstance(error, ConnectionLostError) and error.code == code


def test_deepgram_close_without_status_is_normal_only_after_metadata():
    codec = DeepgramCodec()
    assert isinstance(codec.close_error(1005, ""), ConnectionLostError)
    codec.decode('{"type":"Metadata","duration":1.0}')
    assert codec.close_error(1005, "") is None


def test_deepgram_error_frames(dg_fixture):
    codec = DeepgramCodec()
    [schema] = codec.decode(dg_fixture("error-schema"))
    error = codec.error_from_event(schema)
    assert type(error) is ProviderError and error.code == "SchemaError"
    assert "<what went wrong>" in str(error)
    [closing] = codec.decode(dg_fixture("error-closing-net0001"))
    error = codec.error_from_event(closing)
    assert error.code == "NET-0001" and "KeepAlive" in str(error)
    error = codec.error_from_event(ProviderErrorEvent(reason="odd", code=None))
    assert type(error) is ProviderError and "odd" in str(error)


# -- AssemblyAI: HTTP refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (401, AuthenticationError, "ASSEMBLYAI_API_KEY"),
        (403, AuthenticationError, "ASSEMBLYAI_API_KEY"),
        (400, ProviderError, "Check the options"),
        (402, ProviderError, "insufficient funds"),
        (429, ProviderError, "wait a minute"),
        (500, ProviderError, "retry"),
        (404, ProviderError, "base_url"),
        (409, ProviderError, "not accepted"),
    ],
)
def test_assemblyai_http_refusals(status, cls, advice):
    error = AssemblyAICodec().handshake_error(status, {}, '{"error": "provider words"}')
    assert type(error) is cls and error.code == status
    assert advice in str(error) and "provider words" in str(error)


def test_assemblyai_400_names_the_bad_parameter():
    codec = AssemblyAICodec(sample_rate=7)
    error = codec.handshake_error(400, {}, "sample_rate must be at least 8000")
    assert "'sample_rate' option" in str(error) and "sample_rate=7" in str(error)


# -- AssemblyAI: close codes (current table, 2025 all-3005 table, legacy 4xxx) ---------------


@pytest.mark.parametrize(
    ("code", "reason", "cls", "advice"),
    [
        (
            1008,
            "Unauthorized Connection: Missing Authorization header",
            AuthenticationError,
            "ASSEMBLYAI_API_KEY",
        ),
        (1008, "Unauthorized Connection: Invalid API key", AuthenticationError, "api_key="),
        (1008, "Unauthorized Connection: insufficient balance", AuthenticationError, "add them"),
        (1008, "See Error message for details", AuthenticationError, "ASSEMBLYAI_API_KEY"),
        (
            1008,
            "Unauthorized connection: Too many concurrent sessions",
            ProviderError,
            "Wait a minute",
        ),
        (3005, "Session Cancelled: An error occurred", ProviderError, "retry"),
        (3006, "Invalid Message Type: Foo", ProviderError, "could not understand"),
        (3006, 'Invalid JSON: {"a"', ProviderError, "could not understand"),
        (3006, "Invalid Message: x", ProviderError, "could not understand"),
        (
            3007,
            "Input duration violation: 20 ms. Expected between 50 and 1000 ms",
            ProviderError,
            "50-1000 ms",
        ),
        (
            3007,
            "Audio Transmission Rate Exceeded: Received 10 sec. audio in 2 sec",
            ProviderError,
            "faster than real time",
        ),
        (3007, "", ProviderError, "real-time speed"),
        (
            3008,
            "Session Expired: Maximum session duration exceeded",
            ProviderError,
            "maximum duration",
        ),
        (
            3009,
            "Unauthorized Connection: Too many concurrent sessions",
            ProviderError,
            "Wait a minute",
        ),
        # older docs: 3005 for all of these, same texts
        (
            3005,
            "Input duration violation: 1200 ms. Expected between 50 and 1000 ms",
            ProviderError,
            "50-1000 ms",
        ),
        (
            3005,
            "Audio Transmission Rate Exceeded: Received 5 sec. audio in 1 sec",
            ProviderError,
            "faster than real time",
        ),
        (
            3005,
            "Session Expired: Maximum session duration exceeded",
            ProviderError,
            "maximum duration",
        ),
        (3005, "Invalid JSON: x", ProviderError, "could not understand"),
        # legacy / v2 codes the SDK still maps
        (4000, "bad sample rate", ProviderError, "sample_rate"),
        (4001, "Not Authorized", AuthenticationError, "ASSEMBLYAI_API_KEY"),
        (4002, "Insufficient Funds", ProviderError, "insufficient funds"),
        (4003, "", ProviderError, "paid accounts"),
        (4004, "", ProviderError, "start a new one"),
        (4008, "", ProviderError, "maximum duration"),
        (4010, "", ProviderError, "start a new one"),
        (4029, "", ProviderError, "faster than real time"),
        (4030, "", ProviderError, "another connection"),
        (4031, "", ProviderError, "KeepAlive"),
        (4032, "", ProviderError, "50-1000 ms"),
        (4033, "", ProviderError, "50-1000 ms"),
        (4034, "", ProviderError, "50-1000 ms"),
        (4100, "", ProviderError, "could not understand"),
        (4101, "", ProviderError, "could not understand"),
        (4102, "", ProviderError, "Wait a minute"),
        (4103, "", ProviderError, "start a new one"),
        (4999, "strange", ProviderError, "ended with an error"),
    ],
)
def test_assemblyai_error_closes(code, reason, cls, advice):
    error = AssemblyAICodec().close_error(code, reason)
    assert type(error) is cls, error
    assert error.code == code and error.reason == reason
    assert advice in str(error)
    # an Error frame with the same code and text maps the same way
    same = AssemblyAICodec().error_from_event(ProviderErrorEvent(reason=reason, code=code))
    assert type(same) is cls and str(same) == str(error)


def test_assemblyai_normal_and_lost_closes():
    codec = AssemblyAICodec()
    assert codec.close_error(1000, "Session Ended") is None
    for code in (None, 1006, 1001, 1012, 1013):
        error = codec.close_error(code, "")
        assert isinstance(error, ConnectionLostError) and error.code == code
    assert isinstance(codec.close_error(1005, ""), ConnectionLostError)
    codec.decode('{"type":"Termination"}')
    assert codec.close_error(1005, "") is None


def test_assemblyai_error_event_code_as_text():
    error = AssemblyAICodec().error_from_event(ProviderErrorEvent(reason="", code="1008"))
    assert isinstance(error, AuthenticationError) and error.code == 1008
