"""Normalized events: what any provider can tell us, in one vocabulary.

Provider codecs turn wire frames into these; the transcript model and every listener consume
them. They are frozen so that one event can be handed to many listeners and threads safely.
Times are always float seconds on the session's audio clock (seconds of audio sent since the
session started), whatever unit the provider used on the wire.

``raw`` keeps the provider's decoded JSON object for users who need a field we do not model.
It is excluded from equality and repr so that events stay cheap to compare and print.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word. ``text`` is the display form (punctuated and cased when available)."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """The provider accepted the stream (AssemblyAI ``Begin``; Deepgram's 101 response)."""

    session_id: str | None = None
    expires_at: float | None = None  # Unix seconds, when the provider says
    request_id: str | None = None
    model: str | None = None
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptUpdate:
    """Common shape of partial and final transcript updates.

    ``segment_key`` identifies the piece of transcript an update belongs to, so that a later
    update for the same key replaces an earlier one: Deepgram's segment (channel and start),
    AssemblyAI's ``turn_order``. ``end_of_turn`` is true when the speaker is done
    (Deepgram ``speech_final``, AssemblyAI ``end_of_turn``).
    """

    text: str
    words: tuple[Word, ...] = ()
    start: float = 0.0
    end: float = 0.0
    confidence: float | None = None
    speaker: str | None = None
    channel: int = 0
    segment_key: str = ""
    end_of_turn: bool = False
    raw: Raw = field(default_factory=dict, compare=False, repr=False)

    is_final = False


@dataclass(frozen=True, slots=True)
class PartialTranscript(TranscriptUpdate):
    """An interim hypothesis: it will be replaced by later updates with the same key."""

    is_final = False


@dataclass(frozen=True, slots=True)
class FinalTranscript(TranscriptUpdate):
    """A committed segment: its text will not change again (except a provider's re-format)."""

    from_finalize: bool = False
    is_final = True


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Voice activity began at ``timestamp`` (Deepgram ``vad_events``, AssemblyAI u3)."""

    timestamp: float
    channel: int = 0
    confidence: float | None = None
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """A gap after the last finalized word (Deepgram ``UtteranceEnd``)."""

    last_word_end: float
    channel: int = 0
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The provider's closing summary (Deepgram ``Metadata``, AssemblyAI ``Termination``)."""

    audio_duration_s: float | None = None
    session_duration_s: float | None = None
    request_id: str | None = None
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProviderWarning:
    """Something odd but not fatal: an unknown message type, a field of the wrong type, ..."""

    message: str
    code: int | str | None = None
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProviderErrorEvent:
    """The provider reported an error in a frame. ``fatal`` means a close will follow."""

    reason: str
    code: int | str | None = None
    fatal: bool = True
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


Event = (
    SessionStarted
    | PartialTranscript
    | FinalTranscript
    | SpeechStarted
    | UtteranceEnd
    | SessionEnded
    | ProviderWarning
    | ProviderErrorEvent
)


def shift_event(event: Event, seconds: float, key_prefix: str = "") -> Event:
    """Move an event's times by ``seconds`` and namespace its segment key.

    A session that reconnects starts a new provider stream whose clock restarts at zero and
    whose segment keys (e.g. AssemblyAI turn numbers) repeat; shifting by the audio already
    sent keeps the transcript's timeline continuous and its keys unique.
    """
    if seconds == 0 and not key_prefix:
        return event
    if isinstance(event, TranscriptUpdate):
        words = tuple(
            dataclasses.replace(w, start=w.start + seconds, end=w.end + seconds)
            for w in event.words
        )
        return dataclasses.replace(
            event,
            words=words,
            start=event.start + seconds,
            end=event.end + seconds,
            segment_key=key_prefix + event.segment_key,
        )
    if isinstance(event, SpeechStarted):
        return dataclasses.replace(event, timestamp=event.timestamp + seconds)
    if isinstance(event, UtteranceEnd):
        return dataclasses.replace(event, last_word_end=event.last_word_end + seconds)
    return event
