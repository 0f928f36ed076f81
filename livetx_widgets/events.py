"""Normalized events: what any provider can tell us, in one vocabulary.

Provider codecs turn wire frames into these; the transcript model and every listener consume
them. They are frozen so that one event can be handed to many listeners and threads safely.
Times are always float seconds on the session's audio clock (seconds of audio sent since the
session started), whatever unit the provider used on the wire.

``raw`` keeps the provider's decoded JSON object for users who need a field we do not model.
It is excluded from equality and repr so that events stay cheap to compare and print.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Raw = dict[str, Any]


class Word(NamedTuple):
    """One recognized word. ``text`` is the display form (punctuated and cased when available).

    ``speaker`` is ``None`` when it is not known: no diarization, or a provider placeholder
    such as AssemblyAI's ``PENDING`` (not settled yet) and ``UNKNOWN`` (too short to tell);
    a placeholder is never a speaker's name. ``speaker_confidence`` is the provider's score
    for that label, when it sends one.

    A named tuple rather than a frozen dataclass: every partial restates all its words, so a
    busy stream builds thousands of these a minute, and a tuple is built four times faster.
    It is just as immutable; use ``word._replace(...)`` to derive a changed copy.
    """

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None
    speaker_confidence: float | None = None


def speaker_of(speakers: Iterable[str | None]) -> str | None:
    """The speaker of most words (the first seen wins a tie); ``None`` when none is known.

    The one rule for "who spoke this segment", used by the codecs and by the transcript when
    it recomputes a segment after a revision. Unknown speakers (``None``) do not vote: a turn
    whose words are half settled and half still pending belongs to the settled speaker.
    """
    counts: dict[str, int] = {}
    for speaker in speakers:
        if speaker is not None:
            counts[speaker] = counts.get(speaker, 0) + 1
    if not counts:
        return None
    return max(counts, key=counts.__getitem__)  # max keeps the first of equal counts


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
class SegmentSpeakers:
    """One segment's revised speakers, as part of a :class:`SpeakerRevision`.

    ``segment_key`` names the segment the way its transcript updates did (AssemblyAI: the
    connection's key prefix and the ``turn_order``). ``speaker`` is the segment's new label,
    ``None`` when the revision gives none (or only a placeholder). ``words`` are the words
    the revision re-labels, with their times on the session's clock; a word whose
    ``speaker`` is ``None`` carries no new label of its own. No words at all means the whole
    segment goes to ``speaker``.
    """

    segment_key: str
    speaker: str | None = None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeakerRevision:
    """The provider changed its mind about who spoke (AssemblyAI ``SpeakerRevision``).

    It may arrive long after the segments it names were committed (e.g. at the end of the
    session) and may re-label words first sent with a placeholder speaker.
    ``Transcript.apply`` applies it and returns the segments it changed.
    """

    segments: tuple[SegmentSpeakers, ...] = ()
    raw: Raw = field(default_factory=dict, compare=False, repr=False)


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
class ConfigureResult:
    """The provider's answer to a live configuration change (Deepgram ConfigureSuccess /
    ConfigureFailure). AssemblyAI's UpdateConfiguration has no answer."""

    ok: bool
    code: str | None = None
    reason: str = ""
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
    | SpeakerRevision
    | SpeechStarted
    | UtteranceEnd
    | SessionEnded
    | ProviderWarning
    | ProviderErrorEvent
    | ConfigureResult
)
