"""Applying an event costs O(1), however long the transcript already is.

The structural test swaps the model's segment list for one that fails on any whole-list
operation (iteration, slicing, copying, searching), so an ``apply`` that rebuilt the text or
scanned old segments fails deterministically. The timing test backs it up loosely: it compares
the per-event cost on a 100- and a 20,000-segment transcript measured side by side.
"""

from __future__ import annotations

import time

from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    SegmentSpeakers,
    SessionStarted,
    SpeakerRevision,
    Word,
)
from livetx_widgets.transcript import Transcript


class _WholeListForbidden(list):
    """A list that allows append, len and single-item access, and counts the reads."""

    def __init__(self, items):
        super().__init__(items)
        self.reads = 0

    def __getitem__(self, index):
        if isinstance(index, slice):
            raise AssertionError("apply() sliced the segment list")
        self.reads += 1
        return super().__getitem__(index)

    def _forbidden(self, *args, **kwargs):
        raise AssertionError("apply() touched every segment")

    __iter__ = __reversed__ = __contains__ = copy = index = count = _forbidden
    __add__ = __mul__ = __eq__ = sort = _forbidden


class _WholeDictForbidden(dict):
    def _forbidden(self, *args, **kwargs):
        raise AssertionError("apply() walked a whole index")

    __iter__ = keys = values = items = copy = _forbidden


def _build(n: int) -> Transcript:
    t = Transcript(provider="local")
    for i in range(n):
        t.apply(FinalTranscript(f"segment {i}", start=i, end=i + 0.5, segment_key=f"k{i}"))
    return t


def _events(first: int, count: int):
    """``count`` segments' worth of traffic: two partials, then a final, per new key."""
    for i in range(first, first + count):
        key = f"k{i}"
        yield PartialTranscript("seg", start=i, end=i + 0.2, segment_key=key)
        yield PartialTranscript("segment", start=i, end=i + 0.4, segment_key=key)
        yield FinalTranscript(f"segment {i}.", start=i, end=i + 0.5, segment_key=key)


def test_apply_never_touches_old_segments():
    n = 20_000
    t = _build(n)
    guarded = _WholeListForbidden(t._segments)
    t._segments = guarded
    t._index_by_key = _WholeDictForbidden(t._index_by_key)
    t._last_by_channel = _WholeDictForbidden(t._last_by_channel)

    for event in _events(n, 500):
        t.apply(event)
    # Re-finals of old segments (AssemblyAI format_turns) replace in place.
    for i in (5, 17, 9_999):
        t.apply(FinalTranscript(f"Segment {i}!", start=i, end=i + 0.5, segment_key=f"k{i}"))
    t.apply(SessionStarted(session_id="s"))
    # An empty speech_final reads exactly one segment: its channel's last.
    t.apply(FinalTranscript("", segment_key="k-empty", end_of_turn=True))
    assert guarded.reads == 1
    assert len(guarded) == n + 500
    assert list.__getitem__(guarded, 17).text == "Segment 17!"


def test_speaker_revisions_touch_only_the_segments_they_name():
    n = 20_000
    t = Transcript(provider="assemblyai")
    for i in range(n):
        words = (Word("seg", i, i + 0.2), Word(str(i), i + 0.2, i + 0.5))
        t.apply(FinalTranscript(f"seg {i}", words=words, start=i, end=i + 0.5, segment_key=f"k{i}"))
    t.apply(PartialTranscript("pending", words=(Word("pending", n, n + 1),), segment_key="p"))
    guarded = _WholeListForbidden(t._segments)
    t._segments = guarded
    t._index_by_key = _WholeDictForbidden(t._index_by_key)
    t._last_by_channel = _WholeDictForbidden(t._last_by_channel)
    t._partials = _WholeDictForbidden(t._partials)

    named = (3, 12_345, n - 1)
    changed = t.apply(
        SpeakerRevision(
            segments=(
                *(SegmentSpeakers(f"k{i}", "B", (Word(str(i), i + 0.2, i + 0.5, None, "B"),))
                  for i in named),
                SegmentSpeakers("p", "C"),
                SegmentSpeakers("not-yet", "D"),
            )
        )
    )  # fmt: skip
    assert [s.segment_id for s in changed] == list(named)
    assert guarded.reads == len(named)  # one read per segment named, nothing else
    assert [w.speaker for w in list.__getitem__(guarded, 12_345).words] == [None, "B"]
    assert dict.get(t._partials, "p").speaker == "C"
    # A later final for a revised key costs a lookup, not a search.
    t.apply(FinalTranscript("x", words=(Word("x", 0, 1),), segment_key="not-yet"))
    assert list.__getitem__(guarded, n).speaker == "D"


def _per_event_seconds(t: Transcript, first: int, count: int) -> float:
    events = list(_events(first, count))
    begin = time.perf_counter()
    for event in events:
        t.apply(event)
    return (time.perf_counter() - begin) / len(events)


def test_apply_cost_does_not_grow_with_length():
    small, large = _build(100), _build(20_000)
    best_small = best_large = float("inf")
    for round_ in range(5):  # best of 5, alternating, so that a busy machine hurts both
        first = 1_000_000 + round_ * 1_000
        best_small = min(best_small, _per_event_seconds(small, first, 1_000))
        best_large = min(best_large, _per_event_seconds(large, first, 1_000))
    # Rebuilding 20,000 segments' text per event would make this ratio ~100x.
    assert best_large < 4 * best_small, (best_small, best_large)
