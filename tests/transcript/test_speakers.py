"""Speakers in the transcript: placeholders never become speakers, revisions re-label in place.

The AssemblyAI frames are the fixtures of tests/fixtures/assemblyai (see
tests/providers/conftest.py), decoded by the real codec, so these tests follow what a session
does: ``transcript.apply(event)`` for every decoded event.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    SegmentSpeakers,
    SpeakerRevision,
    Word,
)
from livetx_widgets.providers import AssemblyAICodec, DeepgramCodec
from livetx_widgets.transcript import Transcript
from livetx_widgets.transcript.model import MAX_EARLY_REVISIONS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def aai(name: str) -> str:
    return (FIXTURES / "assemblyai" / f"{name}.json").read_text(encoding="utf-8")


def feed(t: Transcript, codec, *frames: str) -> list:
    """Decode and apply like the session does; the results of ``apply``, per event."""
    return [t.apply(event) for frame in frames for event in codec.decode(frame)]


def everything(t: Transcript) -> str:
    """Every export's text, to check that no placeholder leaks anywhere."""
    return "\n".join(
        [
            t.to_dataframe().to_csv(),
            t.words_dataframe().to_csv(),
            t.to_srt(),
            t.to_vtt(),
            t.to_json(),
            repr(t.segments),
        ]
    )


def revision(*parts: SegmentSpeakers) -> SpeakerRevision:
    return SpeakerRevision(segments=parts)


@pytest.fixture
def codec():
    return AssemblyAICodec(speaker_labels=True)


# -- placeholders -------------------------------------------------------------------------------


def test_placeholders_are_not_known_speakers_in_any_export(codec, srt_reader, vtt_reader):
    t = Transcript(provider="assemblyai")
    feed(
        t, codec, aai("turn-u3-partial-speaker-labels"), aai("turn-u3-final-speaker-labels"),
        aai("turn-short-unknown-speaker"),
    )  # fmt: skip
    first, short = t.segments
    assert first.speaker == "A" and short.speaker is None
    assert [w.speaker for w in first.words] == ["A", "A", None, None]
    assert [w.speaker for w in short.words] == [None]

    df = t.to_dataframe()
    assert df["speaker"].tolist()[0] == "A" and df["speaker"].isna().tolist() == [False, True]
    words = t.words_dataframe()
    # A word not known yet shows its segment's speaker; its label confidence stays unknown.
    assert words["speaker"].tolist()[:4] == ["A"] * 4
    assert words["speaker"].isna().tolist() == [False] * 4 + [True]
    assert words["speaker_confidence"].tolist()[:2] == [0.93, 0.88]
    assert all(math.isnan(c) for c in words["speaker_confidence"].tolist()[2:])

    assert [c.text for c in srt_reader(t.to_srt())] == ["Speaker A: My name is Sonny.", "Yes."]
    assert [c.voice for c in vtt_reader(t.to_vtt())] == ["Speaker A", None]
    text = everything(t)
    assert "PENDING" not in text and "UNKNOWN" not in text


# -- revisions of committed segments -------------------------------------------------------------


def test_late_revision_relabels_committed_segments_in_place(codec, srt_reader, vtt_reader):
    t = Transcript(provider="assemblyai")
    feed(t, codec, aai("turn-u3-final-speaker-labels"), aai("turn-short-unknown-speaker"))
    before = t.segments
    version = t.version

    [changed] = feed(t, codec, aai("speaker-revision-late"))
    assert [s.segment_id for s in changed] == [0, 1]
    assert changed == t.segments
    first, short = changed
    assert [w.speaker for w in first.words] == ["A", "A", "A", "A"]
    assert first.speaker == "A"
    assert short.speaker == "B"
    assert short.words == (Word("Yes.", 4.6, 4.98, 0.97, "B", None),)
    assert t.version == version + 1
    # Only speakers changed: everything else (ids, times, text, received_at) is kept.
    for old, new in zip(before, changed, strict=True):
        assert (old.segment_id, old.key, old.text, old.start, old.end, old.received_at) == (
            new.segment_id, new.key, new.text, new.start, new.end, new.received_at
        )  # fmt: skip

    assert t.to_dataframe()["speaker"].tolist() == ["A", "B"]
    assert t.words_dataframe()["speaker"].tolist() == ["A"] * 4 + ["B"]
    assert [c.text for c in srt_reader(t.to_srt())] == [
        "Speaker A: My name is Sonny.",
        "Speaker B: Yes.",
    ]
    assert [c.voice for c in vtt_reader(t.to_vtt())] == ["Speaker A", "Speaker B"]
    assert Transcript.from_json(t.to_json()).segments == t.segments

    # The same revision again changes nothing.
    assert t.apply(next(iter(codec.decode(aai("speaker-revision-late"))))) == []
    assert t.version == version + 1


def test_segment_speaker_is_recomputed_from_the_words_without_a_label():
    t = Transcript()
    words = (Word("a", 0, 1, speaker="A"), Word("b", 1, 2), Word("c", 2, 3))
    t.apply(FinalTranscript("a b c", words=words, speaker="A", segment_key="7"))
    [seg] = t.apply(
        revision(
            SegmentSpeakers("7", None, (Word("b", 1, 2, None, "B"), Word("c", 2, 3, None, "B")))
        )
    )
    assert seg.speaker == "B"  # two words of three are now B
    assert [w.speaker for w in seg.words] == ["A", "B", "B"]


def test_revision_without_words_relabels_the_whole_segment():
    t = Transcript()
    words = (Word("a", 0, 1, speaker="A", speaker_confidence=0.4), Word("b", 1, 2))
    t.apply(FinalTranscript("a b", words=words, speaker="A", segment_key="k"))
    [seg] = t.apply(revision(SegmentSpeakers("k", "C")))
    assert seg.speaker == "C"
    # The old confidence was about the old label.
    assert [(w.speaker, w.speaker_confidence) for w in seg.words] == [("C", None), ("C", None)]
    # Confirming a speaker without a score keeps the score it had; a new score replaces it.
    t.apply(revision(SegmentSpeakers("k", None, (Word("a", 0, 1, None, "C", 0.8),))))
    assert t.apply(revision(SegmentSpeakers("k", "C"))) == []
    assert t[0].words[0].speaker_confidence == 0.8


def test_revised_word_without_its_own_speaker_takes_the_revision_label():
    t = Transcript()
    t.apply(FinalTranscript("a b", words=(Word("a", 0, 1), Word("b", 1, 2)), segment_key="k"))
    [seg] = t.apply(revision(SegmentSpeakers("k", "D", (Word("b", 1, 2),))))
    assert [w.speaker for w in seg.words] == [None, "D"]  # "a" was not named
    assert seg.speaker == "D"


def test_word_matching_rule():
    """Same (start, end, text); else same text overlapping in time; else no match."""
    t = Transcript()
    words = (Word("the", 0.0, 0.2), Word("cat", 0.2, 0.5), Word("the", 0.5, 0.7),
             Word("end.", 0.7, 1.0))  # fmt: skip
    t.apply(FinalTranscript("the cat the end.", words=words, segment_key="k"))
    [seg] = t.apply(
        revision(
            SegmentSpeakers(
                "k",
                None,
                (
                    Word("the", 0.5, 0.7, None, "B"),  # exact: the second "the" only
                    Word("cat", 0.25, 0.55, None, "C"),  # moved a little: overlaps "cat"
                    Word("end", 0.7, 1.0, None, "D"),  # re-segmented ("end." now): no match
                    Word("dog", 0.2, 0.5, None, "E"),  # other text: no match
                ),
            )
        )
    )
    assert [w.speaker for w in seg.words] == [None, "C", "B", None]
    # Float noise below a microsecond still matches exactly.
    [seg] = t.apply(
        revision(SegmentSpeakers("k", None, (Word("the", 0.1 + 0.2 - 0.3, 0.2, None, "F"),)))
    )
    assert seg.words[0].speaker == "F"


def test_revision_naming_unknown_segments_changes_nothing_visible():
    t = Transcript()
    t.apply(FinalTranscript("a", words=(Word("a", 0, 1),), segment_key="k"))
    version = t.version
    assert t.apply(revision(SegmentSpeakers("other", "B"), SegmentSpeakers("", "B"))) == []
    assert t.version == version
    assert t.apply(SpeakerRevision()) == []


# -- revisions before the final -----------------------------------------------------------------


def test_revision_of_a_pending_partial_survives_into_its_final(codec):
    t = Transcript(provider="assemblyai")
    feed(t, codec, aai("turn-u3-partial-speaker-labels"))
    version = t.version
    partial_revision = json.dumps({"type": "SpeakerRevision", "revisions": [
        {"turn_order": 0, "speaker_label": "A", "words": [
            {"text": "name", "speaker": "A", "start": 1668, "end": 2490},
            {"text": "is—", "speaker": "A", "start": 2531, "end": 3067}]}]})  # fmt: skip
    assert feed(t, codec, partial_revision) == [[]]  # a partial is no segment
    assert t.version == version + 1
    assert [w.speaker for w in t.partials["0"].words] == ["A", "A", "A"]

    # The final re-times and re-segments the words; the ones it still says PENDING for keep
    # the revised speaker where they match (name: same text, overlapping), "is" does not.
    [segment] = feed(t, codec, aai("turn-u3-final-speaker-labels").replace(
        '"text":"name","confidence":0.999199,"word_is_final":true,"speaker":"A"',
        '"text":"name","confidence":0.999199,"word_is_final":true,"speaker":"PENDING"',
    ))  # fmt: skip
    assert [(w.text, w.speaker) for w in segment.words] == [
        ("My", "A"), ("name", "A"), ("is", None), ("Sonny.", None),
    ]  # fmt: skip
    assert segment.speaker == "A"


def test_a_known_speaker_in_a_later_update_beats_an_earlier_revision():
    t = Transcript()
    t.apply(PartialTranscript("a b", words=(Word("a", 0, 1), Word("b", 1, 2)), segment_key="k"))
    t.apply(
        revision(
            SegmentSpeakers("k", "B", (Word("a", 0, 1, None, "B"), Word("b", 1, 2, None, "B")))
        )
    )
    final = FinalTranscript(
        "a b", words=(Word("a", 0, 1, speaker="C"), Word("b", 1, 2)), speaker="C", segment_key="k"
    )
    segment = t.apply(final)
    assert [w.speaker for w in segment.words] == ["C", "B"]
    assert segment.speaker == "C"


def test_revision_for_a_turn_not_seen_yet_applies_when_it_arrives(codec):
    t = Transcript()
    early = json.dumps({"type": "SpeakerRevision", "revisions": [
        {"turn_order": 1, "speaker_label": "B",
         "words": [{"text": "Yes.", "speaker": "B", "start": 4600, "end": 4980}]}]})  # fmt: skip
    assert feed(t, codec, early) == [[]]
    assert t.version == 0
    [segment] = feed(t, codec, aai("turn-short-unknown-speaker"))
    assert segment.speaker == "B" and segment.words[0].speaker == "B"


def test_a_refinal_still_pending_keeps_the_revised_speakers(codec):
    """Universal with format_turns sends a second final of the same turn."""
    t = Transcript()
    feed(t, codec, aai("turn-u3-final-speaker-labels"), aai("speaker-revision-late"))
    [again] = feed(t, codec, aai("turn-u3-final-speaker-labels"))
    assert again.segment_id == 0
    assert [w.speaker for w in again.words] == ["A"] * 4


def test_commit_partials_keeps_revised_speakers():
    t = Transcript()
    t.apply(PartialTranscript("a", words=(Word("a", 0, 1),), segment_key="k"))
    t.apply(revision(SegmentSpeakers("k", "B")))
    [segment] = t.commit_partials()
    assert (segment.speaker, segment.words[0].speaker, segment.is_final) == ("B", "B", False)


def test_revisions_for_keys_never_committed_are_bounded():
    t = Transcript()
    for i in range(MAX_EARLY_REVISIONS + 50):
        t.apply(revision(SegmentSpeakers(f"nowhere-{i}", "B")))
    assert len(t._revised) == MAX_EARLY_REVISIONS
    # The newest are remembered, the oldest forgotten.
    last = f"nowhere-{MAX_EARLY_REVISIONS + 49}"
    assert t.apply(FinalTranscript("x", words=(Word("x", 0, 1),), segment_key=last)).speaker == "B"
    assert (
        t.apply(FinalTranscript("x", words=(Word("x", 0, 1),), segment_key="nowhere-0")).speaker
        is None
    )


# -- reconnects ---------------------------------------------------------------------------------


def test_revision_names_the_segments_of_its_own_connection():
    """Turn orders restart on a new connection: the key prefix keeps them apart and the time
    offset puts the revised words where that connection's turns were placed."""
    t = Transcript(provider="assemblyai")
    first = AssemblyAICodec(speaker_labels=True)
    first.key_prefix = "c1:"
    feed(t, first, aai("turn-u3-final-speaker-labels"))
    second = AssemblyAICodec(speaker_labels=True)
    second.key_prefix, second.time_offset = "c2:", 5.0
    feed(t, second, aai("turn-u3-final-speaker-labels"))
    [changed] = feed(t, second, aai("speaker-revision-late"))
    assert [s.key for s in changed] == ["c2:0"]
    old, new = t.segments
    assert [w.speaker for w in old.words] == ["A", "A", None, None]
    assert [w.speaker for w in new.words] == ["A"] * 4
    assert new.words[-1].start == pytest.approx(5.0 + 3.016)


# -- Deepgram ------------------------------------------------------------------------------------


def test_deepgram_integer_speakers_reach_every_export(dg_paris_final, srt_reader, vtt_reader):
    t = Transcript(provider="deepgram")
    codec = DeepgramCodec(diarize=True)
    frame = json.loads(dg_paris_final)
    frame["channel"]["alternatives"][0]["words"][1]["speaker"] = 1
    feed(t, codec, json.dumps(frame))
    [segment] = t.segments
    assert segment.speaker == "0"
    assert [w.speaker for w in segment.words] == ["0", "1", "0", "0", "0"]
    assert t.to_dataframe()["speaker"].tolist() == ["0"]
    assert t.words_dataframe()["speaker"].tolist() == ["0", "1", "0", "0", "0"]
    assert srt_reader(t.to_srt())[0].text == "Speaker 0: Paris at a moment's notice."
    assert vtt_reader(t.to_vtt())[0].voice == "Speaker 0"


@pytest.fixture
def dg_paris_final() -> str:
    return (FIXTURES / "deepgram" / "results-final-paris.json").read_text(encoding="utf-8")
