"""What the kernel tells the front end, in the shape the front end reads.

Finals travel as custom messages carrying only new (or revised) segments, never as a synced
list trait: a list trait would resend the whole transcript on every change and be saved in
the notebook file. A segment becomes a small dict whose size depends on its own text only, so
the bytes sent per update do not grow with the transcript.

Errors become one line of plain words: a short headline saying what kind of trouble it is,
then the error's own message (which already says what to do). Any API key the widget holds is
masked out of that text, as a last line of defence: the key must never reach the front end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import (
    AudioDeviceError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ProviderError,
)
from ..transcript import Segment

#: Headline per error type, most specific first.
_HEADLINES: tuple[tuple[type[BaseException], str], ...] = (
    (AuthenticationError, "API key refused"),
    (AudioDeviceError, "Audio input problem"),
    (ConnectError, "Could not connect"),
    (ConnectionLostError, "Connection lost"),
    (ProviderError, "The provider reported an error"),
    (ConfigurationError, "Cannot start"),
)


def segment_dict(segment: Segment) -> dict[str, Any]:
    """The few fields a transcript row shows (id, times, speaker, text, confidence, final)."""
    return {
        "id": segment.segment_id,
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "speaker": segment.speaker,
        "confidence": None if segment.confidence is None else round(segment.confidence, 3),
        "final": segment.is_final,
    }


def segments_message(kind: str, run: int, segments: Iterable[Segment], total: int) -> dict:
    """``kind`` is ``"finals"`` (new or revised segments) or ``"tail"`` (the last rows)."""
    return {
        "type": kind,
        "run": run,
        "segments": [segment_dict(s) for s in segments],
        "total": total,
    }


def plain_error(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """One line for the widget's error box: ``"<headline>: <message>"``, keys masked."""
    headline = next((h for cls, h in _HEADLINES if isinstance(error, cls)), "Error")
    message = str(error).strip() or type(error).__name__
    return mask(f"{headline}: {message}", secrets)


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
