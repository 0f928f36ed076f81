"""AssemblyAICodec.decode: the protocol notes' sample frames, lifecycles and malformed input."""

from __future__ import annotations

import dataclasses
import json

import pytest

from livetx_widgets.errors import AuthenticationError, ProviderError
from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SessionEnded,
    SessionStarted,
    SpeechStarted,
    Word,
)
from livetx_widgets.providers import AssemblyAICodec


@pytest.fixture
def codec():
    return AssemblyAICodec()


def without_confidence(event):
    return dataclasses.replace(event, confidence=None)


# -- the sample frames of assemblyai-streaming-v3.md, replayed verbatim ----------------------


def test_begin_sample(codec, aai_fixture):
    assert codec.decode(aai_fixture("begin")) == [
        SessionStarted(
            session_id="aa006a1d-d478-4827-948a-4067d1030530",
            expires_at=1789752682.0,
            model="universal-streaming-english",
        )
    ]
    assert codec.handshake_events({"x": "y"}) == []


def test_begin_without_configuration_reports_the_requested_model(codec):
    [event] = codec.decode('{"type":"Begin","id":"s-1","expires_at":1789752682}')
    assert event == SessionStarted(session_id="s-1", expires_at=1789752682.0, model="u3-rt-pro")


def test_speech_started_sample_in_seconds(codec, aai_fixture):
    assert codec.decode(aai_fixture("speech-started")) == [
        SpeechStarted(timestamp=1.216, confidence=0.987654)
    ]


def test_u3_partial_sample(codec, aai_fixture):
    [event] = codec.decode(aai_fixture("turn-u3-partial"))
    assert without_confidence(event) == PartialTranscript(
        text="My name is—",
        words=(
            Word("My", 1.216, 1.627, 0.956314),
            Word("name", 1.668, 2.49, 0.999393),
            Word("is—", 2.531, 3.067, 0.753325),
        ),
        start=1.216,
        end=3.067,
        segment_key="0",
        end_of_turn=False,
    )
    assert event.confidence == pytest.approx((0.956314 + 0.999393 + 0.753325) / 3)


def test_u3_final_sample_replaces_the_partial(codec, aai_fixture):
    partial = codec.decode(aai_fixture("turn-u3-partial"))[0]
    [final] = codec.decode(aai_fixture("turn-u3-final"))
    assert without_confidence(final) == FinalTranscript(
        text="My name is Sonny.",
        words=(
            Word("My", 1.216, 1.635, 0.956583),
            Word("name", 1.676, 2.515, 0.999199),
            Word("is", 2.556, 2.975, 0.999535),
            Word("Sonny.", 3.016, 4.155, 0.316031),
        ),
        start=1.216,
        end=4.155,
        segment_key="0",
        end_of_turn=True,
        from_finalize=False,
    )
    assert final.segment_key == partial.segment_key
    assert final.raw["utterance"] == "My name is Sonny."


def test_universal_partial_sample(codec, aai_fixture):
    [event] = codec.decode(aai_fixture("turn-universal-partial"))
    assert without_confidence(event) == PartialTranscript(
        text="the quick",
        words=(Word("the", 0.56, 0.64, 0.843129), Word("quick", 0.72, 0.8, 0.478606)),
        start=0.56,
        end=0.8,
        segment_key="0",
    )


def test_termination_sample_ends_the_session(codec, aai_fixture):
    assert codec.decode(aai_fixture("termination")) == [
        SessionEnded(audio_duration_s=4.0, session_duration_s=7.0)
    ]
    assert codec.finished is True


def test_error_samples_are_fatal_and_map_to_typed_errors(codec, aai_fixture):
    [auth] = codec.decode(aai_fixture("error-1008-unauthorized"))
    assert auth == ProviderErrorEvent(
        reason="Unauthorized Connection: Invalid API key", code=1008, fatal=True
    )
    error = codec.error_from_event(auth)
    assert isinstance(error, AuthenticationError)
    assert "ASSEMBLYAI_API_KEY" in str(error)

    [expired] = codec.decode(aai_fixture("error-3008-session-expired"))
    assert expired == ProviderErrorEvent(
        reason="Session Expired: Maximum session duration exceeded", code=3008, fatal=True
    )
    error = codec.error_from_event(expired)
    assert type(error) is ProviderError
    assert error.code == 3008 and "maximum duration" in str(error)


def test_legacy_error_without_type(codec, aai_fixture):
    [event] = codec.decode(aai_fixture("error-legacy-untyped"))
    assert event == ProviderErrorEvent(reason="...", code=None, fatal=True)
    legacy_auth = codec.decode('{"error": "Unauthorized connection: Incorrect padding"}')[0]
    assert isinstance(codec.error_from_event(legacy_auth), AuthenticationError)


def test_warning_sample(codec, aai_fixture):
    [warning] = codec.decode(aai_fixture("warning"))
    assert warning == ProviderWarning(message="AssemblyAI warning: <text>", code=1234)


@pytest.mark.parametrize("name", ["heartbeat", "silence", "llm-gateway-response"])
def test_opt_in_messages_are_known_and_quiet(codec, aai_fixture, name):
    assert codec.decode(aai_fixture(name)) == []


def test_token_response_is_not_a_stream_message(codec, aai_fixture):
    [warning] = codec.decode(aai_fixture("token-response"))
    assert isinstance(warning, ProviderWarning) and "without a 'type'" in warning.message


# -- lifecycles ------------------------------------------------------------------------------


def test_u3_session_lifecycle(codec, aai_fixture):
    """Begin -> SpeechStarted -> partial -> final -> (flushed empty turn) -> Termination."""
    frames = [
        aai_fixture("begin"),
        aai_fixture("speech-started"),
        aai_fixture("turn-u3-partial"),
        aai_fixture("turn-u3-final"),
        '{"turn_order":1,"turn_is_formatted":true,"end_of_turn":true,"transcript":"",'
        '"end_of_turn_confidence":1,"words":[],"utterance":"","type":"Turn"}',
        aai_fixture("termination"),
    ]
    events = []
    for frame in frames:
        assert codec.finished is False
        events.extend(codec.decode(frame))
    assert codec.finished is True
    assert [type(e) for e in events] == [
        SessionStarted, SpeechStarted, PartialTranscript, FinalTranscript, FinalTranscript,
        SessionEnded,
    ]  # fmt: skip
    partial, final, empty = events[2:5]
    assert [e.segment_key for e in (partial, final, empty)] == ["0", "0", "1"]
    assert (partial.text, final.text, empty.text) == ("My name is—", "My name is Sonny.", "")
    # a turn without words sits where the audio had got to, not at zero
    assert (empty.start, empty.end, empty.words) == (4.155, 4.155, ())
    assert codec.close_error(1000, "Session Ended") is None


def test_reconnect_resets_finished_and_clock(codec, aai_fixture):
    codec.decode(aai_fixture("turn-u3-final"))
    codec.decode(aai_fixture("termination"))
    assert codec.finished
    codec.connect_request("k")
    assert codec.finished is False
    [event] = codec.decode('{"type":"Turn","turn_order":0,"transcript":"","end_of_turn":false}')
    assert (event.start, event.end) == (0.0, 0.0)


def test_diarized_turn_uses_speaker_label(codec):
    frame = {
        "type": "Turn", "turn_order": 3, "end_of_turn": True, "transcript": "Hi there.",
        "speaker_label": "B",
        "words": [{"text": "Hi", "start": 100, "end": 300, "confidence": 0.5, "speaker": "B"},
                  {"text": "there.", "start": 350, "end": 700, "confidence": 1.0,
                   "speaker": "B"}],
    }  # fmt: skip
    [event] = codec.decode(json.dumps(frame))
    assert event.speaker == "B"
    assert [w.speaker for w in event.words] == ["B", "B"]
    assert event.confidence == 0.75
    del frame["speaker_label"]
    frame["words"][0]["speaker"] = "A"
    frame["words"].append({"text": "Yes", "start": 800, "end": 900, "speaker": "A"})
    [event] = codec.decode(json.dumps(frame))
    assert event.speaker == "A"  # most words
    assert event.words[-1] == Word("Yes", 0.8, 0.9, None, "A")


def test_unknown_fields_are_ignored(codec, aai_fixture):
    frame = json.loads(aai_fixture("turn-u3-final"))
    frame["language_code"] = "en"
    frame["novel"] = [1, 2]
    frame["words"][0]["extra"] = {}
    assert codec.decode(json.dumps(frame)) == codec.decode(aai_fixture("turn-u3-final"))


def test_unknown_type_warns_with_its_name(codec):
    [warning] = codec.decode('{"type": "Telepathy"}')
    assert isinstance(warning, ProviderWarning) and "'Telepathy'" in warning.message


# -- malformed input: a warning, never an exception -------------------------------------------


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not an object"),
        ("true", "not an object"),
        ('{"type": 3}', "unknown message type"),
        ("{}", "without a 'type'"),
        ('{"type":"Turn","transcript":"x"}', "'turn_order'"),
        ('{"type":"Turn","turn_order":"0","transcript":"x"}', "'turn_order'"),
        ('{"type":"Turn","turn_order":0}', "'transcript'"),
        ('{"type":"Turn","turn_order":0,"transcript":null}', "'transcript'"),
        ('{"type":"Turn","turn_order":0,"transcript":"x","end_of_turn":1}', "'end_of_turn'"),
        ('{"type":"Turn","turn_order":0,"transcript":"x","words":"x"}', "'words'"),
        (
            '{"type":"Turn","turn_order":0,"transcript":"x","words":[{"text":"x","start":"1",'
            '"end":2}]}',
            "'start'",
        ),
        ('{"type":"Turn","turn_order":0,"transcript":"x","words":[{"start":1,"end":2}]}', "'text'"),
        ('{"type":"Turn","turn_order":0,"transcript":"x","words":[[1,2]]}', "word 0"),
        ('{"type":"Turn","turn_order":0,"transcript":"x","speaker_label":1}', "'speaker_label'"),
        ('{"type":"SpeechStarted"}', "'timestamp'"),
        ('{"type":"SpeechStarted","timestamp":"1216"}', "'timestamp'"),
        ('{"type":"Warning","warning":{"a":1}}', "'warning'"),
        ('{"type":"Heartbeat","realtime_factor":"fast"}', "'realtime_factor'"),
        ('{"type":"Silence","start_ms":[1]}', "'start_ms'"),
        ('{"type":"SpeakerRevision","revisions":{}}', "'revisions'"),
        ('{"type":"LLMGatewayResponse","turn_order":"zero"}', "'turn_order'"),
    ],
)
def test_malformed_frames_become_warnings(codec, frame, says):
    events = codec.decode(frame)
    assert len(events) == 1
    [warning] = events
    assert isinstance(warning, ProviderWarning), events
    assert says in warning.message


def test_begin_and_termination_with_bad_fields_still_count(codec):
    events = codec.decode('{"type":"Begin","id":5,"expires_at":"soon","configuration":[]}')
    assert events[0] == SessionStarted(model="u3-rt-pro")
    assert isinstance(events[1], ProviderWarning)
    assert all(f"'{k}'" in events[1].message for k in ("id", "expires_at", "configuration"))
    events = codec.decode('{"type":"Termination","audio_duration_seconds":"4"}')
    assert events[0] == SessionEnded()
    assert isinstance(events[1], ProviderWarning)
    assert codec.finished is True


def test_error_frame_with_odd_fields_is_still_an_error(codec):
    [event] = codec.decode('{"type":"Error","error_code":[1],"error":{"why":"x"}}')
    assert isinstance(event, ProviderErrorEvent) and event.fatal
    assert event.code is None and "why" in event.reason


def test_binary_frame_becomes_a_warning(codec):
    [warning] = codec.decode(b"\x89PNG\r\n")
    assert isinstance(warning, ProviderWarning) and "binary frame of 6 bytes" in warning.message
