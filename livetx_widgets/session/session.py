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

States and the moves between them are in ``lifecycle.py``; every piece of shared state is
guarded by one condition variable (``_cv``), and listeners are called with no lock held.
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
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.base import AudioSource, chunk_bytes
from ..audio.resolve import resolve_source
from ..config import resolve as resolve_config
from ..config import signature as config_signature
from ..errors import (
    AuthenticationError,
    CodecError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
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
from .connection import Connection, Opening
from .ledger import BYTES_PER_SECOND, AudioLedger
from .listeners import Listeners
from .metadata import SessionMetadata
from .recorder import Recorder

log = logging.getLogger("livetx_widgets.session")

TICK_S = 0.1  # longest a thread waits before re-checking state it was not notified about
PACING_BURST_S = 0.5  # how far audio may run ahead of the wall clock for realtime_only codecs
#: Close codes and HTTP statuses after which a new connection may work: server-side
#: timeouts and internal errors (Deepgram 1011 NET-0000/NET-0001, AssemblyAI 3005), service
#: restarts and overload (1012, 1013, 5xx).
RETRYABLE_CODES = {1001, 1011, 1012, 1013, 3005, 500, 502, 503, 504, "NET-0000", "NET-0001"}
MAX_LATENCY_SAMPLES = 2000
MAX_PENDING_S = 2.0  # a finite source is not read further ahead of the socket than this
SEND_STALL_S = 10.0  # a send blocked this long means the peer stopped reading: reconnect
TERMINAL_CLOSE_S = 2.0  # after an unrequested terminal message, the close must follow by then
JOIN_GRACE_S = 2.0
#: How much less audio a summary may report than was sent (AssemblyAI rounds to seconds).
SUMMARY_TOLERANCE_S = 1.5  # after an abort, how long stop() waits for the threads to notice
_THREADS = ("livetx-sender", "livetx-receiver", "livetx-control")


class TranscriptionSession:
    """Streams ``source`` to ``provider`` in the background and keeps a live ``Transcript``.

    Keyword arguments (the same for ``LiveTranscriber`` and ``livetx transcribe``; see
    ``livetx_widgets.config.PARAMS`` for each one's default, check and meaning):
    ``provider`` (may be positional), ``model``, ``source`` (``"auto"``, ``"kernel"``,
    ``"file"`` with ``file=``, ``"browser"``, a path, a 16 kHz numpy array or an
    ``AudioSource``), ``device``, ``file``, ``realtime``, ``api_key`` (never shown anywhere),
    ``url``, ``options`` (unknown names raise ``ConfigurationError`` naming the closest),
    ``keyterms``, ``local_engine``, ``local_options``, ``record_to``, ``keepalive_s``,
    ``max_reconnects``, ``replay_buffer_s``, ``connect_timeout``, ``stop_timeout``, ``pace``
    (``None``: real time where the protocol requires it; ``False``: as fast as the socket
    allows, for a local server that does not enforce it) and the listeners: ``on_partial``,
    ``on_final``, ``on_event``, ``on_error`` (receiver thread) and ``on_status`` (control
    thread, in order). A misspelled keyword raises ``TypeError`` naming the closest one.

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
        self._record_to = Path(cfg.record_to) if cfg.record_to else None
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
        self._configure_waiters: deque[tuple[threading.Event, dict[str, Any]]] = deque()
        self._error: LivetxError | None = None
        self._pending_error: LivetxError | None = None
        self._level = 0.0
        self._local_server = None
        self._recorder: Recorder | None = None
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
            if self._record_to is not None:
                self._recorder = Recorder(self._record_to)
        except LivetxError as exc:
            with contextlib.suppress(Exception):
                self._source.stop()
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
        codec = conn.codec if conn is not None else make_codec(
            self._endpoint.protocol, **self._options
        )
        message, changed = _update_message(codec, keyterms, options)  # validates
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
        waiter = threading.Event()
        with self._cv:
            self._configure_waiters.append((waiter, new_options))
        conn.send_text(message)
        if not wait or self._on_own_thread():
            return
        if not waiter.wait(timeout):
            raise ProviderError(
                f"Deepgram did not answer the Configure message within {timeout:g} s; the "
                "change may or may not apply to this stream (it does to a reconnect).",
                None,
                "no answer",
            )
        result = getattr(waiter, "result", None)
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

    # -- control thread -------------------------------------------------------------------
    def _control_loop(self) -> None:
        """Emit status events in order and enforce every deadline. Never blocks on I/O."""
        while True:
            with self._cv:
                statuses = self._life.take_unsent()
                if not statuses:
                    if self._finished:
                        return
                    action = self._due_locked(time.monotonic())
                    if action is None:
                        self._cv.wait(TICK_S)
                        continue
            if statuses:
                for state in statuses:
                    self._listeners.emit("status", state)
                continue
            kind, target, why = action
            if kind == "summary":
                self._fail(self._no_summary_error(self._close_timeout or 0.0))
                self._abort(why)
            elif kind == "session":
                self._stop_timed_out(target)
            else:  # one connection is stuck: drop it; the receiver reconnects
                log.info("dropping the connection: %s", why)
                target.abort()

    def _due_locked(self, now: float) -> tuple[str, Any, str] | None:
        """The deadline that has passed, if any, as (what to abort, connection, why)."""
        if self._aborted:
            return None
        if self._stop_deadline is not None and now >= self._stop_deadline:
            self._stop_deadline = None
            return ("session", self._stop_timeout_s, "the stop timeout passed")
        if self._close_deadline is not None and now >= self._close_deadline:
            self._close_deadline = None
            return ("summary", None, "the provider did not send its closing message in time")
        conn = self._conn
        if conn is None:
            return None
        if self._send_since is not None and now - self._send_since >= SEND_STALL_S:
            self._send_since = None
            return ("connection", conn, f"a send blocked for {SEND_STALL_S:.0f} s")
        if self._terminal_deadline is not None and now >= self._terminal_deadline:
            self._terminal_deadline = None
            return ("connection", conn, "no close followed the provider's terminal message")
        return None

    def _stop_timed_out(self, timeout: float) -> None:
        """The stop's time is up (seen by the caller or the control thread, whichever first)."""
        with self._cv:
            # Connected, but the provider never confirmed the end: say what may be missing.
            cut_short = (
                not self._aborted and self._conn is not None and not self._meta.terminal_message
            )
        if cut_short:
            self._fail(self._no_summary_error(timeout))
        self._abort("the stop timeout passed")

    def _no_summary_error(self, waited: float) -> ProviderError:
        """The stop gave up before the provider confirmed the end with its summary."""
        with self._cv:
            pending_s = (self._ledger.taken - self._ledger.acked) / BYTES_PER_SECOND
        return ProviderError(
            f"{self._codec.name} did not send its closing summary within {waited:g} s; "
            f"results for the last {pending_s:.1f} s of audio may be missing. The transcript "
            "so far is kept (a longer stop timeout waits longer).",
            None,
            "no summary",
        )

    # -- sender thread --------------------------------------------------------------------
    def _send_loop(self) -> None:
        source_open = True
        try:
            while True:
                with self._cv:
                    if self._aborted:
                        break
                    paused, closing = self._paused, self._closing
                    backlogged = self._ledger.pending_bytes > MAX_PENDING_S * BYTES_PER_SECOND
                # A finite source waits while paused or while the socket lags behind; a live
                # one is always drained (audio read while paused is discarded).
                hold = not self._source.live and (paused or backlogged)
                if source_open and not closing and not hold:
                    try:
                        chunk = self._source.read(timeout=TICK_S)
                    except LivetxError as exc:  # e.g. the microphone vanished
                        self._fail(exc)
                        chunk = None
                    if chunk is None:
                        source_open = False
                        self._begin_close(self.stop_timeout)
                    elif chunk and not paused:
                        self._take(chunk)
                else:
                    with self._cv:
                        self._cv.wait(TICK_S)
                self._pump()
        except LivetxError as exc:
            self._fail(exc)
            self._abort(str(exc))
        except Exception as exc:  # a bug must still end the session visibly
            log.exception("sender thread failed")
            self._fail(LivetxError(f"internal error in the sender thread: {exc!r}"))
            self._abort("internal error")
        finally:
            with contextlib.suppress(Exception):
                self._source.stop()
            if self._recorder is not None:
                self._recorder.close()

    def _take(self, chunk: bytes) -> None:
        """Put a chunk from the source in the ledger (and the WAV recording).

        Chunks are cut to what the provider accepts per frame here, once, so that the ledger,
        the recording and the provider's audio clock all count exactly the bytes sent. A short
        chunk (a file's last) is padded with silence up to the provider's minimum.
        """
        samples = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2")
        if samples.size:
            self._level = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)) / 32768.0)
        min_bytes = chunk_bytes(self._codec.min_chunk_ms)
        max_bytes = chunk_bytes(self._codec.max_chunk_ms)
        pieces = [chunk[i : i + max_bytes] for i in range(0, len(chunk), max_bytes)]
        with self._cv:
            for piece in pieces:
                if len(piece) < min_bytes:
                    piece = piece + bytes(min_bytes - len(piece))
                self._ledger.append(piece)
                if self._recorder is not None:
                    self._recorder.write(piece)

    def _pump(self) -> None:
        """Send pending audio, then closing messages or a KeepAlive, on the current connection.

        Every send is announced in ``_send_since`` so that the control thread can drop a
        connection whose peer stopped reading (the send would otherwise block for ever).
        """
        with self._cv:
            conn, gen = self._conn, self._conn_gen
        if conn is None or conn.codec.finished:
            return  # no connection, or one the provider has ended: audio waits for the next
        realtime = conn.codec.realtime_only if self.pace is None else self.pace
        try:
            while True:
                with self._cv:
                    if self._conn_gen != gen or self._aborted:
                        return
                    item = self._ledger.next_pending()
                    if item is None:
                        break
                    if realtime and not self._pace_ok(len(item[1])):
                        break
                    self._ledger.mark_sent(time.monotonic())
                    self._send_since = time.monotonic()
                conn.send_audio(item[1])
                self._sent()
            with self._cv:
                send_close = (
                    self._closing and self._close_sent_gen != gen and not self._ledger.has_pending()
                )
                if send_close:
                    self._close_sent_gen = gen
                    if self._close_deadline is None:
                        self._close_deadline = time.monotonic() + (self._close_timeout or 0.0)
                    self._send_since = time.monotonic()
            if send_close:
                for message in conn.codec.close_messages():
                    conn.send_text(message)
                self._sent()
            elif time.monotonic() - self._last_send >= self.keepalive_s:
                with self._cv:
                    self._send_since = time.monotonic()
                conn.send_text(conn.codec.keepalive())
                self._sent()
                with self._cv:
                    self._meta.keepalives_sent += 1
        except (ConnectionLostError, ConnectError):
            # The receiver sees the same drop and decides whether to reconnect.
            with self._cv:
                self._send_since = None
            return

    def _sent(self) -> None:
        now = time.monotonic()
        with self._cv:
            self._send_since = None
            self._last_send = now

    def _pace_ok(self, n_bytes: int) -> bool:
        """For real-time-only providers: may ``n_bytes`` more go out now? (lock held)"""
        elapsed = time.monotonic() - self._conn_started
        sent_on_conn = self._ledger.sent - self._conn_offset
        return (sent_on_conn + n_bytes) / BYTES_PER_SECOND <= elapsed + PACING_BURST_S

    # -- receiver thread ------------------------------------------------------------------
    def _receive_loop(self) -> None:
        try:
            try:
                self._connect(first=True)
            except ProviderError as exc:
                # A refusal that says "try again" (5xx) gets the reconnect's backoff too; a
                # refused key, a bad option or an unreachable host is reported at once.
                if not self._retryable(exc) or not self._reconnect(exc):
                    if self._error is None:
                        raise
                    return
            while True:
                with self._cv:
                    conn = self._conn
                if conn is None:
                    break
                outcome = self._serve_connection(conn)
                if outcome == "done":
                    break
                if not self._reconnect(outcome):
                    break
        except LivetxError as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("receiver thread failed")
            self._fail(LivetxError(f"internal error in the receiver thread: {exc!r}"))
        finally:
            self._finish()

    def _connect(self, *, first: bool) -> None:
        """Open a connection (abortable by ``_abort``) and make it the current one."""
        if first and self._endpoint.provider == "local" and self._endpoint.url is None:
            self._local_server, url = endpoints.start_local_server(self._endpoint)
            self._endpoint.url = url
        with self._cv:
            opened_with = dict(self._options)
        codec = make_codec(self._endpoint.protocol, **opened_with)
        request = codec.connect_request(self._endpoint.api_key, self._endpoint.url)
        opening = Opening()
        with self._cv:
            self._meta.url = request.safe_url
            if self._aborted:
                raise self._stopped_while_connecting(request.safe_url)
            self._opening = opening
        try:
            conn = Connection.open(codec, request, timeout=self.connect_timeout, opening=opening)
        except LivetxError:
            if opening.aborted:
                raise self._stopped_while_connecting(request.safe_url) from None
            raise
        finally:
            with self._cv:
                self._opening = None
        with self._cv:
            if self._aborted:
                conn.abort()
                raise self._stopped_while_connecting(request.safe_url)
            offset = self._ledger.rewind()
            self._conn = conn
            self._conn_gen += 1
            self._conn_offset = offset
            self._send_since = self._terminal_deadline = None
            # Decoded times land on the session's clock and keys stay unique across connections.
            codec.time_offset = offset / BYTES_PER_SECOND
            codec.key_prefix = f"c{self._conn_gen}:"
            self._conn_started = time.monotonic()
            self._life.connected(self._paused)
            self._cv.notify_all()
        self._catch_up_options(conn, opened_with)
        for event in codec.handshake_events(conn.response_headers):
            self._dispatch(event)

    def _catch_up_options(self, conn: Connection, opened_with: dict[str, Any]) -> None:
        """``update()`` ran while this connection was being opened: send what it changed."""
        with self._cv:
            current = dict(self._options)
        changed = {k: v for k, v in current.items() if opened_with.get(k) != v}
        changed.update({k: [] for k in opened_with if k not in current})
        if not changed:
            return
        terms = changed.pop("keyterm", changed.pop("keyterms_prompt", None))
        try:
            message, _ = _update_message(conn.codec, terms, changed)
            conn.send_text(message)
        except LivetxError as exc:  # a drop: the next connection opens with them anyway
            log.debug("could not send the updated options: %s", exc)

    def _stopped_while_connecting(self, safe_url: str) -> ConnectError:
        with self._cv:
            audio_s = self._ledger.taken / BYTES_PER_SECOND
            connected_before = self._conn_gen > 0
        if connected_before:
            return ConnectError(
                f"Stopped while reconnecting to {safe_url}; the transcript so far is kept, "
                "audio after the drop was not transcribed."
            )
        return ConnectError(
            f"Stopped before the connection to {safe_url} was open ({audio_s:.1f} s of audio "
            "not transcribed). If this keeps happening, the server accepts connections but "
            "does not answer: check the URL, a proxy or the service's status."
        )

    def _serve_connection(self, conn: Connection) -> str | LivetxError:
        """Receive until this connection ends. Returns "done" or the error that ended it."""
        while True:
            try:
                frame = conn.recv()
            except ConnectionLostError as exc:
                if self._aborted:
                    return "done"
                error, self._pending_error = self._pending_error, None
                if error is None and conn.codec.finished and self._terminal_requested(conn):
                    self._acknowledge_all()
                    return "done"  # our summary came, the close frame did not: that will do
                return error or exc
            if frame.text is not None:
                was_finished = conn.codec.finished
                try:
                    events = conn.codec.decode(frame.text)
                except Exception as exc:  # malformed input is a warning: this is a bug
                    log.exception("the %s codec failed on a message", conn.codec.name)
                    return CodecError(
                        f"livetx could not decode a {conn.codec.name} message ({exc!r}); this "
                        "is a bug in livetx-widgets, please report it with the logged "
                        "traceback. The transcript so far is kept."
                    )
                for event in events:
                    self._dispatch(event)
                if conn.codec.finished and not was_finished:
                    # Asked for or not (Deepgram's NET-0001 Metadata, an AssemblyAI
                    # Termination mid-stream), the close that follows decides what it meant.
                    with self._cv:
                        self._terminal_deadline = time.monotonic() + TERMINAL_CLOSE_S
                continue
            # A close frame (or the end of the stream after our own abort).
            if self._aborted:
                return "done"
            error = self._pending_error or conn.codec.close_error(frame.code, frame.reason)
            self._pending_error = None
            if error is not None:
                return error
            if self._terminal_requested(conn) and conn.codec.finished:
                short = self._summary_short_of_audio()
                if short is not None:
                    return short
                self._acknowledge_all()
                return "done"  # the normal end: our closing messages, the summary, a close
            return self._unrequested_end(conn, frame.code)

    def _summary_short_of_audio(self) -> ProviderError | None:
        """The summary says the provider processed clearly less audio than this connection
        sent (it stopped early, whatever its close said): an error, not a normal end."""
        with self._cv:
            processed = self._meta.audio_duration_s
            sent_s = (self._ledger.sent - self._conn_offset) / BYTES_PER_SECOND
        if processed is None or sent_s - processed <= SUMMARY_TOLERANCE_S:
            return None
        return ProviderError(
            f"{self._codec.name} ended the stream having processed {processed:g} s of the "
            f"{sent_s:.1f} s of audio sent on this connection; the rest was not transcribed. "
            "The transcript so far is kept.",
            None,
            "short summary",
        )

    def _acknowledge_all(self) -> None:
        """The provider confirmed the end: everything sent was processed, none to replay."""
        with self._cv:
            self._ledger.ack(self._ledger.taken)

    def _terminal_requested(self, conn: Connection) -> bool:
        """Did this connection get our closing messages (so its end is the one we asked)?"""
        with self._cv:
            return self._close_sent_gen == self._conn_gen and self._conn is conn

    def _unrequested_end(self, conn: Connection, code: int | None) -> LivetxError:
        """A normal close nobody asked for, while the source still had audio: an error."""
        with self._cv:
            pending_s = (self._ledger.taken - self._ledger.acked) / BYTES_PER_SECOND
            summary = conn.codec.finished
            asked = self._close_sent_gen == self._conn_gen
        if asked:
            return ProviderError(
                f"{conn.codec.name} closed the stream (code {code}) without its closing "
                f"summary; results for the last {pending_s:.1f} s of audio may be missing. "
                "The transcript so far is kept.",
                code,
                "no summary",
            )
        what = "its closing summary and a normal close" if summary else "a normal close"
        return ProviderError(
            f"{conn.codec.name} ended the session on its own ({what}, code {code}) before the "
            f"audio had ended; about {pending_s:.1f} s of audio were not transcribed. The "
            "transcript so far is kept. With AssemblyAI, an inactivity_timeout does this.",
            code,
            "unrequested end",
        )

    def _reconnect(self, error: LivetxError) -> bool:
        """Reconnect after ``error`` if it is worth it; False ends the session with it.

        ``max_reconnects`` bounds the attempts in a row that make no progress: a connection
        that opens but drops again before any new audio was acknowledged counts as a failed
        attempt, so a link that keeps dropping cannot loop forever, while a long session
        with an occasional drop reconnects every time.
        """
        with self._cv:
            old = self._conn
            self._conn = None
            self._terminal_deadline = self._send_since = None
        if old is not None:
            old.abort()
        if not self._retryable(error) or self.max_reconnects <= 0:
            self._fail(error)
            return False
        with self._cv:
            if self._life.state != lc.STOPPING:
                self._life.to(lc.RECONNECTING)
            self._cv.notify_all()
        last: LivetxError = error
        while True:
            with self._cv:
                if self._ledger.acked > self._acked_at_reconnect:
                    self._failed_attempts = 0
                self._acked_at_reconnect = self._ledger.acked
                if self._failed_attempts >= self.max_reconnects:
                    break
                self._failed_attempts += 1
                delay = min(0.25 * 2 ** (self._failed_attempts - 1), 4.0)
                self._cv.wait_for(lambda: self._aborted, timeout=delay)  # stop() wakes it
                if self._aborted:
                    self._fail(error)  # stopping while the link is down: say why it ended
                    return False
            try:
                self._connect(first=False)
            except LivetxError as exc:
                if self._aborted:
                    self._fail(error)
                    return False
                if not self._retryable(exc, reconnecting=True):
                    self._fail(exc)
                    return False
                last = exc  # unreachable, overloaded or rate-limited: try again later
                continue
            # The replay re-creates the dead connection's partials; until a new connection
            # is up they stay, so that giving up still keeps them (see commit_partials).
            self.transcript.clear_partials()
            with self._cv:
                self._meta.reconnects += 1
                return self._conn is not None
        self._fail(
            ConnectionLostError(
                f"Lost the connection to {self._meta.url}; {self.max_reconnects} reconnection "
                f"attempts in a row made no progress (last: {last}). The transcript so far "
                "is kept.",
                getattr(error, "code", None),
                getattr(error, "reason", None),
            )
        )
        return False

    @staticmethod
    def _retryable(error: LivetxError, *, reconnecting: bool = False) -> bool:
        """Is a new connection worth trying after ``error``?

        A refused key never is. While reconnecting, a 429 (too many concurrent streams) is
        worth waiting out with the backoff too: the stream that just dropped may still count
        against the limit on the provider's side. On the first connection it is the user's
        limit and is reported at once.
        """
        if isinstance(error, AuthenticationError):
            return False
        if isinstance(error, ConnectionLostError | ConnectError):
            return True
        if not isinstance(error, ProviderError):
            return False
        return error.code in RETRYABLE_CODES or (reconnecting and error.code == 429)

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
            waiter, new_options = self._configure_waiters.popleft()
            if event.ok:
                self._options = new_options
            else:
                self._meta.warnings += 1
                self._meta.last_warning = event.reason
        if not event.ok:
            log.warning("%s", event.reason)
        waiter.result = event  # type: ignore[attr-defined]
        waiter.set()

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
        end_offset = int(event.end * BYTES_PER_SECOND)
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


def _update_message(
    codec: Any, keyterms: Any, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The protocol's live-update message and the connection options it changes."""
    if codec.name == "assemblyai":
        params = dict(options)
        if keyterms is not None:
            params["keyterms_prompt"] = list(keyterms)
        return codec.update_configuration(**params), params
    message = codec.configure(
        keyterms=None if keyterms is None else list(keyterms), **options
    )
    changed: dict[str, Any] = dict(options)
    if keyterms is not None:
        changed["keyterm"] = list(keyterms)
    return message, changed
