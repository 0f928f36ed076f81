"""Option validation: every documented option accepted, wrong names and values refused."""

from __future__ import annotations

import inspect
import math

import pytest

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec, make_codec
from livetx_widgets.providers import assemblyai as aai_module
from livetx_widgets.providers import deepgram as dg_module

# Every parameter named in the protocol notes' tables, with a valid value (typed as documented).
DEEPGRAM_DOCUMENTED = {
    "model": "nova-3-medical",
    "encoding": "mulaw",
    "sample_rate": 8000,
    "channels": 2,
    "multichannel": True,
    "language": "multi",
    "punctuate": False,
    "smart_format": True,
    "interim_results": True,
    "endpointing": 500,
    "utterance_end_ms": 1000,
    "vad_events": True,
    "diarize": True,
    "diarize_model": "latest",
    "keyterm": ["Deepgram", "customer service"],
    "keywords": ["term:2"],
    "numerals": True,
    "profanity_filter": True,
    "dictation": True,
    "filler_words": True,
    "detect_entities": True,
    "redact": "pci",
    "replace": ["a:b"],
    "search": ["hello"],
    "tag": ["t1", "t2"],
    "extra": ["key:value"],
    "version": "latest",
    "mip_opt_out": True,
    "callback": "https://example.com/cb",
    "callback_method": "POST",
    "language_hint": ["en", "es"],
}

ASSEMBLYAI_DOCUMENTED = {
    "speech_model": "universal-streaming-english",
    "sample_rate": 8000,
    "encoding": "pcm_mulaw",
    "format_turns": True,
    "end_of_turn_confidence_threshold": 0.7,
    "min_turn_silence": 160,
    "max_turn_silence": 1280,
    "vad_threshold": 0.3,
    "keyterms_prompt": ["cardiology", "Dr. Patel"],
    "prompt": "Transcribe verbatim.",
    "language_detection": True,
    "language_code": "en",
    "language_codes": ["en", "es"],
    "inactivity_timeout": 30,
    "speaker_labels": True,
    "max_speakers": 3,
    "filter_profanity": True,
    "token": "temp-token",
    "interruption_delay": 500,
    "continuous_partials": False,
    "mode": "balanced",
    "turn_left_pad_ms": 100,
    "agent_context": "Hello, how can I help?",
    "session_heartbeat": True,
    "acknowledge_silence": True,
    "include_partial_turns": True,
    "speaker_labels_revision_interval_ms": 2000,
    "voice_focus": "near-field",
    "voice_focus_threshold": 0.5,
    "domain": "medical-v1",
    "redact_pii": True,
    "redact_pii_policies": ["person_name", "phone_number"],
    "redact_pii_sub": "entity_name",
    "webhook_url": "https://example.com/hook",
    "webhook_auth_header_name": "X-Auth",
    "webhook_auth_header_value": "secret",
    "llm_gateway": {"model": "claude", "messages": []},
    "customer_support_audio_capture": True,
}


def test_signatures_list_exactly_the_option_tables():
    for cls, table in ((DeepgramCodec, dg_module.OPTIONS), (AssemblyAICodec, aai_module.OPTIONS)):
        params = inspect.signature(cls).parameters
        names = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        assert names == list(table)


@pytest.mark.parametrize("name", sorted(DEEPGRAM_DOCUMENTED))
def test_every_documented_deepgram_option_is_accepted(name):
    value = DEEPGRAM_DOCUMENTED[name]
    extra = {"interim_results": True} if name == "utterance_end_ms" else {}
    if name == "keywords":
        extra["model"] = "nova-2"
    codec = DeepgramCodec(**{name: value, **extra})
    sent = codec.params[name]
    assert sent == ([value] if name == "redact" else value)
    assert name in dict(codec.query)


@pytest.mark.parametrize("name", sorted(ASSEMBLYAI_DOCUMENTED))
def test_every_documented_assemblyai_option_is_accepted(name):
    value = ASSEMBLYAI_DOCUMENTED[name]
    extra = {"speaker_labels": True} if name == "max_speakers" else {}
    codec = AssemblyAICodec(**{name: value, **extra})
    url = codec.connect_request("k").url
    assert f"{name}=" in url
    if name in ("token", "webhook_auth_header_value"):
        assert name not in codec.params
    else:
        assert codec.params[name] == value


def test_all_documented_options_together():
    DeepgramCodec(**{**DEEPGRAM_DOCUMENTED, "keywords": None})
    AssemblyAICodec(**ASSEMBLYAI_DOCUMENTED)


def test_defaults_are_those_of_the_reference_scripts():
    dg = DeepgramCodec()
    assert dg.params == {
        "model": "nova-3", "encoding": "linear16", "sample_rate": 16000, "channels": 1,
        "punctuate": True, "interim_results": True,
    }  # fmt: skip
    assert (dg.name, dg.model, dg.sample_rate) == ("deepgram", "nova-3", 16000)
    assert (dg.min_chunk_ms, dg.max_chunk_ms) == (20, 250)
    aai = AssemblyAICodec()
    assert aai.params == {"speech_model": "u3-rt-pro", "sample_rate": 16000}
    assert (aai.name, aai.model, aai.sample_rate) == ("assemblyai", "u3-rt-pro", 16000)
    assert (aai.min_chunk_ms, aai.max_chunk_ms) == (50, 1000)


def test_none_means_not_sent():
    codec = DeepgramCodec(encoding=None, channels=None, punctuate=None)
    assert "encoding" not in codec.params and "channels" not in dict(codec.query)
    assert codec.sample_rate == 16000


@pytest.mark.parametrize(
    ("cls", "typo", "suggestion"),
    [
        (DeepgramCodec, "interim_result", "interim_results"),
        (DeepgramCodec, "keyterms", "keyterm"),
        (DeepgramCodec, "smartformat", "smart_format"),
        (AssemblyAICodec, "speechmodel", "speech_model"),
        (AssemblyAICodec, "keyterm_prompt", "keyterms_prompt"),
        (AssemblyAICodec, "model", "mode"),
    ],
)
def test_unknown_option_suggests_the_closest(cls, typo, suggestion):
    with pytest.raises(ConfigurationError, match=f"Did you mean '{suggestion}'") as info:
        cls(**{typo: 1})
    assert isinstance(info.value, ValueError)
    assert typo in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("interim_results", "yes", "a bool"),
        ("interim_results", 1, "a bool"),
        ("sample_rate", "16000", "an int"),
        ("sample_rate", True, "an int"),
        ("sample_rate", 0, ">= 1"),
        ("sample_rate", 16000.0, "an int"),
        ("channels", 0, ">= 1"),
        ("endpointing", True, "False to disable"),
        ("endpointing", -5, "False to disable"),
        ("endpointing", "300", "an int"),
        ("encoding", "pcm_s16le", "'linear16'"),
        ("model", "", "non-empty str"),
        ("model", 3, "non-empty str"),
        ("keyterm", [1, 2], "list of non-empty str"),
        ("keyterm", ["ok", ""], "list of non-empty str"),
        ("keyterm", {"a": 1}, "list of non-empty str"),
        ("redact", "everything", "'pci'"),
        ("redact", [], "'pci'"),
        ("language_hint", 5, "a dict"),
    ],
)
def test_wrong_deepgram_values_say_what_is_expected(name, value, expected):
    with pytest.raises(ConfigurationError) as info:
        DeepgramCodec(**{name: value})
    message = str(info.value)
    assert message.startswith(f"Deepgram option {name}=")
    assert expected in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("speech_model", "nova-3", "'u3-rt-pro'"),
        ("sample_rate", -1, ">= 1"),
        ("encoding", "linear16", "'pcm_s16le'"),
        ("format_turns", "true", "a bool"),
        ("end_of_turn_confidence_threshold", 1.5, "from 0 to 1"),
        ("end_of_turn_confidence_threshold", math.nan, "a number"),
        ("vad_threshold", "0.3", "a number"),
        ("min_turn_silence", 1.5, "an int"),
        ("inactivity_timeout", 4, "from 5 to 3600"),
        ("inactivity_timeout", 3601, "from 5 to 3600"),
        ("keyterms_prompt", "cardiology", "list of non-empty str"),
        ("keyterms_prompt", ["x" * 51], "at most 50 characters"),
        ("keyterms_prompt", [f"t{i}" for i in range(101)], "at most 100 items"),
        ("language_codes", [None], "list of non-empty str"),
        ("mode", "fast", "'balanced'"),
        ("voice_focus", "mid-field", "'near-field'"),
        ("llm_gateway", "{}", "a dict"),
        ("llm_gateway", {"x": object()}, "JSON-serializable"),
        ("llm_gateway", {"x": math.inf}, "JSON-serializable"),
    ],
)
def test_wrong_assemblyai_values_say_what_is_expected(name, value, expected):
    with pytest.raises(ConfigurationError) as info:
        AssemblyAICodec(**{name: value})
    message = str(info.value)
    assert message.startswith(f"AssemblyAI option {name}=")
    assert expected in message


def test_max_speakers_range_and_dependency():
    with pytest.raises(ConfigurationError, match="from 1 to 10"):
        AssemblyAICodec(speaker_labels=True, max_speakers=11)
    with pytest.raises(ConfigurationError, match="speaker_labels=True"):
        AssemblyAICodec(max_speakers=2)


def test_secret_values_are_not_echoed_in_errors():
    with pytest.raises(ConfigurationError) as info:
        AssemblyAICodec(webhook_auth_header_value=["SECRET"])
    assert "SECRET" not in str(info.value) and "<hidden>" in str(info.value)


def test_required_options_cannot_be_none():
    with pytest.raises(ConfigurationError, match="model"):
        DeepgramCodec(model=None)
    with pytest.raises(ConfigurationError, match="speech_model"):
        AssemblyAICodec(speech_model=None)
    with pytest.raises(ConfigurationError, match="sample_rate"):
        AssemblyAICodec(sample_rate=None)


def test_deepgram_option_combinations():
    with pytest.raises(ConfigurationError, match="interim_results=True"):
        DeepgramCodec(interim_results=False, utterance_end_ms=1000)
    with pytest.raises(ConfigurationError, match="keyterm"):
        DeepgramCodec(keywords=["x:2"])
    with pytest.raises(ConfigurationError, match="v2"):
        DeepgramCodec(diarize_model="v2")
    assert DeepgramCodec(model="nova-2", keywords="x:2").params["keywords"] == ["x:2"]


def test_deprecated_assemblyai_silence_name_is_rewritten():
    codec = AssemblyAICodec(min_end_of_turn_silence_when_confident=160)
    assert codec.params["min_turn_silence"] == 160
    assert "min_end_of_turn_silence_when_confident" not in codec.connect_request("k").url
    with pytest.raises(ConfigurationError, match="min_turn_silence only"):
        AssemblyAICodec(min_turn_silence=100, min_end_of_turn_silence_when_confident=160)


def test_params_are_a_copy():
    codec = DeepgramCodec(keyterm=["a"])
    codec.params["keyterm"].append("b")
    codec.params["model"] = "x"
    assert codec.params["keyterm"] == ["a"] and codec.model == "nova-3"


# -- make_codec ------------------------------------------------------------------------------


def test_make_codec_builds_each_provider():
    dg = make_codec("deepgram", model="nova-2", interim_results=False)
    assert isinstance(dg, DeepgramCodec) and dg.model == "nova-2"
    assert dg.params["interim_results"] is False
    aai = make_codec(" AssemblyAI ", speech_model="whisper-rt")
    assert isinstance(aai, AssemblyAICodec) and aai.model == "whisper-rt"


@pytest.mark.parametrize("provider", ["local", "auto", "openai", "", None, 3])
def test_make_codec_names_the_valid_providers(provider):
    with pytest.raises(ConfigurationError, match="'deepgram', 'assemblyai'"):
        make_codec(provider)


def test_make_codec_validates_options():
    with pytest.raises(ConfigurationError, match="Did you mean 'vad_events'"):
        make_codec("deepgram", vad_event=True)
