"""The transcript model: normalized events in, committed segments and live partials out.

Why it is shaped like this:

* A session's receiver thread applies events for hours while the notebook user reads the
  transcript from another thread. So one lock guards all state, every ``apply`` does O(1)
  amortized work (a dict lookup, a list append or an in-place list assignment; it never
  rebuilds the text), and every reader copies what it needs under the lock and does the
  formatting after releasing it.
* Providers revise: a partial for a segment key is replaced by the next partial for the
  same key; a final commits a :class:`Segment` and drops that key's partial; a second final
  for an already committed key (AssemblyAI Universal with ``format_turns`` sends the
  unformatted and then the formatted final of one turn) replaces the segment *in place*,
  keeping its ``segment_id``, so that ``segment_id`` is always the segment's position in
  commit order.
* Providers also revise who spoke (AssemblyAI ``SpeakerRevision``), even long after the
  segment was committed. ``apply`` re-labels the words of the segments (or pending
  partials) a revision names and remembers it per key, so a later update of that key that
  still says "not known" keeps the revised speaker (see :mod:`.revisions` for the matching
  rule). That too is O(size of the revision): keys are looked up, never searched.
* The model is pure: it reads no clock (``received_at`` and ``latency_s`` are passed in),
  opens no socket and starts no thread; pandas is imported only by the DataFrame exports.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import overload

from ..errors import ConfigurationError
from ..events import (
    Event,
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SessionEnded,
    SessionStarted,
    SpeakerRevision,
    SpeechStarted,
    UtteranceEnd,
    Word,
    speaker_of,
)
from .revisions import RevisedSpeakers

_EVENT_TYPES = (
    SessionStarted,
    PartialTranscript,
    FinalTranscript,
    SpeechStarted,
    UtteranceEnd,
    SessionEnded,
    ProviderWarning,
    ProviderErrorEvent,
)

#: Revisions remembered for keys not committed yet (a pending partial's, a turn not seen
#: yet). Past this many the oldest is forgotten, so that a peer naming endless unknown turns
#: cannot grow the memory without bound; committed keys' revisions are kept with them.
MAX_EARLY_REVISIONS = 256


@dataclass(frozen=True, slots=True)
class Segment:
    """One committed piece of transcript, as a value that is safe to hand to any thread.

    ``segment_id`` is the segment's position in commit order (0, 1, ...); ``key`` is the
    provider's segment key it was committed under. Times are seconds on the session's audio
    clock. ``end_of_turn`` marks the segment that closes an utterance (Deepgram
    ``speech_final``, AssemblyAI ``end_of_turn``). ``received_at`` (the caller's clock, e.g.
    Unix seconds) and ``latency_s`` are whatever the session passed to ``apply``.
    """

    segment_id: int
    key: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    speaker: str | None = None
    channel: int = 0
    is_final: bool = True
    end_of_turn: bool = False
    provider: str | None = None
    session_id: str | None = None
    received_at: float | None = None
    latency_s: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


class Transcript:
    """A live transcript: apply events from one thread, read snapshots from any other.

    >>> t = Transcript(provider="deepgram")
    >>> t.apply(PartialTranscript("hello wor", segment_key="0:0.000"))
    >>> t.partial_text
    'hello wor'
    >>> seg = t.apply(FinalTranscript("Hello world.", start=0.0, end=1.2, segment_key="0:0.000"))
    >>> seg.segment_id, t.text, t.partial_text
    (0, 'Hello world.', '')

    ``version`` grows by one on every change, so a UI can poll it cheaply and redraw only
    when it moved; ``tail(n)`` then costs O(n), not O(len(transcript)).
    """

    def __init__(self, provider: str | None = None, session_id: str | None = None) -> None:
        self._lock = threading.Lock()
        self._provider = provider
        self._session_id = session_id
        # The id of the provider session now streaming (changes on reconnect); stamped on
        # each committed segment, while ``session_id`` keeps the first one.
        self._current_session_id = session_id
        self._segments: list[Segment] = []
        self._index_by_key: dict[str, int] = {}  # non-empty key -> position in _segments
        self._last_by_channel: dict[int, int] = {}  # channel -> position of its last segment
        self._partials: dict[str, PartialTranscript] = {}
        self._revised: dict[str, RevisedSpeakers] = {}  # key -> what revisions said
        self._early: dict[str, None] = {}  # revised keys without a segment, oldest first
        self._version = 0

    # ----------------------------------------------------------------- applying events

    @overload
    def apply(
        self,
        event: SpeakerRevision,
        *,
        received_at: float | None = None,
        latency_s: float | None = None,
    ) -> list[Segment]: ...

    @overload
    def apply(
        self,
        event: Event,
        *,
        received_at: float | None = None,
        latency_s: float | None = None,
    ) -> Segment | None: ...

    def apply(
        self,
        event: Event,
        *,
        received_at: float | None = None,
        latency_s: float | None = None,
    ) -> Segment | list[Segment] | None:
        """Update the transcript with one event; return the committed (or replaced) segment.

        Partials replace the partial held for their ``segment_key``. A non-empty final
        commits a segment (or replaces the one already committed under its key) and drops
        that key's partial. An empty final commits nothing and only drops the partial; if it
        carries ``end_of_turn`` (Deepgram sends ``speech_final`` on an empty result when the
        endpoint falls in silence) it marks its channel's last segment as closing the
        utterance. ``SessionStarted`` records the session id. Every other event is ignored
        here (the session layer dispatches them) and returns ``None``, as do partials.

        An empty ``segment_key`` means "no key": such finals never replace one another.

        A :class:`SpeakerRevision` returns the list of committed segments it changed (in
        the order it names them; empty when it names none the transcript holds). Each is
        replaced in place, keeping its ``segment_id``, like a re-final. The segment's
        speaker becomes the revision's label, or else the speaker of most of its re-labelled
        words. A pending partial it names is re-labelled too (it is no segment, so it is not
        returned). What a revision said is remembered per key, also for a key not seen yet
        (up to ``MAX_EARLY_REVISIONS`` keys not committed), so a partial or final of that
        key that comes later and does not know a word's speaker (AssemblyAI ``PENDING``)
        takes the revised one; a speaker it does know is newer than the revision and is
        kept. Words are matched by start, end and text, then by text and overlapping time
        (:mod:`livetx_widgets.transcript.revisions` states the rule).
        """
        if isinstance(event, PartialTranscript):  # the most frequent, so tested first
            with self._lock:
                self._apply_partial(event)
            return None
        if isinstance(event, FinalTranscript):
            with self._lock:
                return self._apply_final(event, received_at, latency_s)
        if isinstance(event, SpeakerRevision):
            with self._lock:
                return self._apply_revision(event)
        if isinstance(event, SessionStarted):
            if event.session_id is not None:
                with self._lock:
                    self._current_session_id = event.session_id
                    if self._session_id is None:
                        self._session_id = event.session_id
                        self._version += 1
            return None
        if isinstance(event, _EVENT_TYPES):
            return None
        raise ConfigurationError(
            f"Transcript.apply() takes a livetx_widgets.events event, not "
            f"{type(event).__name__}; decode provider frames with a codec first."
        )

    def _apply_partial(self, event: PartialTranscript) -> None:
        key = event.segment_key
        if self._revised and key in self._revised:
            event = self._with_revised(event, self._revised[key])
        if event.text.strip():
            self._partials[key] = event  # an existing key keeps its insertion position
        elif self._partials.pop(key, None) is None:
            return  # an empty partial for a key we hold nothing for changes nothing
        self._version += 1

    def _apply_final(
        self, event: FinalTranscript, received_at: float | None, latency_s: float | None
    ) -> Segment | None:
        key = event.segment_key
        had_partial = self._partials.pop(key, None) is not None
        text = event.text.strip()
        if not text:
            changed = had_partial
            if event.end_of_turn:
                changed = self._close_turn(event.channel) or changed
            if changed:
                self._version += 1
            return None

        if self._revised and key in self._revised:
            event = self._with_revised(event, self._revised[key])
            self._early.pop(key, None)
        position = self._index_by_key.get(key) if key else None
        segment_id = len(self._segments) if position is None else position
        segment = Segment(
            segment_id=segment_id,
            key=key,
            start=float(event.start),
            end=float(event.end),
            text=text,
            words=tuple(event.words),
            confidence=event.confidence,
            speaker=event.speaker
            if event.speaker is not None
            else speaker_of(w.speaker for w in event.words),
            channel=event.channel,
            is_final=True,
            end_of_turn=event.end_of_turn,
            provider=self._provider,
            session_id=self._current_session_id,
            received_at=received_at,
            latency_s=latency_s,
        )
        if position is None:
            self._segments.append(segment)
            if key:
                self._index_by_key[key] = segment_id
            self._last_by_channel[segment.channel] = segment_id
        else:
            self._segments[position] = segment
            old_last = self._last_by_channel.get(segment.channel, -1)
            self._last_by_channel[segment.channel] = max(old_last, position)
        self._version += 1
        return segment

    @staticmethod
    def _with_revised(event, revised: RevisedSpeakers):
        """An update that arrived after revisions of its key, with the speakers they gave
        to the words it does not know; its own known speakers are newer and stay."""
        words = revised.relabel(event.words, only_unknown=True)
        speaker = event.speaker
        if speaker is None:
            speaker = revised.speaker
        if speaker is None:
            speaker = speaker_of(w.speaker for w in words)
        if speaker == event.speaker and words == event.words:
            return event
        return replace(event, words=words, speaker=speaker)

    def _apply_revision(self, event: SpeakerRevision) -> list[Segment]:
        changed: dict[int, Segment] = {}
        touched = False
        for revision in event.segments:
            key = revision.segment_key
            if not key:
                continue  # "no key" names nothing
            position = self._index_by_key.get(key)
            if position is not None:
                old = self._segments[position]
                segment = _revised(old, revision)
                if segment is not None:
                    self._segments[position] = changed[position] = segment
            else:
                partial = self._partials.get(key)
                if partial is not None:
                    revised = _revised(partial, revision)
                    if revised is not None:
                        self._partials[key] = revised
                        touched = True
            self._remember(key, revision, committed=position is not None)
        if changed or touched:
            self._version += 1
        return list(changed.values())

    def _remember(self, key: str, revision, *, committed: bool) -> None:
        remembered = self._revised.get(key)
        if remembered is None:
            self._revised[key] = RevisedSpeakers.of(revision)
            if not committed:
                self._early[key] = None
                if len(self._early) > MAX_EARLY_REVISIONS:
                    oldest = next(iter(self._early))
                    del self._early[oldest]
                    del self._revised[oldest]
        else:
            remembered.merge(revision)

    def _close_turn(self, channel: int) -> bool:
        """Mark ``channel``'s last segment as ending its utterance; True if that changed it."""
        position = self._last_by_channel.get(channel)
        if position is None:
            return False
        last = self._segments[position]
        if last.end_of_turn or last.channel != channel:
            return False
        self._segments[position] = replace(last, end_of_turn=True)
        return True

    def commit_partials(self) -> list[Segment]:
        """Keep what was only heard as partials, when a session ends without their finals.

        Each pending partial becomes a segment with ``is_final=False`` (the DataFrame's
        ``is_final`` column tells them apart), so a dropped connection or a provider that
        never sent its last final loses no words. Returns the new segments.
        """
        committed = []
        with self._lock:
            for partial in list(self._partials.values()):
                final = FinalTranscript(
                    text=partial.text,
                    words=partial.words,
                    start=partial.start,
                    end=partial.end,
                    confidence=partial.confidence,
                    speaker=partial.speaker,
                    channel=partial.channel,
                    segment_key=partial.segment_key,
                )
                segment = self._apply_final(final, None, None)
                if segment is not None:
                    segment = replace(segment, is_final=False)
                    self._segments[segment.segment_id] = segment
                    committed.append(segment)
        return committed

    def clear_partials(self) -> None:
        """Drop every pending partial (e.g. when a session stops without final results)."""
        with self._lock:
            if self._partials:
                self._partials.clear()
                self._version += 1

    # ----------------------------------------------------------------- reading

    @property
    def provider(self) -> str | None:
        return self._provider

    @property
    def session_id(self) -> str | None:
        """The first provider session id seen (or given); segments carry their own."""
        with self._lock:
            return self._session_id

    @property
    def version(self) -> int:
        """A counter bumped on every change: compare it to know whether to redraw."""
        with self._lock:
            return self._version

    @property
    def segments(self) -> list[Segment]:
        """A copy of the committed segments, in commit order."""
        with self._lock:
            return list(self._segments)

    @property
    def partials(self) -> dict[str, PartialTranscript]:
        """A copy of the pending partials by segment key, in the order their keys appeared."""
        with self._lock:
            return dict(self._partials)

    @property
    def text(self) -> str:
        """The final text: every segment's text, in commit order, joined by single spaces."""
        return " ".join(s.text for s in self.segments)

    def channel_text(self, channel: int) -> str:
        """The final text of one channel (multichannel audio), in commit order."""
        return " ".join(s.text for s in self.segments if s.channel == channel)

    @property
    def partial_text(self) -> str:
        """The pending partials' texts, joined by spaces in the order their keys appeared."""
        with self._lock:
            partials = list(self._partials.values())
        return " ".join(p.text.strip() for p in partials)

    def tail(self, n: int) -> list[Segment]:
        """The last ``n`` segments; costs O(n) whatever the transcript's length."""
        if n <= 0:
            return []
        with self._lock:
            return self._segments[-n:]

    def words(self) -> Iterator[Word]:
        """Every word of every committed segment, in commit order."""
        for segment in self.segments:
            yield from segment.words

    def utterances(self) -> list[tuple[Segment, ...]]:
        """Segments grouped into utterances, per channel.

        An utterance is a run of consecutive segments of one channel up to and including one
        with ``end_of_turn`` (Deepgram: the finals up to the ``speech_final`` one). A trailing
        run without it (the speaker is still talking) is the last utterance of its channel.
        Utterances are ordered by the ``segment_id`` of their first segment.
        """
        open_runs: dict[int, list[Segment]] = {}
        done: list[tuple[Segment, ...]] = []
        for segment in self.segments:
            run = open_runs.setdefault(segment.channel, [])
            run.append(segment)
            if segment.end_of_turn:
                done.append(tuple(run))
                del open_runs[segment.channel]
        done.extend(tuple(run) for run in open_runs.values())
        done.sort(key=lambda utterance: utterance[0].segment_id)
        return done

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    @overload
    def __getitem__(self, index: int) -> Segment: ...

    @overload
    def __getitem__(self, index: slice) -> list[Segment]: ...

    def __getitem__(self, index: int | slice) -> Segment | list[Segment]:
        with self._lock:
            return self._segments[index]

    def __repr__(self) -> str:
        segments = self.segments
        duration = max((s.end for s in segments), default=0.0)
        return (
            f"<Transcript provider={self._provider!r} segments={len(segments)} "
            f"duration={duration:.2f}s partials={len(self.partials)}>"
        )

    # ----------------------------------------------------------------- exports

    def to_dataframe(self):
        """One row per final segment (see :func:`export.segments_dataframe` for columns)."""
        from .export import segments_dataframe

        return segments_dataframe(self.segments)

    def words_dataframe(self):
        """One row per word (see :func:`export.words_dataframe` for columns)."""
        from .export import words_dataframe

        return words_dataframe(self.segments)

    def to_srt(self) -> str:
        """The final segments as SubRip cues (``HH:MM:SS,mmm``), ordered by start time."""
        from .export import to_srt

        return to_srt(self.segments)

    def to_vtt(self) -> str:
        """The final segments as WebVTT cues, with ``<v Speaker>`` tags when known."""
        from .export import to_vtt

        return to_vtt(self.segments)

    def to_json(self) -> str:
        """The final segments and their words as versioned JSON (partials are not saved)."""
        from .export import to_json

        with self._lock:
            segments = list(self._segments)
            provider, session_id = self._provider, self._session_id
        return to_json(segments, provider=provider, session_id=session_id)

    @classmethod
    def from_json(cls, data: str | bytes) -> Transcript:
        """Rebuild a transcript written by :meth:`to_json`."""
        from .export import parse_json

        provider, session_id, segments = parse_json(data)
        transcript = cls(provider=provider, session_id=session_id)
        for segment in segments:
            position = len(transcript._segments)
            transcript._segments.append(segment)
            if segment.key:
                transcript._index_by_key[segment.key] = position
            transcript._last_by_channel[segment.channel] = position
        return transcript

    def save(self, path: str | Path) -> Path:
        """Write the transcript in the format its extension names; return the path.

        ``.json`` (:meth:`to_json`), ``.srt``, ``.vtt``, ``.csv`` (:meth:`to_dataframe`) or
        ``.txt`` (one line per segment, prefixed by the speaker when known).
        """
        from .export import save

        return save(self, Path(path))


def _revised(item, revision):
    """A segment or pending partial after a new revision (newer than it), or ``None`` when
    the revision changes nothing. Its speaker becomes the revision's label, else that of
    most of its re-labelled words, else stays."""
    words = RevisedSpeakers.of(revision).relabel(item.words, only_unknown=False)
    speaker = revision.speaker
    if speaker is None:
        speaker = speaker_of(w.speaker for w in words)
    if speaker is None:
        speaker = item.speaker
    if words == item.words and speaker == item.speaker:
        return None
    return replace(item, words=words, speaker=speaker)
