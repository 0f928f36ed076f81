"""AssemblyAI with speaker_labels: placeholders are "not known", SpeakerRevision is an event.

``PENDING`` (a word whose speaker is not settled yet) and ``UNKNOWN`` (a turn too short to
tell) must decode as ``None``; a ``SpeakerRevision`` must name its segments and words exactly
as the Turn updates did (key prefix, time offset), so that the transcript can find them.
"""

from __future__ import annotations

import json

import pytest

from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    ProviderWarning,
    SegmentSpeakers,
    SpeakerRevision,
    Word,
)
from livetx_widgets.providers import AssemblyAICodec
from livetx_widgets.providers.assemblyai_words import words_checked as _words_checked
from livetx_widgets.providers.assemblyai_words import words_fast as _words_fast


@pytest.fixture
def codec():
    return AssemblyAICodec(speaker_labels=True)


def _turn(words, label=None, *, order=0, final=True):
    frame = {
        "turn_order": order, "end_of_turn": final, "turn_is_formatted": final,
        "transcript": " ".join(w["text"] for w in words), "words": words, "type": "Turn",
    }  # fmt: skip
    if label is not None:
        frame["speaker_label"] = label
    return json.dumps(frame)


def _word(text, start, speaker, **extra):
    return {"text": text, "start": start, "end": start + 100, "speaker": speaker, **extra}


# -- placeholders in Turns ----------------------------------------------------------------------


def test_pending_words_are_not_a_speaker(codec, aai_fixture):
    [partial] = codec.decode(aai_fixture("turn-u3-partial-speaker-labels"))
    assert isinstance(partial, PartialTranscript)
    assert [(w.text, w.speaker, w.speaker_confidence) for w in partial.words] == [
        ("My", "A", 0.91),
        ("name", None, None),  # PENDING: not known yet, and no confidence for a non-label
        ("is—", None, None),
    ]
    assert partial.speaker == "A"

    [final] = codec.decode(aai_fixture("turn-u3-final-speaker-labels"))
    assert isinstance(final, FinalTranscript)
    assert final.words == (
        Word("My", 1.216, 1.635, 0.956583, "A", 0.93),
        Word("name", 1.676, 2.515, 0.999199, "A", 0.88),
        Word("is", 2.556, 2.975, 0.999535, None, None),
        Word("Sonny.", 3.016, 4.155, 0.316031, None, None),
    )
    assert final.speaker == "A"
    assert "PENDING" not in repr(final)


def test_unknown_turn_label_is_not_a_speaker(codec, aai_fixture):
    [final] = codec.decode(aai_fixture("turn-short-unknown-speaker"))
    assert final.speaker is None
    assert final.words == (Word("Yes.", 4.6, 4.98, 0.97, None, None),)
    assert "UNKNOWN" not in repr(final)


def test_placeholder_words_do_not_outvote_settled_ones(codec):
    words = [_word("a", 0, "B"), _word("b", 100, "PENDING"), _word("c", 200, "PENDING"),
             _word("d", 300, "UNKNOWN")]  # fmt: skip
    [event] = codec.decode(_turn(words))
    assert event.speaker == "B"
    [event] = codec.decode(_turn(words, label="UNKNOWN"))
    assert event.speaker == "B"  # no label: the words that are known decide
    [event] = codec.decode(_turn(words[1:], label="UNKNOWN"))
    assert event.speaker is None
    assert [w.speaker for w in event.words] == [None, None, None]


def test_checked_path_reads_speakers_like_the_fast_path(aai_fixture):
    for name in ("turn-u3-partial-speaker-labels", "turn-u3-final-speaker-labels",
                 "turn-short-unknown-speaker"):  # fmt: skip
        items = json.loads(aai_fixture(name))["words"]
        assert _words_fast(items) == _words_checked(items)
    # A time too large for the fast path's bound sends the frame down the checked path.
    words = [_word("a", 10**16, "PENDING", speaker_confidence=0.0), _word("b", 0, "C")]
    fast = _words_fast(words)
    assert fast is None
    checked, speakers, _ = _words_checked(words)
    assert [w.speaker for w in checked] == [None, "C"]
    assert speakers == ["C"]


@pytest.mark.parametrize(
    ("word", "says"),
    [
        ({"speaker": "A", "speaker_confidence": "high"}, "'speaker_confidence'"),
        ({"speaker": "A", "speaker_confidence": True}, "'speaker_confidence'"),
        ({"speaker": 1}, "'speaker'"),
    ],
)
def test_bad_speaker_fields_are_named(codec, word, says):
    [warning] = codec.decode(_turn([{"text": "x", "start": 0, "end": 1, **word}]))
    assert isinstance(warning, ProviderWarning)
    assert says in warning.message


# -- SpeakerRevision ------------------------------------------------------------------------------


def test_revision_sample_becomes_an_event(codec, aai_fixture):
    events = codec.decode(aai_fixture("speaker-revision"))
    assert events == [
        SpeakerRevision(
            segments=(SegmentSpeakers("3", "B", (Word("Hello", 1.2, 1.45, None, "B"),)),)
        )
    ]
    assert events[0].raw["revisions"][0]["turn_order"] == 3


def test_revision_of_several_turns(codec, aai_fixture):
    [revision] = codec.decode(aai_fixture("speaker-revision-late"))
    assert revision.segments == (
        SegmentSpeakers(
            "0", "A", (Word("is", 2.556, 2.975, None, "A"), Word("Sonny.", 3.016, 4.155, None, "A"))
        ),
        SegmentSpeakers("1", "B", (Word("Yes.", 4.6, 4.98, None, "B"),)),
    )


def test_revision_uses_the_connection_key_prefix_and_offset(aai_fixture):
    """After a reconnect, the revision names the turns of *this* connection, on the session
    clock, with exactly the times the Turn words got (so the transcript can match them)."""
    codec = AssemblyAICodec(speaker_labels=True)
    codec.time_offset, codec.key_prefix = 61.37, "c2:"
    [final] = codec.decode(aai_fixture("turn-u3-final-speaker-labels"))
    [revision] = codec.decode(aai_fixture("speaker-revision-late"))
    first = revision.segments[0]
    assert first.segment_key == final.segment_key == "c2:0"
    assert revision.segments[1].segment_key == "c2:1"
    by_text = {w.text: (w.start, w.end) for w in final.words}
    assert [(w.start, w.end) for w in first.words] == [by_text["is"], by_text["Sonny."]]
    assert first.words[0].start == pytest.approx(61.37 + 2.556)


def test_revision_placeholders_and_missing_parts(codec):
    frame = {"type": "SpeakerRevision", "revisions": [
        {"turn_order": 2, "speaker_label": "UNKNOWN",
         "words": [{"text": "hm", "start": 0, "end": 80, "speaker": "PENDING"},
                   {"text": "ok", "start": 90, "end": 200, "speaker": "C",
                    "speaker_confidence": 0.7}]},
        {"turn_order": 4, "speaker_label": "D"},
    ]}  # fmt: skip
    [revision] = codec.decode(json.dumps(frame))
    assert revision.segments == (
        SegmentSpeakers("2", None, (Word("hm", 0.0, 0.08), Word("ok", 0.09, 0.2, None, "C", 0.7))),
        SegmentSpeakers("4", "D", ()),
    )


@pytest.mark.parametrize(
    "frame", ['{"type":"SpeakerRevision"}', '{"type":"SpeakerRevision","revisions":[]}']
)
def test_revision_naming_nothing_is_quiet(codec, frame):
    assert codec.decode(frame) == []


@pytest.mark.parametrize(
    ("revisions", "says"),
    [
        ({}, "'revisions'"),
        ("all", "'revisions'"),
        ([3], "revision 0 of SpeakerRevision should be an object"),
        ([{"speaker_label": "B"}], "'turn_order'"),
        ([{"turn_order": "3"}], "'turn_order'"),
        ([{"turn_order": True}], "'turn_order'"),
        ([{"turn_order": 1}, {"turn_order": 2, "speaker_label": 5}], "'speaker_label'"),
        ([{"turn_order": 1, "words": "Hello"}], "'words'"),
        ([{"turn_order": 1, "words": [7]}], "word 0 of revision 0"),
        ([{"turn_order": 1, "words": [{"text": "a", "start": "1", "end": 2}]}], "'start'"),
        ([{"turn_order": 1, "words": [{"start": 1, "end": 2}]}], "'text'"),
        ([{"turn_order": 1, "words": [{"text": "a", "start": 1, "end": 2, "speaker": 0}]}],
         "'speaker'"),
        ([{"turn_order": 1, "words": [{"text": "a", "start": 1, "end": 2, "speaker": "A",
                                       "speaker_confidence": "x"}]}], "'speaker_confidence'"),
    ],
)  # fmt: skip
def test_malformed_revisions_become_one_warning(codec, revisions, says):
    events = codec.decode(json.dumps({"type": "SpeakerRevision", "revisions": revisions}))
    assert len(events) == 1 and isinstance(events[0], ProviderWarning), events
    assert "malformed SpeakerRevision" in events[0].message
    assert says in events[0].message
