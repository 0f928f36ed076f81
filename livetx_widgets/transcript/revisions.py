"""Speaker revisions: which words a revision re-labels, and what it said, remembered per key.

A provider may change its mind about who spoke long after it sent a segment (AssemblyAI's
``SpeakerRevision``, possibly at the end of the session, re-labelling words first sent as
``PENDING``). The transcript applies a revision to the segment (or pending partial) it names
and remembers it under the segment key, so that an update for that key which arrives later
and still does not know a word's speaker keeps the revised one.

Which revised word a segment's word takes its speaker from (the matching rule):

1. the revised word with the same start, end and text (times compared to the microsecond);
2. otherwise the first revised word with the same text whose time overlaps the word's,
   because a turn's times may move a little between its partials and its final;
3. otherwise the label of a revision that named no words at all (the whole segment's);
4. otherwise none: the word keeps its speaker (it was not named, or was re-segmented
   between the update the revision saw and this one: ``is—`` became ``is``).

A revised word without a speaker of its own stands for the revision's segment label.

Everything here costs O(words of the one segment and of the revision), never O(transcript).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events import SegmentSpeakers, Word

_Key = tuple[float, float, str]
_Label = tuple[str, float | None]  # (speaker, speaker_confidence)


def _key(word: Word) -> _Key:
    return (round(word.start, 6), round(word.end, 6), word.text)


class RevisedSpeakers:
    """What the revisions for one segment key said, merged (a later revision wins)."""

    __slots__ = ("_by_text", "speaker", "whole", "words")

    def __init__(self) -> None:
        self.speaker: str | None = None  # the segment's label
        self.whole: str | None = None  # a label for every word (a revision naming no words)
        self.words: dict[_Key, _Label] = {}
        self._by_text: dict[str, list[tuple[float, float, _Label]]] | None = None

    @classmethod
    def of(cls, revision: SegmentSpeakers) -> RevisedSpeakers:
        revised = cls()
        revised.merge(revision)
        return revised

    def merge(self, revision: SegmentSpeakers) -> None:
        if revision.speaker is not None:
            self.speaker = revision.speaker
        self._by_text = None
        if not revision.words:
            if revision.speaker is not None:
                self.whole = revision.speaker
                self.words.clear()  # an older word-by-word revision is superseded
            return
        for w in revision.words:
            if w.speaker is not None:
                self.words[_key(w)] = (w.speaker, w.speaker_confidence)
            elif revision.speaker is not None:
                self.words[_key(w)] = (revision.speaker, None)

    def relabel(self, words: Sequence[Word], *, only_unknown: bool) -> tuple[Word, ...]:
        """``words`` with the revised speakers; ``only_unknown`` keeps every known speaker
        (for an update that arrived after the revision: what it knows is newer)."""
        out = list(words)
        for i, w in enumerate(words):
            if only_unknown and w.speaker is not None:
                continue
            label = self._label_for(w)
            if label is None or label == (w.speaker, w.speaker_confidence):
                continue
            if label[0] == w.speaker and label[1] is None:
                continue  # the same speaker confirmed: its score still stands
            out[i] = w._replace(speaker=label[0], speaker_confidence=label[1])
        return tuple(out)

    def _label_for(self, word: Word) -> _Label | None:
        if self.words:
            label = self.words.get(_key(word))
            if label is not None:
                return label
            for start, end, label in self._texts().get(word.text, ()):
                if (start < word.end and word.start < end) or start == word.start:
                    return label
        if self.whole is not None:
            return (self.whole, None)
        return None

    def _texts(self) -> dict[str, list[tuple[float, float, _Label]]]:
        if self._by_text is None:
            by_text: dict[str, list[tuple[float, float, _Label]]] = {}
            for (start, end, text), label in self.words.items():
                by_text.setdefault(text, []).append((start, end, label))
            self._by_text = by_text
        return self._by_text
