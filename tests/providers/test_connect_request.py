"""connect_request: endpoints, query encoding, auth headers, base_url rules and redaction."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from livetx_widgets.errors import AuthenticationError, ConfigurationError
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec

KEY = "0123456789abcdef0123456789abcdef01234567"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl_-x"


def query(url):
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# -- Deepgram --------------------------------------------------------------------------------


def test_deepgram_default_request_matches_the_reference_client():
    req = DeepgramCodec().connect_request(KEY)
    assert req.url == (
        "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
        "&channels=1&punctuate=true&interim_results=true"
    )
    assert req.headers["Authorization"] == f"Token {KEY}"
    assert req.headers["User-Agent"].startswith("livetx-widgets/")
    assert req.subprotocols == ()


def test_deepgram_query_encodes_bools_lists_and_endpointing():
    codec = DeepgramCodec(
        interim_results=False,
        smart_format=True,
        endpointing=300,
        keyterm=["customer service", "Deepgram"],
        tag="run-1",
        redact=["pci", "ssn"],
        utterance_end_ms=None,
        language_hint={"languages": ["en", "es"]},
        encoding=None,
    )
    pairs = query(codec.connect_request(KEY).url)
    assert pairs == [
        ("model", "nova-3"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("punctuate", "true"),
        ("smart_format", "true"),
        ("interim_results", "false"),
        ("endpointing", "300"),
        ("keyterm", "customer service"),
        ("keyterm", "Deepgram"),
        ("redact", "pci"),
        ("redact", "ssn"),
        ("tag", "run-1"),
        ("language_hint", '{"languages":["en","es"]}'),
    ]
    assert "keyterm=customer+service&keyterm=Deepgram" in codec.connect_request(KEY).url
    assert ("endpointing", "false") in query(
        DeepgramCodec(endpointing=False).connect_request(KEY).url
    )
    assert ("redact", "true") in query(DeepgramCodec(redact=True).connect_request(KEY).url)


def test_deepgram_temporary_token_uses_bearer():
    assert DeepgramCodec().connect_request(JWT).headers["Authorization"] == f"Bearer {JWT}"
    for not_jwt in ("a.b", "a..c", "a.b.c!", "abc.def.ghi.jkl"):
        assert (
            DeepgramCodec().connect_request(not_jwt).headers["Authorization"].startswith("Token ")
        )


@pytest.mark.parametrize(
    ("base_url", "expected_prefix"),
    [
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/listen?model=nova-3&"),
        ("ws://127.0.0.1:8765/", "ws://127.0.0.1:8765/v1/listen?model=nova-3&"),
        ("wss://api.eu.deepgram.com", "wss://api.eu.deepgram.com/v1/listen?model=nova-3&"),
        ("http://localhost:9000", "ws://localhost:9000/v1/listen?model=nova-3&"),
        ("https://proxy.example", "wss://proxy.example/v1/listen?model=nova-3&"),
        ("HTTPS://proxy.example", "wss://proxy.example/v1/listen?model=nova-3&"),
        ("ws://127.0.0.1:8765/custom/listen", "ws://127.0.0.1:8765/custom/listen?model=nova-3&"),
        ("  ws://h:1  ", "ws://h:1/v1/listen?"),
    ],
)
def test_deepgram_base_url_rules(base_url, expected_prefix):
    assert DeepgramCodec().connect_request(KEY, base_url).url.startswith(expected_prefix)


def test_base_url_query_is_kept_and_codec_options_win():
    url = DeepgramCodec().connect_request(KEY, "ws://h:1/v1/listen?debug=true&model=x").url
    pairs = query(url)
    assert pairs[0] == ("debug", "true")
    assert [v for k, v in pairs if k == "model"] == ["nova-3"]


@pytest.mark.parametrize(
    "base_url", ["localhost:8765", "127.0.0.1", "ftp://h", "ws://", "", "   ", 8765]
)
@pytest.mark.parametrize("codec_cls", [DeepgramCodec, AssemblyAICodec])
def test_bad_base_url_is_a_configuration_error(codec_cls, base_url):
    with pytest.raises(ConfigurationError, match="ws://"):
        codec_cls().connect_request(KEY, base_url)


@pytest.mark.parametrize(
    ("codec_cls", "env_var"),
    [(DeepgramCodec, "DEEPGRAM_API_KEY"), (AssemblyAICodec, "ASSEMBLYAI_API_KEY")],
)
def test_missing_key_for_the_real_endpoint_says_what_to_set(codec_cls, env_var):
    for missing in (None, "", "  \n"):
        with pytest.raises(AuthenticationError, match=env_var) as info:
            codec_cls().connect_request(missing)
        assert "api_key=" in str(info.value)


@pytest.mark.parametrize("codec_cls", [DeepgramCodec, AssemblyAICodec])
def test_local_server_needs_no_key(codec_cls):
    req = codec_cls().connect_request(None, "ws://127.0.0.1:8765")
    assert "Authorization" not in req.headers
    assert req.url.startswith("ws://127.0.0.1:8765/")


@pytest.mark.parametrize("codec_cls", [DeepgramCodec, AssemblyAICodec])
def test_key_whitespace_is_stripped_and_inner_junk_refused(codec_cls):
    req = codec_cls().connect_request(f"  {KEY}\n")
    assert req.headers["Authorization"].endswith(KEY)
    assert not req.headers["Authorization"].endswith("\n")
    for bad in (f"{KEY[:10]} {KEY[10:]}", f"{KEY}\r\nX-Evil: 1", f"{KEY}é"):
        with pytest.raises(AuthenticationError) as info:
            codec_cls().connect_request(bad)
        assert KEY[:10] not in str(info.value)
    with pytest.raises(ConfigurationError, match="must be a str"):
        codec_cls().connect_request(b"bytes-key")


@pytest.mark.parametrize("codec_cls", [DeepgramCodec, AssemblyAICodec])
def test_key_never_shows_in_repr_or_safe_url(codec_cls):
    codec = codec_cls()
    req = codec.connect_request(KEY)
    assert KEY in req.headers["Authorization"]
    for shown in (repr(req), str(req), req.safe_url, repr(codec), str(codec.params)):
        assert KEY not in shown


# -- AssemblyAI ------------------------------------------------------------------------------


def test_assemblyai_default_request_matches_the_reference_client():
    req = AssemblyAICodec().connect_request(KEY)
    assert (
        req.url == "wss://streaming.assemblyai.com/v3/ws?speech_model=u3-rt-pro&sample_rate=16000"
    )
    assert req.headers["Authorization"] == KEY  # the raw key, no scheme


def test_assemblyai_query_encodes_bools_and_json_arrays_objects():
    codec = AssemblyAICodec(
        format_turns=True,
        speaker_labels=False,
        keyterms_prompt=["foo", "bar baz"],
        language_codes=("en", "es"),
        llm_gateway={"model": "m", "max_tokens": 5},
        end_of_turn_confidence_threshold=0.4,
        max_turn_silence=1280,
    )
    url = codec.connect_request(KEY).url
    pairs = dict(query(url))
    assert pairs["format_turns"] == "true"
    assert pairs["speaker_labels"] == "false"
    assert json.loads(pairs["keyterms_prompt"]) == ["foo", "bar baz"]
    assert json.loads(pairs["language_codes"]) == ["en", "es"]
    assert json.loads(pairs["llm_gateway"]) == {"model": "m", "max_tokens": 5}
    assert pairs["end_of_turn_confidence_threshold"] == "0.4"
    assert pairs["max_turn_silence"] == "1280"
    assert "keyterms_prompt=%5B%22foo%22%2C+%22bar+baz%22%5D" in url  # as the SDK sends it


def test_assemblyai_sdk_style_api_host():
    url = AssemblyAICodec().connect_request(KEY, "ws://127.0.0.1:8766").url
    assert url == "ws://127.0.0.1:8766/v3/ws?speech_model=u3-rt-pro&sample_rate=16000"
    url = AssemblyAICodec().connect_request(KEY, "https://streaming.eu.assemblyai.com").url
    assert url.startswith("wss://streaming.eu.assemblyai.com/v3/ws?")


def test_assemblyai_temporary_token_goes_in_the_query_and_is_redacted():
    token = "tmp-token-SECRET-123"
    codec = AssemblyAICodec(token=token)
    req = codec.connect_request(None)  # no key needed with a token
    assert ("token", token) in query(req.url)
    assert "Authorization" not in req.headers
    assert "token=***" in req.safe_url
    for shown in (repr(req), req.safe_url, repr(codec), str(codec.params)):
        assert token not in shown
    assert "token" not in codec.params
    # with a key as well, the token still wins and the key is not sent
    req = codec.connect_request(KEY)
    assert "Authorization" not in req.headers and KEY not in req.url


def test_assemblyai_webhook_secret_is_redacted():
    codec = AssemblyAICodec(
        webhook_url="https://hooks.example/x",
        webhook_auth_header_name="X-Auth",
        webhook_auth_header_value="hook-SECRET",
    )
    req = codec.connect_request(KEY)
    assert ("webhook_auth_header_value", "hook-SECRET") in query(req.url)
    for shown in (repr(req), req.safe_url, repr(codec), str(codec.params)):
        assert "hook-SECRET" not in shown
    assert codec.params["webhook_auth_header_name"] == "X-Auth"


def test_assemblyai_bad_token_is_refused_without_echo():
    with pytest.raises(AuthenticationError) as info:
        AssemblyAICodec(token="has space-SECRET")
    assert "SECRET" not in str(info.value) and "token" in str(info.value)
    with pytest.raises(ConfigurationError, match="blank"):
        AssemblyAICodec(token="   ")
