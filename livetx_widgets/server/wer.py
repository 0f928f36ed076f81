"""Word error rate, for loose accuracy checks of recognizers against approximate transcripts.

The shared recordings only come with approximate transcripts (themselves a Whisper decode), so
tests and the engine benchmark compare *words*, not strings: both sides are lowercased, stripped
of punctuation and split on whitespace before a Levenshtein alignment over words. Apostrophes
inside words are kept ("that's" is not "thats"); hyphens and dashes separate words.
"""

from __future__ import annotations

import re

_DROP = re.compile(r"[^\w\s'-]+")  # every punctuation mark except apostrophes and hyphens
_SPLIT = re.compile(r"[\s\-–—]+")


def normalize_words(text: str) -> list[str]:
    """Lowercase, drop punctuation, split into words (the normalization behind ``wer``)."""
    cleaned = _DROP.sub(" ", text.lower().replace("’", "'"))
    words = (w.strip("'_") for w in _SPLIT.split(cleaned))
    return [w for w in words if w]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Return ``(edits, reference word count)``: substitutions + deletions + insertions."""
    ref = normalize_words(reference)
    hyp = normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (r != h),  # substitution or match
            )
        previous = current
    return previous[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0.0 is perfect; may exceed 1).

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise, so the value is
    always defined.
    """
    edits, n = word_errors(reference, hypothesis)
    if n == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / n
