"""The words of AssemblyAI ``Turn`` and ``SpeakerRevision`` messages, validated and timed.

Why a module of its own: a ``Turn`` restates the whole turn on every update, so reading its
words is the AssemblyAI codec's hot path. Re-reading every word of every update would make
the cost of a turn grow with the square of its length; :class:`TurnWords` reuses the words
that the previous update of the same turn already had (compared in C) and reads only the rest
with the tight :func:`words_fast` loop. Anything unexpected goes to :func:`words_checked`,
which raises ``frames.Malformed`` naming the wrong field (the codec makes that a warning).

Times are integer milliseconds on the wire and float seconds on the session's clock here (a
connection's ``time_offset`` added); every path computes them the same way, so a word revised
by a ``SpeakerRevision`` gets exactly the times its ``Turn`` word got.
"""

from __future__ import annotations

import operator

from ..events import Word
from . import frames

#: Speaker values that mean "not known": a word's speaker not settled yet, a turn too short.
PLACEHOLDER_SPEAKERS = frozenset({"PENDING", "UNKNOWN"})

_ZERO_OR_ONE = frozenset({0, 1})
#: The value of a word's field, for each numeric field: C-level reads for the reuse check.
_FIELD = {name: operator.methodcaller("get", name)
          for name in ("start", "end", "confidence", "speaker_confidence")}  # fmt: skip

Parsed = tuple[list[Word], list[str], list[float]]


class TurnWords:
    """Reads the words of one connection's Turn updates, reusing the previous update's.

    It keeps the raw word objects of the latest update and what they decoded to. A raw word
    equal (``==``, in C) to the one at the same place last time decodes to the same ``Word``,
    with one exception: Python's ``True == 1`` and ``False == 0``, so a JSON boolean where a
    number belongs would compare equal to a validated 0 or 1. The fields in which a word of
    the turn held a 0 or 1 are therefore noted, and the reused words' values there checked
    (in C) for booleans: a malformed word is still read (and reported) as such.
    """

    __slots__ = ("_conf", "_items", "_offset", "_risky", "_speakers", "_turn_order", "_words")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the latest update (a new connection: turn numbers start again)."""
        self._turn_order: int | None = None
        self._offset = 0.0
        self._items: list = []
        self._words: list[Word] = []
        self._speakers: list[str] = []
        self._conf: list[float] = []
        self._risky: set[str] = set()  # numeric fields in which a word held a 0 or 1

    def read(self, turn_order: int, items: list, offset: float, where: str = "Turn") -> Parsed:
        """``(words, known speakers, confidences)`` of one update; raises ``Malformed``."""
        reused = self._reusable(turn_order, offset, items)
        risky = set(self._risky) if reused else set()
        fresh = words_fast(items, offset, reused, risky)
        if fresh is None:
            self.reset()
            words, speakers, confidences = words_checked(items, where)
            return (shifted(words, offset) if offset else words), speakers, confidences
        words, speakers, confidences = fresh
        if reused:
            words = self._words[:reused] + words
            speakers = self._prefix(self._speakers, reused, "speaker") + speakers
            confidences = self._prefix(self._conf, reused, "confidence") + confidences
        self._turn_order, self._offset, self._items = turn_order, offset, items
        self._words, self._speakers, self._conf, self._risky = words, speakers, confidences, risky
        return words, speakers, confidences

    def _reusable(self, turn_order: int, offset: float, items: list) -> int:
        """How many leading words of ``items`` are those of the latest update, unchanged."""
        if turn_order != self._turn_order or offset != self._offset:
            return 0
        old = self._items
        n = min(len(items), len(old))
        # The usual updates, compared in C: words appended, or the last one restated (its
        # ``word_is_final`` or text settled); otherwise find the first difference.
        if items[:n] != old[:n]:
            n -= 1
            if items[:n] != old[:n]:
                n = next(
                    i for i, (new, was) in enumerate(zip(items, old, strict=False)) if new != was
                )
        if n:
            for name in self._risky:
                if bool in map(type, map(_FIELD[name], items[:n])):
                    return 0  # read them all: the fast path sends it to the checked one
        return n

    def _prefix(self, values: list, n: int, field: str) -> list:
        """The speakers or confidences of the first ``n`` words of the latest update."""
        if not values or len(values) == len(self._words):  # none or every word had one
            return values[:n]
        return [v for w in self._words[:n] if (v := getattr(w, field)) is not None]


def words_fast(
    items: list,
    offset: float = 0.0,
    first: int = 0,
    risky: set[str] | None = None,
) -> Parsed | None:
    """Words of a well-formed ``words`` list in one tight loop, or None at the first oddity.

    Same checks as :func:`words_checked` with exact type tests and no per-word message
    formatting; anything unexpected goes to the checked path, which names the wrong field.
    Reads ``items[first:]``, moved by ``offset`` onto the session's clock (as
    :func:`shifted` does). ``risky`` (if given) gets the names of the fields in which a
    word holds a 0 or 1 (see :class:`TurnWords`).
    """
    words: list[Word] = []
    speakers: list[str] = []
    confidences: list[float] = []
    number, limit = frames.NUMBER_TYPES, frames.FINITE_LIMIT
    zero_or_one = _ZERO_OR_ONE
    for w in items[first:] if first else items:
        if type(w) is not dict:
            return None
        text, start, end = w.get("text"), w.get("start"), w.get("end")
        if (
            type(text) is not str
            or type(start) not in number
            or type(end) not in number
            or not (-limit < start < limit and -limit < end < limit)
        ):
            return None
        confidence = w.get("confidence")
        if confidence is not None:
            if type(confidence) not in number or not (-limit < confidence < limit):
                return None
            confidence = float(confidence)
            confidences.append(confidence)
        speaker = w.get("speaker")
        speaker_confidence = None
        if speaker is not None:
            if type(speaker) is not str:
                return None
            if speaker in PLACEHOLDER_SPEAKERS:
                speaker = None
            else:
                speakers.append(speaker)
                speaker_confidence = w.get("speaker_confidence")
                if speaker_confidence is not None:
                    if type(speaker_confidence) not in number or not (
                        -limit < speaker_confidence < limit
                    ):
                        return None
                    speaker_confidence = float(speaker_confidence)
        if offset:
            word = Word(text, start / 1000.0 + offset, end / 1000.0 + offset, confidence,
                        speaker, speaker_confidence)  # fmt: skip
        else:
            word = Word(text, start / 1000.0, end / 1000.0, confidence, speaker,
                        speaker_confidence)  # fmt: skip
        words.append(word)
        if risky is not None:
            if start in zero_or_one:
                risky.add("start")
            if end in zero_or_one:
                risky.add("end")
            if confidence in zero_or_one:
                risky.add("confidence")
            if speaker_confidence in zero_or_one:
                risky.add("speaker_confidence")
    return words, speakers, confidences


def words_checked(items: list, where: str = "Turn") -> Parsed:
    """The validating path: raises ``frames.Malformed`` naming the first wrong field.

    Also reads the words of a SpeakerRevision (``where`` names the message part), so that a
    revised word gets exactly the times its Turn word got.
    """
    words: list[Word] = []
    speakers: list[str] = []
    confidences: list[float] = []
    for i, item in enumerate(items):
        where_w = f"word {i} of {where}"
        w = frames.element(item, where_w)
        confidence = frames.optional_number(w, "confidence", where_w)
        if confidence is not None:
            confidences.append(confidence)
        speaker = known(frames.optional_string(w, "speaker", where_w))
        speaker_confidence = None
        if speaker is not None:
            speakers.append(speaker)
            speaker_confidence = frames.optional_number(w, "speaker_confidence", where_w)
        words.append(
            Word(
                text=frames.string(w, "text", where_w),
                start=frames.number(w, "start", where_w) / 1000.0,
                end=frames.number(w, "end", where_w) / 1000.0,
                confidence=confidence,
                speaker=speaker,
                speaker_confidence=speaker_confidence,
            )
        )
    return words, speakers, confidences


def known(speaker: str | None) -> str | None:
    """A speaker label, or ``None`` for the placeholders that mean "not known"."""
    return None if speaker in PLACEHOLDER_SPEAKERS else speaker


def shifted(words: list[Word], offset: float) -> list[Word]:
    """Words moved onto the session's clock (this connection started at ``offset``)."""
    return [
        Word(w.text, w.start + offset, w.end + offset, w.confidence, w.speaker,
             w.speaker_confidence)
        for w in words
    ]  # fmt: skip
