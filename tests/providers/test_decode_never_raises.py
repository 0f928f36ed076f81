"""Property tests: whatever arrives on the socket, decode returns events and never raises."""

from __future__ import annotations

import json
import typing

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livetx_widgets.events import (
    Event,
    FinalTranscript,
    SegmentSpeakers,
    SpeakerRevision,
    Word,
)
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec

EVENT_TYPES = typing.get_args(Event)  # the documented union, nothing else

CODECS = [DeepgramCodec, AssemblyAICodec]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

DEEPGRAM_TYPES = ["Results", "Metadata", "SpeechStarted", "UtteranceEnd", "Error",
                  "ConfigureSuccess", "ConfigureFailure"]  # fmt: skip
ASSEMBLYAI_TYPES = ["Begin", "Turn", "SpeechStarted", "Termination", "Error", "Warning",
                    "Heartbeat", "Silence", "SpeakerRevision", "LLMGatewayResponse"]  # fmt: skip
FIELD_NAMES = [
    "channel_index", "duration", "start", "is_final", "speech_final", "from_finalize",
    "channel", "alternatives", "transcript", "confidence", "words", "word", "punctuated_word",
    "end", "speaker", "request_id", "timestamp", "last_word_end", "variant", "description",
    "code", "id", "expires_at", "configuration", "model", "turn_order", "end_of_turn", "text",
    "speaker_label", "audio_duration_seconds", "session_duration_seconds", "error",
    "error_code", "warning", "warning_code", "revisions", "start_ms", "end_ms",
    "speaker_confidence",
]  # fmt: skip

# Messages with a known type and documented field names holding arbitrary values, nested one
# level so that Results.channel.alternatives[0].words[...] gets exercised too.
field_values = st.recursive(
    json_values,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5)
    ),
    max_leaves=25,
)


def message_like(types):
    return st.builds(
        lambda kind, fields: {**fields, "type": kind},
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=8),
    )


def assert_events(result):
    assert isinstance(result, list)
    assert all(isinstance(event, EVENT_TYPES) for event in result)
    for event in result:
        if isinstance(event, SpeakerRevision):
            assert event.segments, "a revision naming nothing is no event"
            for part in event.segments:
                assert isinstance(part, SegmentSpeakers)
                assert all(isinstance(w, Word) for w in part.words)
        words = getattr(event, "words", ())
        speakers = [getattr(event, "speaker", None)] + [w.speaker for w in words]
        assert "PENDING" not in speakers and "UNKNOWN" not in speakers


settings_ = settings(max_examples=support.examples(300), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@settings_
@given(text=st.text())
def test_arbitrary_text(text):
    for cls in CODECS:
        assert_events(cls().decode(text))


@settings_
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes(data):
    for cls in CODECS:
        assert_events(cls().decode(data))


@settings_
@given(value=json_values)
def test_arbitrary_json(value):
    text = json.dumps(value)
    for cls in CODECS:
        assert_events(cls().decode(text))


@settings_
@given(message=message_like(DEEPGRAM_TYPES))
@pytest.mark.slow  # ~7 s of Hypothesis examples
def test_deepgram_shaped_messages(message):
    assert_events(DeepgramCodec().decode(json.dumps(message)))


@settings_
@given(message=message_like(ASSEMBLYAI_TYPES))
@pytest.mark.slow  # ~7 s of Hypothesis examples
def test_assemblyai_shaped_messages(message):
    assert_events(AssemblyAICodec().decode(json.dumps(message)))


# SpeakerRevision: documented field names at every level, holding odd or plausible values.
speakers = st.sampled_from(["A", "B", "PENDING", "UNKNOWN", ""]) | json_values
revision_words = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "text": st.text(max_size=6) | json_values,
            "start": st.integers(0, 10**7) | json_values,
            "end": st.integers(0, 10**7) | json_values,
            "speaker": speakers,
            "speaker_confidence": st.floats(0, 1) | json_values,
        },
    )
    | json_values,
    max_size=4,
)
revisions = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "turn_order": st.integers(0, 10**6) | json_values,
            "speaker_label": speakers,
            "words": revision_words | json_values,
        },
    )
    | json_values,
    max_size=4,
)


@settings_
@given(revisions=revisions | json_values, offset=st.floats(0, 1e5), prefix=st.text(max_size=4))
def test_speaker_revisions_never_raise(revisions, offset, prefix):
    codec = AssemblyAICodec()
    codec.time_offset, codec.key_prefix = offset, prefix
    events = codec.decode(json.dumps({"type": "SpeakerRevision", "revisions": revisions}))
    assert_events(events)
    assert len(events) <= 1
    for event in events:
        if isinstance(event, SpeakerRevision):
            assert [p.segment_key for p in event.segments] == [
                f"{prefix}{r['turn_order']}" for r in revisions
            ]


@settings_
@given(
    words=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            st.integers(0, 10**7),
            st.integers(0, 10**4),
            st.sampled_from(["A", "B", "PENDING", "UNKNOWN"]),
        ),
        min_size=1,
        max_size=5,
    ),
    offset=st.floats(0, 1e5),
)
def test_revised_words_get_exactly_the_times_of_their_turn_words(words, offset):
    """Whatever the times, a revision word and its Turn word decode to equal floats, which is
    what lets the transcript match them."""
    items = [
        {"text": t, "start": s, "end": s + d, "speaker": spk, "confidence": 0.5}
        for t, s, d, spk in words
    ]
    codec = AssemblyAICodec(speaker_labels=True)
    codec.time_offset, codec.key_prefix = offset, "c3:"
    turn = {"type": "Turn", "turn_order": 7, "end_of_turn": True, "transcript": "x",
            "words": items}  # fmt: skip
    [final] = codec.decode(json.dumps(turn))
    revision = {"type": "SpeakerRevision",
                "revisions": [{"turn_order": 7, "speaker_label": "B", "words": items}]}  # fmt: skip
    [event] = codec.decode(json.dumps(revision))
    [part] = event.segments
    assert part.segment_key == final.segment_key
    assert [(w.text, w.start, w.end, w.speaker) for w in part.words] == [
        (w.text, w.start, w.end, w.speaker) for w in final.words
    ]


@settings_
@given(
    start=st.floats(min_value=0, max_value=1e6),
    duration=st.floats(min_value=0, max_value=100),
    words=st.lists(st.tuples(st.text(min_size=1, max_size=8), st.floats(0, 1e6)), max_size=5),
)
def test_well_formed_results_always_give_a_transcript(start, duration, words):
    frame = {
        "type": "Results", "channel_index": [0, 1], "start": start, "duration": duration,
        "is_final": True, "speech_final": False, "from_finalize": False,
        "channel": {"alternatives": [{
            "transcript": " ".join(w for w, _ in words), "confidence": 0.5,
            "words": [{"word": w, "start": t, "end": t + 0.1} for w, t in words],
        }]},
    }  # fmt: skip
    [event] = DeepgramCodec().decode(json.dumps(frame))
    assert isinstance(event, FinalTranscript)
    assert event.start == start and event.end >= start
    assert [w.text for w in event.words] == [w for w, _ in words]
