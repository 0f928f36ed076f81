"""Control messages the codecs encode, checked against the client samples in the notes."""

from __future__ import annotations

import json

import pytest

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec

# -- Deepgram (the SDK's spaced JSON, byte for byte) -----------------------------------------


def test_deepgram_keepalive_finalize_close(dg_fixture):
    codec = DeepgramCodec()
    assert codec.keepalive() == dg_fixture("client-keepalive").strip()
    assert codec.finalize() == dg_fixture("client-finalize").strip()
    assert codec.finalize(channel=0) == dg_fixture("client-finalize-channel").strip()
    assert codec.close_messages() == [
        dg_fixture("client-finalize").strip(),
        dg_fixture("client-closestream").strip(),
    ]


def test_deepgram_configure(dg_fixture):
    codec = DeepgramCodec()
    message = codec.configure(keyterms=["Deepgram", "customer service"], numerals=True)
    assert message == dg_fixture("client-configure").strip()
    assert json.loads(codec.configure(keyterms=[])) == {"type": "Configure", "keyterms": []}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs keyterms"),
        ({"numeral": True}, "Did you mean 'numerals'"),
        ({"model": "nova-2"}, "has no option 'model'"),
        ({"numerals": "yes"}, "a bool"),
        ({"keyterms": "Deepgram"}, "list of non-empty str"),
    ],
)
def test_deepgram_configure_is_validated(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        DeepgramCodec().configure(**kwargs)


def test_deepgram_finalize_channel_is_validated():
    with pytest.raises(ConfigurationError, match="an int"):
        DeepgramCodec().finalize(channel="0")


# -- AssemblyAI (compact JSON) ---------------------------------------------------------------


def test_assemblyai_keepalive_finalize_close(aai_fixture):
    codec = AssemblyAICodec()
    assert codec.keepalive() == aai_fixture("client-keepalive").strip()
    assert codec.finalize() == aai_fixture("client-force-endpoint").strip()
    assert codec.close_messages() == [aai_fixture("client-terminate").strip()]


def test_assemblyai_update_configuration(aai_fixture):
    codec = AssemblyAICodec()
    message = codec.update_configuration(
        keyterms_prompt=["cardiology", "Dr. Patel"], max_turn_silence=5000, min_turn_silence=200
    )
    assert message == aai_fixture("client-update-configuration").strip()
    sdk_style = json.loads(aai_fixture("client-update-configuration-sdk"))
    assert json.loads(codec.update_configuration(max_turn_silence=2000)) == sdk_style


def test_assemblyai_update_is_remembered_for_reconnects():
    codec = AssemblyAICodec(keyterms_prompt=["a"])
    codec.update_configuration(max_turn_silence=2000, prompt="Be exact.")
    assert codec.params["max_turn_silence"] == 2000
    assert "max_turn_silence=2000" in codec.connect_request("k").url
    codec.update_configuration(keyterms_prompt=[])  # clears
    assert "keyterms_prompt" not in codec.params


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "at least one setting"),
        ({"max_turn_silence": None}, "at least one setting"),
        ({"speech_model": "whisper-rt"}, "has no option 'speech_model'"),
        ({"max_turn_silenc": 10}, "Did you mean 'max_turn_silence'"),
        ({"max_turn_silence": "2000"}, "an int"),
        ({"keyterms_prompt": ["x" * 60]}, "at most 50 characters"),
        ({"end_of_turn_confidence_threshold": 2}, "from 0 to 1"),
    ],
)
def test_assemblyai_update_configuration_is_validated(kwargs, match):
    codec = AssemblyAICodec()
    with pytest.raises(ConfigurationError, match=match):
        codec.update_configuration(**kwargs)
    assert codec.params == {"speech_model": "u3-rt-pro", "sample_rate": 16000}
