"""TranscriptionSession: stream an audio source to a provider in the background.

Three threads, all owned by the session and joined before it counts as ended:

* the **sender** reads the source, records each chunk in the audio ledger and sends what the
  ledger holds as pending (paced for providers that refuse faster-than-real-time audio),
  sends KeepAlive when nothing else went out for a while, and, once the session is closing,
  sends the provider's closing messages on whichever connection is current.
* the **receiver** owns the connection: it connects, blocks on ``recv``, decodes frames with
  the provider codec, applies events to the transcript and calls the partial, final, event
  and error listeners. When a connection drops it reconnects with backoff, rewinds the
  ledger to the last acknowledged audio and shifts the new connection's timestamps by the
  audio already covered, so the transcript's clock stays continuous. It ends the session.
* the **control** thread never blocks on I/O: it emits status events, in the order the
  state changed, and enforces every deadline (the stop timeout, the wait for the provider's
  summary, a send that stalls because the peer stopped reading, a close that does not follow
  an unrequested terminal message) by aborting the socket that another thread is blocked on.

Each thread's code is in its own module (``sender.py``, ``receiver.py``, ``control.py``,
mixed into the class here); this module holds the public API, the shared state, event
dispatch and the end. States and the moves between them are in ``lifecycle.py``; every
piece of shared state is guarded by one condition variable (``_cv``), and listeners are
called with no lock held.
``stop()`` from the caller's thread is bounded by its timeout in every state, connecting
included (the socket being opened is aborted). From a listener, or any of the session's
own threads, ``stop()`` only requests the stop and returns at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH, AudioSource
from ..audio.resolve import resolve_source
from ..config import resolve as resolve_config
from ..config import signature as config_signature
from ..errors import (
    ConfigurationError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
    SegmentNotFoundError,
    SessionStateError,
)
from ..events import (
    ConfigureResult,
    Event,
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SessionEnded,
    SessionStarted,
    SpeakerRevision,
)
from ..providers import make_codec
from ..transcript import Segment, Transcript
from . import endpoints
from . import lifecycle as lc
from .audio_store import SessionAudio
from .connection import Connection, Opening
from .control import ControlThread
from .ledger import BYTES_PER_SECOND, AudioLedger
from .listeners import Listeners
from .metadata import SessionMetadata
from .receiver import ReceiverThread
from .sender import SenderThread
from .timing import JOIN_GRACE_S, MAX_LATENCY_SAMPLES
from .updates import update_message

log = logging.getLogger("livetx_widgets.session")


class TranscriptionSession(ControlThread, SenderThread, ReceiverThread):
    """Streams ``source`` to ``provider`` in the background and keeps a live ``Transcript``.

    Keyword arguments (the same for ``LiveTranscriber`` and ``livetx transcribe``; see
    ``livetx_widgets.config.PARAMS`` for each one's default, check and meaning):
    ``provider`` (may be positional), ``model``, ``source`` (``"auto"``, ``"kernel"``,
    ``"file"`` with ``file=``, ``"browser"``, a path, a 16 kHz numpy array or an
    ``AudioSource``), ``device``, ``file``, ``realtime``, ``api_key`` (never shown anywhere),
    ``url``, ``options`` (unknown names raise ``ConfigurationError`` naming the closest),
    ``keyterms``, ``local_engine``, ``local_options``, ``record_to``, ``keep_audio`` and
    ``keep_audio_max_s`` (the sent audio kept for ``segment_audio``), ``keepalive_s``,
    ``max_reconnects``, ``replay_buffer_s``, ``connect_timeout``, ``stop_timeout``, ``pace``
    (``None``: real time where the protocol requires it; ``False``: as fast as the socket
    allows, for a local server that does not enforce it) and the listeners: ``on_partial``,
    ``on_final``, ``on_event``, ``on_error`` (receiver thread) and ``on_status`` (control
    thread, in order). A misspelled keyword raises ``TypeError`` naming the closest one.

    Playback: ``segment_audio(segment_id)`` / ``audio_span(start, end)`` return the samples
    sent (int16, 16 kHz), kept in a bounded temporary file until ``close()`` or garbage
    collection (see ``audio_store.py``).

    States: ``idle -> connecting -> live <-> paused``, ``reconnecting`` after a drop, then
    ``stopping -> stopped`` or ``error`` (see ``lifecycle.py``); ``state`` tells which.
    """

    def __init__(self, provider: str = "auto", /, **config: Any):
        self.config = cfg = resolve_config(type(self).__name__, {"provider": provider, **config})
        self._endpoint = endpoints.resolve(
            cfg.provider,
            api_key=cfg.api_key,
            url=cfg.url,
            local_engine=cfg.local_engine,
            local_options=cfg.engine_options(),
        )
        self._options = cfg.provider_options(self._endpoint.provider)
        self._codec = make_codec(self._endpoint.protocol, **self._options)  # validates early
        self._source = resolve_source(
            cfg.source, file=cfg.file, device=cfg.device, realtime=cfg.realtime
        )
        # Exactly the audio sent, for record_to and segment playback (see audio_store.py).
        self._audio = SessionAudio(
            keep=cfg.keep_audio,
            max_s=cfg.keep_audio_max_s,
            record_to=Path(cfg.record_to) if cfg.record_to else None,
        )
        self.keepalive_s = cfg.keepalive_s
        self.max_reconnects = cfg.max_reconnects
        self.connect_timeout = cfg.connect_timeout
        self.stop_timeout = cfg.stop_timeout
        self.pace = cfg.pace

        self.transcript = Transcript(provider=self._endpoint.provider)
        self._listeners = Listeners()
        for name, handler in cfg.listeners().items():
            self._listeners.add(name.removeprefix("on_"), handler)

        self._cv = threading.Condition()
        # Everything below is guarded by _cv.
        self._life = lc.Lifecycle()
        self._meta = SessionMetadata(
            provider=self._endpoint.provider,
            model=endpoints.model_label(self._endpoint, self._codec.model),
            params=dict(self._codec.params),
        )
        self._ledger = AudioLedger(cfg.replay_buffer_s)
        self._conn: Connection | None = None
        self._opening: Opening | None = None  # the connection attempt in progress
        self._conn_gen = 0
        self._failed_attempts = 0  # reconnection attempts in a row without progress
        self._acked_at_reconnect = 0
        self._conn_offset = 0  # ledger offset where the current connection's clock starts
        self._conn_started = 0.0  # monotonic time the current connection opened
        self._close_sent_gen = -1  # connection generation that got the closing messages
        self._closing = False
        self._close_timeout: float | None = None  # summary wait, from the closing messages
        self._close_deadline: float | None = None
        self._stop_deadline: float | None = None  # bound of a stop(timeout) call
        self._stop_timeout_s = 0.0  # ...and its timeout, for the message
        self._send_since: float | None = None  # a send in progress started then
        self._terminal_deadline: float | None = None  # close due after an unrequested end
        self._aborted = False
        self._finished = False  # the receiver is done: the control thread may end
        self._paused = False
        self._paused_since: float | None = None
        self._last_send = 0.0
        self._configure_waiters: deque[_PendingConfigure] = deque()  # oldest first
        self._error: LivetxError | None = None
        self._pending_error: LivetxError | None = None
        self._level = 0.0
        self._local_server = None
        self._threads: list[threading.Thread] = []
        self._t0_mono = 0.0
        self._ended = threading.Event()

    # -- public API -----------------------------------------------------------------------
    @property
    def provider(self) -> str:
        return self._endpoint.provider

    @property
    def source(self) -> AudioSource:
        return self._source

    @property
    def error(self) -> LivetxError | None:
        """The error that ended the session, or ``None``."""
        return self._error

    @property
    def metadata(self) -> SessionMetadata:
        """A consistent snapshot of the session's metadata."""
        with self._cv:
            meta = self._meta.copy()
            meta.state = self._life.state
            meta.audio_sent_s = self._ledger.sent / BYTES_PER_SECOND
            meta.dropped_audio_s = self._ledger.dropped_bytes / BYTES_PER_SECOND
            if meta.audio_duration_s is None and self._ended.is_set():
                meta.audio_duration_s = meta.audio_sent_s
            if self._paused_since is not None:
                meta.paused_s += time.monotonic() - self._paused_since
        meta.kept_audio_from_s = self._audio.kept_from_s
        meta.kept_audio_warning = self._audio.warning
        report = getattr(self._source, "stats", None)  # outside the session's lock
        stats = report() if callable(report) else {}
        if stats:
            meta.raw["source"] = stats
            meta.source_gaps = int(stats.get("gaps", 0))
            meta.source_gap_s = float(stats.get("gap_s", 0.0))
            meta.source_reconnects = int(stats.get("reconnects", 0))
            # A queue source (the browser microphone) drops audio past its bound itself.
            meta.dropped_audio_s += float(stats.get("dropped_s", 0.0))
        return meta

    @property
    def state(self) -> str:
        return self._life.state

    @property
    def running(self) -> bool:
        """Started and not yet ended (threads may still be finishing while ``stopping``)."""
        return self._life.state in lc.ACTIVE and not self._ended.is_set()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def level(self) -> float:
        """RMS level of the last chunk read, 0..1 (for a level meter)."""
        return self._level

    @property
    def warnings(self) -> tuple[int, str | None]:
        """(count, last message) of the provider warnings so far: cheap, for a live display."""
        with self._cv:
            return self._meta.warnings, self._meta.last_warning

    @property
    def listener_errors(self) -> list[BaseException]:
        return list(self._listeners.failures)

    def on(self, kind: str, handler: Callable[..., Any]) -> None:
        """Add a listener: ``kind`` is partial, final, event, error or status."""
        self._listeners.add(kind, handler)

    def off(self, kind: str, handler: Callable[..., Any]) -> None:
        self._listeners.remove(kind, handler)

    def events(self) -> Iterator[Event]:
        """Block and yield every event from now on; ends when the session ends."""
        return self._listeners.subscribe()

    def start(self) -> TranscriptionSession:
        """Open the source and start streaming in the background. Returns at once.

        Raises synchronously for local problems (no audio device, bad source, session already
        started). Remote problems (refused key, unreachable server) arrive in ``error``,
        ``on_error`` and ``wait()``, because connecting happens in the background.
        """
        with self._cv:
            if self._life.state != lc.IDLE:
                raise SessionStateError(
                    "This session was already started; a session runs once. "
                    "Create a new TranscriptionSession to record again.",
                    state=self._life.state,
                )
            self._t0_mono = time.monotonic()
            self._meta.started_at = time.time()
        try:
            self._source.start()
            self._audio.open()
        except LivetxError as exc:
            with contextlib.suppress(Exception):
                self._source.stop()
            self._audio.close()
            with self._cv:
                self._error = exc
                self._meta.error = str(exc)
                self._life.to(lc.ERROR)
            self._emit_statuses()
            self._ended.set()
            self._listeners.close()
            raise
        with self._cv:
            self._life.to(lc.CONNECTING)
            self._threads = [
                threading.Thread(target=self._control_loop, name="livetx-control"),
                threading.Thread(target=self._send_loop, name="livetx-sender"),
                threading.Thread(target=self._receive_loop, name="livetx-receiver"),
            ]
        for thread in self._threads:
            thread.start()  # the receiver last: it ends the session and joins the others
        return self

    def pause(self) -> None:
        """Stop sending audio without closing the session (KeepAlive keeps it open).

        Allowed while connecting, live, paused (a no-op) or reconnecting; before ``start()``
        or once the session is stopping or has ended it raises ``SessionStateError``.
        """
        with self._cv:
            self._life.require("pause", {lc.CONNECTING, lc.LIVE, lc.PAUSED, lc.RECONNECTING})
            if not self._paused:
                self._paused = True
                self._paused_since = time.monotonic()
                if self._life.state == lc.LIVE:
                    self._life.to(lc.PAUSED)
                self._cv.notify_all()

    def resume(self) -> None:
        """Send audio again after ``pause()``; a no-op when not paused. Same states as pause."""
        with self._cv:
            self._life.require("resume", {lc.CONNECTING, lc.LIVE, lc.PAUSED, lc.RECONNECTING})
            if self._paused:
                self._paused = False
                self._meta.paused_s += time.monotonic() - (self._paused_since or time.monotonic())
                self._paused_since = None
                if self._life.state == lc.PAUSED:
                    self._life.to(lc.LIVE)
                self._cv.notify_all()

    def finalize(self) -> bool:
        """Ask the provider to commit what it has heard so far (Finalize / ForceEndpoint).

        Returns True if the request went out. While connecting or reconnecting there is no
        connection to ask, so it does nothing and returns False; before ``start()`` or once
        the session is stopping or has ended it raises ``SessionStateError``.
        """
        with self._cv:
            self._life.require("finalize", {lc.CONNECTING, lc.LIVE, lc.PAUSED, lc.RECONNECTING})
            conn = self._conn
        if conn is None or conn.codec.finished:
            return False
        try:
            conn.send_text(conn.codec.finalize())
        except LivetxError:
            return False  # the receiver sees the same drop and reconnects
        return True

    def update(
        self,
        *,
        keyterms: list[str] | tuple[str, ...] | None = None,
        wait: bool = True,
        timeout: float = 5.0,
        **options: Any,
    ) -> None:
        """Change settings while the session runs, and for every reconnect after it.

        ``keyterms`` (``[]`` clears them) means Deepgram's ``keyterm`` and AssemblyAI's
        ``keyterms_prompt``; other names are the provider's own updatable settings (Deepgram
        Configure features such as ``numerals``, AssemblyAI ``max_turn_silence``, ...), checked
        like connection options: an unknown name or a bad value raises
        ``ConfigurationError`` at once. Connected, the change goes out as Deepgram
        ``Configure`` / AssemblyAI ``UpdateConfiguration``; while connecting or reconnecting
        it is kept and the next connection opens with it. Deepgram answers: with ``wait``
        this waits up to ``timeout`` for the answer and raises ``ProviderError`` for a
        ``ConfigureFailure`` (the old settings stay); without it, a failure is logged and
        counted in ``metadata.warnings``. AssemblyAI does not answer.
        """
        with self._cv:
            self._life.require("update", {lc.CONNECTING, lc.LIVE, lc.PAUSED, lc.RECONNECTING})
            conn = self._conn if self._conn is not None and not self._conn.codec.finished else None
        codec = (
            conn.codec if conn is not None else make_codec(self._endpoint.protocol, **self._options)
        )
        message, changed = update_message(codec, keyterms, options)  # validates
        new_options = {**self._options, **changed}
        for name, value in changed.items():
            if value == []:
                new_options.pop(name)
        answered = conn is not None and codec.name == "deepgram"
        if conn is None or not answered:
            with self._cv:
                self._options = new_options
            if conn is not None:
                conn.send_text(message)
            return
        waiter = _PendingConfigure(new_options)
        with self._cv:
            self._configure_waiters.append(waiter)
        conn.send_text(message)
        if not wait or self._on_own_thread():
            return
        if not waiter.answered.wait(timeout):
            raise ProviderError(
                f"Deepgram did not answer the Configure message within {timeout:g} s; the "
                "change may or may not apply to this stream (it does to a reconnect).",
                None,
                "no answer",
            )
        result = waiter.result
        if result is not None and not result.ok:
            raise ProviderError(result.reason, result.code, result.reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session has ended; True if it has. Does not raise its error.

        From a listener or another of the session's threads it cannot wait for itself: it
        returns at once whether the session has ended.
        """
        if self._life.state == lc.IDLE:
            return True
        if self._on_own_thread():
            return self._ended.is_set()
        return self._ended.wait(timeout)

    def stop(self, timeout: float | None = None) -> Transcript:
        """End the session gracefully and return the transcript. Idempotent.

        Sends the provider's closing messages (Deepgram Finalize + CloseStream, AssemblyAI
        Terminate) once the audio already taken has gone out, and waits for its closing
        summary. The whole call takes at most ``timeout`` seconds (default ``stop_timeout``),
        in every state: past it, the socket (or the connection still being opened) is
        aborted. Then every thread is joined and the source released. Never raises for
        remote faults: they are in ``error``; everything received is kept.

        Called from a listener or any of the session's own threads, it requests the stop
        and returns at once (a thread cannot join itself); ``wait()`` from elsewhere then
        waits for the end.
        """
        timeout = self.stop_timeout if timeout is None else max(0.0, timeout)
        with self._cv:
            if self._life.state == lc.IDLE:
                self._life.to(lc.STOPPED)
                self._ended.set()
                never_started = True
            else:
                never_started = False
        if never_started:
            with contextlib.suppress(Exception):
                self._source.stop()
            self._emit_statuses()
            self._listeners.close()
            return self.transcript
        self.request_stop(timeout)
        if self._on_own_thread():
            return self.transcript
        if not self._ended.wait(timeout):
            self._stop_timed_out(timeout)
            self._ended.wait(JOIN_GRACE_S)
        return self.transcript

    def request_stop(self, timeout: float | None = None) -> None:
        """Begin the graceful stop and return at once (safe from a signal handler or listener).

        The stop completes within ``timeout`` seconds (default ``stop_timeout``); ``wait()``
        or ``stop()`` waits for it.
        """
        timeout = self.stop_timeout if timeout is None else max(0.0, timeout)
        with self._cv:
            if self._life.state not in lc.ACTIVE:
                return
            deadline = time.monotonic() + timeout
            if self._stop_deadline is None or deadline < self._stop_deadline:
                self._stop_deadline = deadline
                self._stop_timeout_s = timeout
            self._begin_close_locked(timeout)
        self._source.stop()  # unblocks a sender waiting on the microphone

    def segment_audio(self, segment: int | Segment) -> np.ndarray:
        """The samples a segment came from: 16 kHz mono int16, exactly what was sent.

        ``segment`` is a ``segment_id`` (0, 1, ... as in ``transcript.to_dataframe()``) or a
        ``Segment``; the span is its ``start``..``end`` on the session's audio clock, which
        stays continuous across reconnects. Works while the session runs (from any thread)
        and after it stopped, until ``close()``. Raises ``SegmentNotFoundError`` for an
        unknown id, ``AudioNotKeptError`` with ``keep_audio=False`` or after ``close()``, and
        ``AudioDroppedError`` for audio older than the ``keep_audio_max_s`` newest seconds.
        """
        if isinstance(segment, Segment):
            start, end = segment.start, segment.end
        else:
            if isinstance(segment, bool) or not isinstance(segment, int | np.integer):
                raise SegmentNotFoundError(
                    f"segment_audio() takes a segment_id (an int) or a Segment, not {segment!r}."
                )
            count = len(self.transcript)
            if not 0 <= segment < count:
                have = f"ids 0 to {count - 1}" if count else "no segments yet"
                raise SegmentNotFoundError(
                    f"This session's transcript has no segment {segment} ({have})."
                )
            found = self.transcript[int(segment)]
            start, end = found.start, found.end
        return self.audio_span(start, end)

    def audio_span(self, start: float, end: float) -> np.ndarray:
        """The samples sent between ``start`` and ``end`` seconds of the session's audio clock
        (16 kHz mono int16), e.g. the same span from several sessions fed the same audio.

        The end is cut to the audio sent so far. Same errors as ``segment_audio``, and
        ``ConfigurationError`` for times that are not ``0 <= start <= end``.
        """
        for value in (start, end):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ConfigurationError(f"audio_span() takes seconds, not {value!r}.")
        start, end = float(start), float(end)
        if not (0.0 <= start <= end < float("inf")):
            raise ConfigurationError(
                f"audio_span() needs 0 <= start <= end seconds, not start={start!r}, end={end!r}."
            )
        return np.frombuffer(self._audio.read(start, end), dtype="<i2").astype(np.int16)

    def close(self) -> None:
        """Stop the session if it runs, and release its kept audio (the temporary file).

        The transcript and metadata stay; ``segment_audio`` raises ``AudioNotKeptError``
        from now on. Garbage collection and interpreter exit release the audio too.
        Idempotent.
        """
        if self._life.state != lc.IDLE and not self._ended.is_set():
            self.stop()
        self._audio.close()

    def __enter__(self) -> TranscriptionSession:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"TranscriptionSession(provider={self.provider!r}, state={self.state!r}, "
            f"segments={len(self.transcript)})"
        )

    # -- state ----------------------------------------------------------------------------
    def _on_own_thread(self) -> bool:
        return threading.current_thread() in self._threads

    def _begin_close_locked(self, timeout: float) -> None:
        """Start the graceful end (lock held): flush pending audio, then the closing messages.

        ``timeout`` bounds the wait for the provider's summary, counted from the moment the
        closing messages go out (see ``_pump``).
        """
        if self._life.state not in lc.ACTIVE:
            return
        if self._close_timeout is None or timeout < self._close_timeout:
            self._close_timeout = timeout
        self._closing = True
        if self._life.state != lc.STOPPING:
            self._life.to(lc.STOPPING)
        self._cv.notify_all()

    def _begin_close(self, timeout: float) -> None:
        with self._cv:
            self._begin_close_locked(timeout)

    def _abort(self, why: str) -> None:
        """Give up waiting: drop the connection (or the attempt) so the receiver ends now."""
        log.debug("aborting session: %s", why)
        with self._cv:
            self._aborted = True
            conn, opening = self._conn, self._opening
            self._cv.notify_all()
        if opening is not None:
            opening.abort()
        if conn is not None:
            conn.abort()

    def _emit_statuses(self) -> None:
        with self._cv:
            statuses = self._life.take_unsent()
        for state in statuses:
            self._listeners.emit("status", state)

    # -- events ---------------------------------------------------------------------------
    def _dispatch(self, event: Event) -> None:
        if isinstance(event, FinalTranscript):
            segment = self._apply_final(event)
            if segment is not None:
                self._listeners.emit("final", segment)
        elif isinstance(event, PartialTranscript):
            self.transcript.apply(event)
            with self._cv:
                self._meta.partials += 1
            self._listeners.emit("partial", event)
        elif isinstance(event, SessionStarted):
            with self._cv:
                meta = self._meta
                if event.session_id:
                    meta.session_ids.append(event.session_id)
                    meta.session_id = meta.session_id or event.session_id
                meta.request_id = meta.request_id or event.request_id
                meta.expires_at = event.expires_at or meta.expires_at
                if event.model and self.provider != "local":
                    meta.model = event.model
                meta.raw.setdefault("begin", event.raw)
            self.transcript.apply(event)
        elif isinstance(event, SpeakerRevision):
            # Re-labelled segments go out again, like a re-final (same segment_id).
            for segment in self.transcript.apply(event):
                self._listeners.emit("final", segment)
        elif isinstance(event, SessionEnded):
            self._on_summary(event)
        elif isinstance(event, ConfigureResult):
            self._on_configure_result(event)
        elif isinstance(event, ProviderWarning):
            with self._cv:
                self._meta.warnings += 1
                self._meta.last_warning = event.message
            log.warning("%s", event.message)
        elif isinstance(event, ProviderErrorEvent) and event.fatal:
            with self._cv:
                conn = self._conn
            if conn is not None:
                self._pending_error = conn.codec.error_from_event(event)
        self._listeners.emit("event", event)

    def _on_configure_result(self, event: ConfigureResult) -> None:
        """Deepgram answered the oldest Configure: keep its options for reconnects, or not."""
        with self._cv:
            if not self._configure_waiters:
                return
            waiter = self._configure_waiters.popleft()
            new_options = waiter.options
            if event.ok:
                self._options = new_options
            else:
                self._meta.warnings += 1
                self._meta.last_warning = event.reason
        if not event.ok:
            log.warning("%s", event.reason)
        waiter.result = event
        waiter.answered.set()

    def _on_summary(self, event: SessionEnded) -> None:
        """The provider's closing summary: the normal end, or (unasked) a sign of trouble."""
        with self._cv:
            meta = self._meta
            requested = self._close_sent_gen == self._conn_gen
            if requested:
                # The close that follows confirms it (see _acknowledge_all) or not.
                meta.terminal_message = True
                meta.audio_duration_s = event.audio_duration_s
                meta.session_duration_s = event.session_duration_s
                meta.raw["summary"] = event.raw
            else:
                # Unacknowledged audio stays in the ledger: a reconnect replays it.
                meta.unrequested_terminals += 1
                meta.raw["unrequested_summary"] = event.raw
            meta.request_id = meta.request_id or event.request_id

    def _apply_final(self, event: FinalTranscript) -> Segment | None:
        now_mono, now = time.monotonic(), time.time()
        # To the nearest sample: int() would truncate 0.6 + 0.7 (1.2999999999999998) one byte
        # short of the frame that ends at 1.3 s, and that frame would be replayed.
        end_offset = round(event.end * SAMPLE_RATE) * SAMPLE_WIDTH
        with self._cv:
            sent_at = self._ledger.send_time(end_offset)
            self._ledger.ack(end_offset)
        latency = None if sent_at is None else max(0.0, now_mono - sent_at)
        segment = self.transcript.apply(event, received_at=now, latency_s=latency)
        if segment is not None:
            with self._cv:
                self._meta.finals += 1
                if latency is not None:
                    lat = self._meta.final_latencies_s
                    lat.append(latency)
                    if len(lat) > MAX_LATENCY_SAMPLES:
                        del lat[: len(lat) - MAX_LATENCY_SAMPLES]
        return segment

    # -- ending ---------------------------------------------------------------------------
    def _fail(self, error: LivetxError) -> None:
        with self._cv:
            if self._error is not None:
                return
            self._error = error
            self._meta.error = str(error)
            self._cv.notify_all()
        self._listeners.emit("error", error)

    def _finish(self) -> None:
        """Receiver's last act: close the socket, join the other threads, release everything."""
        with self._cv:
            conn, self._conn = self._conn, None
            self._closing = True
            self._aborted = True
            self._cv.notify_all()
        if conn is not None:
            conn.close()
        with contextlib.suppress(Exception):
            self._source.stop()
        sender = self._threads[1]
        if sender is not threading.current_thread():
            sender.join()
        if self._local_server is not None:
            with contextlib.suppress(Exception):
                self._local_server.close()
        self.transcript.commit_partials()
        with self._cv:
            meta = self._meta
            meta.ended_at = time.time()
            if meta.session_duration_s is None:
                meta.session_duration_s = time.monotonic() - self._t0_mono
            if self._paused_since is not None:
                meta.paused_s += time.monotonic() - self._paused_since
                self._paused_since = None
            if self._error is None and self._life.state != lc.STOPPING:
                # Only a stop or the end of the source leads to "stopped" (see lifecycle).
                self._error = ConnectionLostError(
                    f"The session ended without being asked to ({meta.url}); the transcript "
                    "so far is kept."
                )
                meta.error = str(self._error)
                unexpected = self._error
            else:
                unexpected = None
            self._life.to(lc.ERROR if self._error is not None else lc.STOPPED)
            self._finished = True
            self._cv.notify_all()
        if unexpected is not None:
            self._listeners.emit("error", unexpected)
        self._threads[0].join()  # the control thread emits the last statuses, then ends
        self._ended.set()
        self._listeners.close()


TranscriptionSession.__init__.__signature__ = config_signature()  # type: ignore[attr-defined]


@dataclass
class _PendingConfigure:
    """A Deepgram Configure awaiting its answer: the options it would make current."""

    options: dict[str, Any]
    answered: threading.Event = field(default_factory=threading.Event)
    result: ConfigureResult | None = None
