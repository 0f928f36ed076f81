"""``CompareSession``: one audio source, one ``TranscriptionSession`` per provider, at once.

Each provider gets its own session (its own connection, options, key and threads) fed by a
branch of one ``AudioTee``, so every session receives the same bytes on the same audio clock
and a provider that fails or stalls never holds up the others (see ``tee.py``). The compare
layer sits on top of ``session/``: it starts no thread and opens no socket itself; it only
records, from the sessions' listeners, the few numbers the metrics need (``metrics.py``).

Configuration is the session's (``livetx_widgets.config.PARAMS``: the same names, defaults
and "did you mean" errors), given once for every provider, plus per provider in
``providers=[..., ("deepgram", {"url": ..., "model": ..., "label": "nova-3"})]``. The audio
(``source``, ``file``, ``device``, ``realtime``) is shared and can only be given once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..audio.base import AudioSource
from ..audio.resolve import resolve_source
from ..config import resolve, signature, suggest
from ..errors import (
    AudioNotKeptError,
    ConfigurationError,
    LivetxError,
    SegmentNotFoundError,
    SessionStateError,
)
from ..session import SessionMetadata, TranscriptionSession
from ..transcript import Segment, Transcript
from .align import aligned_rows
from .metrics import COLUMNS, Metrics, ProviderLog, measure, speech_regions
from .tee import DEFAULT_MAX_LAG_S, FRAME_S, MIN_MAX_LAG_S, AudioTee, TeeBranch

#: The keywords a comparison takes besides the session's (validated by ``config.resolve``).
COMPARE_KEYWORDS = ("providers", "reference", "speech", "max_lag_s")
#: A provider's own config may add a label.
PROVIDER_KEYWORDS = ("label",)
#: The audio is one for all: these are given to the comparison, not to a provider.
SHARED_ONLY = ("source", "file", "device", "realtime")
#: One recording per provider: a shared path would be written by every session at once.
PER_PROVIDER_ONLY = ("record_to",)


class CompareSession:
    """Transcribe one source with several providers side by side, and measure them.

    ::

        with CompareSession(["deepgram", "assemblyai", ("local", {"label": "whisper"})],
                            source="talk.wav", reference=Path("talk.txt")) as cmp:
            cmp.wait()
        cmp.summary()       # one row per provider: wer, latencies, finals, errors...
        cmp.aligned()       # finals lined up by time, one column per provider

    ``providers``: names (``"deepgram"``, ``"assemblyai"``, ``"local"``, ``"auto"``) or
    ``(name, config)`` pairs whose config is any of the session's keywords (``url``,
    ``api_key``, ``model``, ``options``, ``record_to``, ...) plus ``label`` (default: the name;
    repeated names get ``-2``, ``-3``). ``reference``: the text that was said (a string, or a
    ``Path`` to a text file) for the word error rate. ``speech``: known speech regions
    ``[(start, end), ...]`` in seconds of audio instead of the energy VAD. ``max_lag_s``: how
    far a provider may fall behind the audio before it is cut off (``tee.py``). Every other
    keyword is the session's, for every provider; ``on_*`` listeners are attached to every
    session as they are (``on()`` adds one that is told the provider's label).

    A provider whose session cannot even be made (no key, bad options) is kept with that
    error in its row, and the others run; only when none can be made does this raise.
    """

    def __init__(self, providers: Sequence[Any] = (), **config: Any) -> None:
        if "provider" in config:
            raise ConfigurationError(
                "A comparison takes providers=[...] (a list), not provider=; e.g. "
                'CompareSession(providers=["deepgram", "assemblyai"], source="talk.wav").'
            )
        given = {k: v for k, v in config.items() if k not in COMPARE_KEYWORDS}
        shared = resolve(type(self).__name__, {**given, "provider": "auto"},
                         extra=COMPARE_KEYWORDS)  # fmt: skip
        for name in PER_PROVIDER_ONLY:
            if shared.values[name] is not None:
                raise ConfigurationError(
                    f"{name}= is per provider in a comparison: give it in that provider's "
                    f'config, e.g. ("deepgram", {{"{name}": ...}}).'
                )
        self.reference = _reference(config.get("reference"))
        self._speech = _speech(config.get("speech"))
        self.max_lag_s = _max_lag(config.get("max_lag_s", DEFAULT_MAX_LAG_S))
        entries = _entries(providers)
        source = resolve_source(shared.source, file=shared.file, device=shared.device,
                                realtime=shared.realtime)  # fmt: skip
        self._tee = AudioTee(source, max_lag_s=self.max_lag_s)
        self._lock = threading.Lock()
        self.labels: list[str] = []
        self._names: dict[str, str] = {}
        self._sessions: dict[str, TranscriptionSession | None] = {}
        self._branches: dict[str, TeeBranch] = {}
        self._logs: dict[str, ProviderLog] = {}
        self._errors: dict[str, LivetxError] = {}
        self._empty: dict[str, Transcript] = {}
        self._started = False
        shared_given = {k: v for k, v in given.items() if k not in SHARED_ONLY}
        for label, name, own in _labelled(entries):
            self.labels.append(label)
            self._names[label] = name
            self._logs[label] = log = ProviderLog()
            self._empty[label] = Transcript(provider=name)
            branch = self._tee.branch(label)
            self._branches[label] = branch
            try:
                session = TranscriptionSession(name, **{**shared_given, **own, "source": branch})
            except LivetxError as exc:
                self._sessions[label] = None
                self._errors[label] = exc
                branch.stop()
                continue
            session.on("partial", functools.partial(_on_partial, log))
            session.on("final", functools.partial(_on_final, log))
            self._sessions[label] = session
        if not any(self._sessions.values()):
            raise next(iter(self._errors.values()))

    # -- running --------------------------------------------------------------------------
    def start(self) -> CompareSession:
        """Open the source once and start every provider's session; returns at once.

        A local problem with the source (no microphone, unreadable file) raises here; a
        provider that cannot start is kept with its error (``errors``) and the others run.
        """
        with self._lock:
            if self._started:
                raise SessionStateError(
                    "This comparison was already started; create a new CompareSession to run "
                    "again.", state=self.state,
                )  # fmt: skip
            self._started = True
        self._tee.start()
        for label, session in self._sessions.items():
            if session is None:
                continue
            try:
                session.start()
            except LivetxError as exc:
                self._errors[label] = exc
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every session has ended (a file played to its end); True if so."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for session in self._live_sessions():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not session.wait(remaining):
                return False
        return True

    def request_stop(self, timeout: float | None = None) -> None:
        """Begin every session's graceful stop and return at once."""
        for session in self._live_sessions():
            session.request_stop(timeout)

    def stop(self, timeout: float | None = None) -> dict[str, Transcript]:
        """Stop every provider (within ``timeout`` in all, default ``stop_timeout``) and
        close the source; returns ``transcripts``. Never raises for a provider's fault."""
        sessions = self._live_sessions()
        timeout = max((s.stop_timeout for s in sessions), default=0.0) if timeout is None \
            else max(0.0, timeout)  # fmt: skip
        deadline = time.monotonic() + timeout
        for session in sessions:
            session.request_stop(timeout)  # all at once: the stops overlap
        for session in sessions:
            session.stop(max(0.0, deadline - time.monotonic()))
        self._tee.stop()
        return self.transcripts

    def pause(self) -> None:
        for session in self._live_sessions():
            with contextlib.suppress(SessionStateError):
                session.pause()

    def resume(self) -> None:
        for session in self._live_sessions():
            with contextlib.suppress(SessionStateError):
                session.resume()

    def on(self, kind: str, handler: Callable[[str, Any], Any]) -> None:
        """Call ``handler(label, payload)`` for ``kind`` (partial, final, event, error,
        status) of every provider, on that provider's session thread."""
        for label, session in self._sessions.items():
            if session is not None:
                session.on(kind, functools.partial(handler, label))

    def close(self) -> None:
        """Stop if running and release every session's kept audio (``keep_audio``).
        Transcripts, metrics and the summary stay. Idempotent."""
        if self._started and self.running:
            self.stop()
        for session in self._live_sessions():
            session.close()
        self._tee.stop()

    # -- playback -------------------------------------------------------------------------
    def segment_audio(self, provider: str, segment_id: int):
        """The samples of ``provider``'s segment ``segment_id`` (16 kHz int16), exactly as
        that session sent them (``TranscriptionSession.segment_audio``)."""
        return self._session_of(provider).segment_audio(segment_id)

    def audio_span(self, start: float, end: float) -> dict[str, Any]:
        """label -> the samples between ``start`` and ``end`` seconds on each provider's audio
        clock (identical by construction: every session was sent the same audio). Providers
        that keep no audio (``keep_audio=False``, or never ran) are left out."""
        spans = {}
        for label, session in self._sessions.items():
            if session is None:
                continue
            try:
                spans[label] = session.audio_span(start, end)
            except AudioNotKeptError:
                continue
        return spans

    def _session_of(self, provider: str) -> TranscriptionSession:
        if provider not in self._sessions:
            raise SegmentNotFoundError(
                f"No provider labelled {provider!r} in this comparison"
                f"{suggest(str(provider), self.labels)}; labels: {', '.join(self.labels)}."
            )
        session = self._sessions[provider]
        if session is None:
            raise SegmentNotFoundError(
                f"{provider} never ran ({self._errors.get(provider)}): it has no audio."
            )
        return session

    def __enter__(self) -> CompareSession:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what it holds --------------------------------------------------------------------
    @property
    def sessions(self) -> dict[str, TranscriptionSession | None]:
        """label -> the provider's session (``None`` when it could not be made)."""
        return dict(self._sessions)

    @property
    def source(self) -> AudioSource:
        """The one source every provider hears."""
        return self._tee.source

    @property
    def tee(self) -> AudioTee:
        return self._tee

    @property
    def transcripts(self) -> dict[str, Transcript]:
        """label -> ``Transcript`` (live while running; empty for a provider that never ran)."""
        return {
            label: session.transcript if session is not None else self._empty[label]
            for label, session in self._sessions.items()
        }

    @property
    def errors(self) -> dict[str, LivetxError | None]:
        """label -> the error that ended (or prevented) that provider's session, or None."""
        out: dict[str, LivetxError | None] = {}
        for label, session in self._sessions.items():
            out[label] = self._errors.get(label) or (session.error if session else None)
        return out

    @property
    def metadata(self) -> dict[str, SessionMetadata]:
        return {
            label: session.metadata if session is not None
            else SessionMetadata(provider=self._names[label])
            for label, session in self._sessions.items()
        }  # fmt: skip

    def provider_name(self, label: str) -> str:
        """The provider behind ``label`` (``"deepgram"``, ``"assemblyai"``, ``"local"``...)."""
        return self._names[label]

    def state_of(self, label: str) -> str:
        session = self._sessions[label]
        if session is None:
            return "error"
        return "error" if label in self._errors else session.state

    @property
    def state(self) -> str:
        """``idle`` before start, ``running`` while any provider runs, then ``stopped``."""
        if not self._started:
            return "idle"
        return "running" if self.running else "stopped"

    @property
    def running(self) -> bool:
        return any(s.running for s in self._live_sessions())

    def lag_s(self, label: str) -> float:
        """Seconds of audio read that ``label``'s session has not taken yet."""
        return self._branches[label].lag_s

    # -- results --------------------------------------------------------------------------
    def speech_regions(self) -> list[tuple[float, float]]:
        """Where speech is on the audio clock: ``speech=`` if given, else the energy VAD."""
        if self._speech is not None:
            return list(self._speech)
        return speech_regions(self._tee.energy(), FRAME_S)

    def metrics(self) -> dict[str, Metrics]:
        """label -> ``Metrics`` (a snapshot; see ``metrics.py`` for what each value means)."""
        regions = self.speech_regions()
        out = {}
        errors, metadata = self.errors, self.metadata
        for label in self.labels:
            session = self._sessions[label]
            meta = metadata[label]
            error = errors[label]
            out[label] = measure(
                label=label, name=self._names[label], model=meta.model, log=self._logs[label],
                text=self.transcripts[label].text, regions=regions, clock=self._tee.clock_at,
                reference=self.reference, reconnects=meta.reconnects,
                state=self.state_of(label) if session is not None else "error",
                error="" if error is None else f"{type(error).__name__}: {error}",
            )  # fmt: skip
        return out

    def summary(self):
        """A DataFrame, one row per provider: ``provider`` (the label), ``wer``,
        ``first_partial_s``, ``final_p50_s``, ``final_p95_s``, ``revisions_per_final``,
        ``words_per_final``, ``finals``, ``words``, ``reconnects``, ``error``, and more
        (see ``metrics.COLUMNS``)."""
        import pandas as pd

        rows = [m.row() for m in self.metrics().values()]
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def aligned(self):
        """A DataFrame lining up the finals by time: ``start``, ``end``, one column of text
        per provider (see ``align.py``)."""
        import pandas as pd

        finals: dict[str, list[Segment]] = {
            label: t.segments for label, t in self.transcripts.items()
        }
        return pd.DataFrame(aligned_rows(finals), columns=["start", "end", *self.labels])

    def __repr__(self) -> str:
        return f"CompareSession({', '.join(self.labels)}; state={self.state!r})"

    # -- internals ------------------------------------------------------------------------
    def _live_sessions(self) -> list[TranscriptionSession]:
        return [s for s in self._sessions.values() if s is not None]


def _on_partial(log: ProviderLog, event: Any) -> None:
    log.partial(time.monotonic(), event.text)


def _on_final(log: ProviderLog, segment: Segment) -> None:
    log.final(time.monotonic(), segment.segment_id, segment.start, segment.end, segment.text)


def _entries(providers: Any) -> list[tuple[str, dict[str, Any]]]:
    """``providers=`` as ``[(name, config), ...]``, each config checked like the session's."""
    if isinstance(providers, str):
        providers = [p.strip() for p in providers.split(",") if p.strip()]
    if not isinstance(providers, Iterable) or isinstance(providers, Mapping):
        raise ConfigurationError(
            "providers= must be a list of names or (name, config) pairs, e.g. "
            '["deepgram", ("local", {"label": "offline"})].'
        )
    entries = []
    for i, item in enumerate(providers):
        if isinstance(item, str):
            name, own = item, {}
        elif isinstance(item, Mapping):
            own = dict(item)
            name = own.pop("provider", None)
        elif isinstance(item, Sequence) and len(item) == 2 and isinstance(item[1], Mapping):
            name, own = item[0], dict(item[1])
        else:
            raise ConfigurationError(
                f"providers[{i}] must be a name or a (name, config) pair, not {item!r}."
            )
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"providers[{i}] needs a provider name, got {name!r}.")
        for key in SHARED_ONLY:
            if key in own:
                raise ConfigurationError(
                    f"providers[{i}] ({name}): {key}= is shared by every provider in a "
                    "comparison (they all hear the same audio); give it to CompareSession."
                )
        try:
            resolve("CompareSession", {**own, "provider": name}, extra=PROVIDER_KEYWORDS)
        except TypeError as exc:
            raise TypeError(f"providers[{i}] ({name}): {exc}") from None
        entries.append((name, own))
    if not entries:
        raise ConfigurationError("providers= needs at least one provider to compare.")
    return entries


def _labelled(entries: list[tuple[str, dict[str, Any]]]):
    """``(label, name, config without label)``: labels unique (repeats get -2, -3...)."""
    seen: set[str] = set()
    for name, own in entries:
        own = dict(own)
        label = own.pop("label", None)
        if label is not None:
            if not isinstance(label, str) or not label.strip():
                raise ConfigurationError(f"label= must be a non-empty string, not {label!r}.")
            label = label.strip()
            if label in seen:
                raise ConfigurationError(
                    f"Two providers are labelled {label!r}; give each a different label=."
                )
        else:
            label, n = name.lower(), 1
            while label in seen:
                n += 1
                label = f"{name.lower()}-{n}"
        seen.add(label)
        yield label, name.lower(), own


def _reference(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        try:
            return Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"Cannot read the reference text {value}: {exc}") from exc
    if isinstance(value, str):
        return value
    raise ConfigurationError(
        f"reference= must be the text (a str) or a Path to a text file, not {type(value).__name__}."
    )


def _speech(value: Any) -> list[tuple[float, float]] | None:
    if value is None:
        return None
    try:
        regions = [(float(a), float(b)) for a, b in value]
    except (TypeError, ValueError):
        raise ConfigurationError(
            "speech= must be a list of (start, end) pairs in seconds of audio."
        ) from None
    for a, b in regions:
        if not 0 <= a <= b:
            raise ConfigurationError(f"speech= region ({a}, {b}) must have 0 <= start <= end.")
    return sorted(regions)


def _max_lag(value: Any) -> float:
    """A session reads up to ~2.5 s ahead of its socket (``session.timing.MAX_PENDING_S`` plus
    the pacing burst), so two healthy sessions can be that far apart: the bound must be more."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= MIN_MAX_LAG_S:
        raise ConfigurationError(
            f"max_lag_s= must be a number of seconds >= {MIN_MAX_LAG_S:g}, not {value!r}."
        )
    return float(value)


def _signature() -> inspect.Signature:
    base = signature()
    params = [p for p in base.parameters.values() if p.name not in ("self", "provider")]
    compare = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
        inspect.Parameter("providers", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=()),
        inspect.Parameter("reference", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("speech", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("max_lag_s", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_MAX_LAG_S),
    ]
    return inspect.Signature([*compare, *params])


CompareSession.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
