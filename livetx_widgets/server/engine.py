"""The recognizer interface behind ``livetx serve``.

An engine turns a stream of 16-bit mono PCM into recognition results on the audio clock. The
protocol front ends (Deepgram ``/v1/listen``, AssemblyAI ``/v3/ws``) own the wire format and
the timing rules; an engine owns only "what was said, and when". That split lets the same
scripted or whisper recognizer serve both protocols.

Engines are synchronous and single-stream: ``feed`` may be slow (whisper decodes on the CPU),
so the server calls it from a worker thread, one stream at a time per connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class EngineWord:
    """A word as the engine recognized it. ``text`` is punctuated and cased when possible."""

    text: str
    start: float  # seconds on the stream's audio clock
    end: float
    confidence: float = 1.0
    speaker: int | None = None


@dataclass(frozen=True, slots=True)
class EngineResult:
    """One thing the engine has to say.

    kind:
        ``"speech_started"``: voice activity began at ``start``.
        ``"partial"``: current hypothesis for the open utterance (replaces earlier partials).
        ``"final"``: the utterance starting at ``start`` is done; ``end_of_speech`` tells
            whether a pause followed it (endpoint) or it was cut by a flush/close.
    """

    kind: Literal["speech_started", "partial", "final"]
    start: float
    end: float
    words: tuple[EngineWord, ...] = ()
    end_of_speech: bool = True
    confidence: float = 1.0
    speaker: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class EngineStream:
    """One audio stream being recognized. Created by ``Engine.open_stream``."""

    def feed(self, pcm: bytes) -> list[EngineResult]:
        """Take the next audio (s16le mono at the stream's rate); return what it produced."""
        raise NotImplementedError

    def set_keyterms(self, terms: Sequence[str]) -> None:
        """Words and phrases to favour from now on (Deepgram ``keyterm``/``Configure``,
        AssemblyAI ``keyterms_prompt``); ``[]`` clears them. Called from the stream's thread,
        before the first ``feed`` or between feeds. An engine without a use for them ignores
        them (the default)."""

    def flush(self) -> list[EngineResult]:
        """Finish the open utterance now (Deepgram Finalize, AssemblyAI ForceEndpoint)."""
        raise NotImplementedError

    def close(self) -> list[EngineResult]:
        """End of audio: return the last results. The stream is not used afterwards."""
        raise NotImplementedError


class Engine:
    """A recognizer factory shared by every connection of one server."""

    name: str = ""

    def open_stream(self, sample_rate: int, *, language: str | None = None) -> EngineStream:
        raise NotImplementedError

    def close(self) -> None:
        """Release shared resources (models) when the server stops."""
