"""Hypothesis: any sequence of partial/final updates keeps the model's invariants, and every
export of the result reads back to the same segments."""

from __future__ import annotations

from dataclasses import dataclass

import livetx_test_support as support  # loaded by tests/conftest.py
from hypothesis import given, settings
from hypothesis import strategies as st

from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    SegmentSpeakers,
    SpeakerRevision,
    Word,
)
from livetx_widgets.transcript import Transcript

KEYS = ["0", "1", "2", "3", ""]  # "" means "no key": such finals always append
SPEAKERS = [None, "A", "B", "speaker 7", "0"]
TEXT = st.text(alphabet=list("abcXYZ .,?!-'é漢<>&\n\t\u00a0"), max_size=20)


@dataclass(frozen=True)
class Op:
    kind: str  # "partial" | "final"
    key: str
    text: str
    gap: float
    length: float
    channel: int
    speaker: str | None
    end_of_turn: bool
    n_words: int


OPS = st.builds(
    Op,
    kind=st.sampled_from(["partial", "final"]),
    key=st.sampled_from(KEYS),
    text=TEXT,
    # Whole microseconds shrink fast and still rarely fall on a millisecond.
    gap=st.integers(0, 5_000_000).map(lambda us: us / 1e6),
    length=st.integers(0, 30_000_000).map(lambda us: us / 1e6),
    channel=st.sampled_from([0, 0, 1]),
    speaker=st.sampled_from(SPEAKERS),
    end_of_turn=st.booleans(),
    n_words=st.integers(0, 3),
)


def _events(ops: list[Op]):
    """Turn ops into events with monotone times (starts never go back)."""
    clock = 0.0
    for op in ops:
        clock += op.gap
        start, end = clock, clock + op.length
        words = tuple(
            Word(f"w{i}", start + i * op.length / 4, start + (i + 1) * op.length / 4, 0.5, None)
            for i in range(op.n_words)
        )
        cls = PartialTranscript if op.kind == "partial" else FinalTranscript
        yield cls(
            op.text,
            words=words,
            start=start,
            end=end,
            confidence=0.9,
            speaker=op.speaker,
            channel=op.channel,
            segment_key=op.key,
            # Empty finals carry no end_of_turn here; their effect is a hand-written test.
            end_of_turn=op.end_of_turn and bool(op.text.strip()),
        )


def _expected(events) -> tuple[list[tuple[str, str, float, float]], dict[str, str]]:
    """A naive model: what the transcript must hold after ``events``."""
    committed: list[tuple[str, str, float, float]] = []
    partials: dict[str, str] = {}
    for e in events:
        text = e.text.strip()
        if isinstance(e, PartialTranscript):
            if text:
                partials[e.segment_key] = text
            else:
                partials.pop(e.segment_key, None)
            continue
        partials.pop(e.segment_key, None)
        if not text:
            continue
        entry = (e.segment_key, text, e.start, e.end)
        same_key = [i for i, c in enumerate(committed) if c[0] == e.segment_key and c[0]]
        if same_key:
            committed[same_key[0]] = entry
        else:
            committed.append(entry)
    return committed, partials


def _label(speaker: str | None) -> str | None:
    if speaker is None:
        return None
    return speaker if speaker.startswith("speaker") else f"Speaker {speaker}"


@settings(max_examples=support.examples(150), deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_any_update_sequence(ops):
    events = list(_events(ops))
    t = Transcript(provider="local")
    versions = [t.version]
    for event in events:
        result = t.apply(event)
        versions.append(t.version)
        if isinstance(event, FinalTranscript) and event.text.strip():
            assert result is not None and t[result.segment_id] is result
        else:
            assert result is None
    assert versions == sorted(versions)

    committed, partials = _expected(events)
    segments = t.segments
    assert [s.segment_id for s in segments] == list(range(len(segments)))
    assert [(s.key, s.text, s.start, s.end) for s in segments] == committed
    assert all(s.is_final for s in segments)
    assert t.text == " ".join(text for _, text, _, _ in committed)
    assert t.partial_text == " ".join(partials.values())
    assert list(t.partials) == list(partials)
    assert t.tail(3) == segments[-3:]

    # JSON: exact.
    loaded = Transcript.from_json(t.to_json())
    assert loaded.segments == segments
    assert loaded.to_json() == t.to_json()


@settings(max_examples=support.examples(150), deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_subtitles_read_back_to_the_segments(ops, srt_reader, vtt_reader):
    t = Transcript()
    for event in _events(ops):
        t.apply(event)
    cues = sorted(t.segments, key=lambda s: (s.start, s.segment_id))

    srt = srt_reader(t.to_srt())
    vtt = vtt_reader(t.to_vtt())
    assert len(srt) == len(vtt) == len(cues)
    for s, a, b in zip(cues, srt, vtt, strict=True):
        one_line = " ".join(s.text.split())
        label = _label(s.speaker)
        assert a.text == (f"{label}: {one_line}" if label else one_line)
        assert (b.voice, b.text) == (label, one_line)
        for cue in (a, b):
            # Millisecond precision.
            assert abs(cue.start_ms / 1000 - s.start) <= 0.0005 + 1e-9
            assert abs(cue.end_ms / 1000 - max(s.end, s.start)) <= 0.0005 + 1e-9
    assert [c.start_ms for c in vtt] == sorted(c.start_ms for c in vtt)


@settings(max_examples=support.examples(300), deadline=None)
@given(
    ops=st.lists(OPS, max_size=30),
    revisions=st.lists(
        st.tuples(
            st.integers(0, 30),  # revise after this many updates
            st.sampled_from(KEYS),
            st.sampled_from(SPEAKERS),
            st.lists(st.tuples(st.integers(0, 2), st.sampled_from(SPEAKERS)), max_size=3),
        ),
        max_size=6,
    ),
)
def test_speaker_revisions_change_speakers_only(ops, revisions):
    """Revisions interleaved anywhere: text, times, ids and partial texts are those of the
    same updates without revisions; every returned segment is the one now held under its
    id; a word named exactly in a revision of a committed segment has the revised speaker."""
    events = list(_events(ops))
    t = Transcript()
    versions = [t.version]
    for position in range(len(events) + 1):
        for at, key, label, picks in revisions:
            if at != position:
                continue
            held = t.segments
            index = {s.key: s for s in held if s.key}
            target = index.get(key)
            words = tuple(
                target.words[i]._replace(speaker=speaker)
                for i, speaker in picks
                if target is not None and i < len(target.words)
            )
            changed = t.apply(SpeakerRevision(segments=(SegmentSpeakers(key, label, words),)))
            assert all(t[s.segment_id] == s for s in changed)
            assert all(s.key == key for s in changed)
            if target is not None:
                after = {x[:3]: x.speaker for x in t[target.segment_id].words}
                expected = {}  # text, start, end -> speaker; a later mention wins
                for w in words:
                    speaker = w.speaker if w.speaker is not None else label
                    if speaker is not None:
                        expected[w[:3]] = speaker
                assert {k: after[k] for k in expected} == expected
            versions.append(t.version)
        if position < len(events):
            t.apply(events[position])
            versions.append(t.version)
    assert versions == sorted(versions)
    committed, partials = _expected(events)
    assert [(s.key, s.text, s.start, s.end) for s in t.segments] == committed
    assert [s.segment_id for s in t.segments] == list(range(len(committed)))
    assert t.partial_text == " ".join(partials.values())
    assert Transcript.from_json(t.to_json()).segments == t.segments
