"""TranscriptionSession: stream an audio source to a provider in the background.

Two threads, both owned and joined by the session:

* the **sender** reads the source, records each chunk in the audio ledger and sends what the
  ledger holds as pending (paced for providers that refuse faster-than-real-time audio),
  sends KeepAlive when nothing else went out for a while, and, once the session is closing,
  sends the provider's closing messages on whichever connection is current. It also enforces
  the stop deadline, because it is the thread that ticks.
* the **receiver** owns the connection: it connects, blocks on ``recv``, decodes frames with
  the provider codec, applies events to the transcript and calls listeners. When a connection
  drops it reconnects with backoff, rewinds the ledger to the last acknowledged audio and
  shifts the new connection's timestamps by the audio already covered, so the transcript's
  clock stays continuous. When the session ends it joins the sender.

``stop()`` / ``wait()`` / ``__exit__`` join the receiver. Shared state is guarded by one
condition variable (``_cv``); listeners are called with no lock held.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.base import AudioSource, chunk_bytes
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
)
from ..events import (
    Event,
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    SessionEnded,
    SessionStarted,
)
from ..providers import make_codec
from ..transcript import Segment, Transcript
from . import endpoints
from .connection import Connection
from .ledger import BYTES_PER_SECOND, AudioLedger
from .listeners import Listeners
from .metadata import SessionMetadata
from .recorder import Recorder

log = logging.getLogger("livetx_widgets.session")

TICK_S = 0.1  # longest a thread waits before re-checking state it was not notified about
PACING_BURST_S = 0.5  # how far audio may run ahead of the wall clock for realtime_only codecs
RETRYABLE_CODES = {1011, 1012, 1013, 3005, 500, 502, 503, 504}
MAX_LATENCY_SAMPLES = 2000
MAX_PENDING_S = 2.0  # a finite source is not read further ahead of the socket than this


def _as_source(source: Any) -> AudioSource:
    """Accept an AudioSource, a WAV path, or a numpy array (16 kHz)."""
    from .. import audio

    if source is None:
        return audio.Microphone()
    if isinstance(source, AudioSource):
        return source
    if isinstance(source, str | Path):
        return audio.WavFile(source)
    if isinstance(source, np.ndarray):
        return audio.ArraySource(source)
    raise ConfigurationError(
        f"source must be an AudioSource (Microphone, WavFile, ArraySource, BrowserMicrophone), "
        f"a WAV file path or a numpy array, not {type(source).__name__}."
    )


class TranscriptionSession:
    """Streams ``source`` to ``provider`` in the background and keeps a live ``Transcript``.

    Args:
        provider: ``"deepgram"``, ``"assemblyai"``, ``"local"`` (offline engine) or ``"auto"``
            (the provider whose key is in the environment, else local).
        source: an ``AudioSource``; a WAV path; a 16 kHz numpy array; ``None`` = ``Microphone()``.
        api_key: overrides ``DEEPGRAM_API_KEY`` / ``ASSEMBLYAI_API_KEY``. Never shown anywhere.
        url: another endpoint (``ws://host:port`` gets the provider's path appended).
        options: provider connection options, e.g. ``{"diarize": True}``; unknown names raise
            ``ConfigurationError`` naming the closest valid one.
        on_partial / on_final / on_event / on_error / on_status: listeners, called from the
            receiver thread with a ``PartialTranscript``, a ``Segment``, any event, an
            exception, and the new state string respectively.
        record_to: a WAV path that receives exactly the audio sent.
        keepalive_s: send KeepAlive when nothing went out for this long.
        max_reconnects: reconnect attempts after a drop (0 disables reconnecting).
        replay_buffer_s: how much unacknowledged audio is kept for replay after a drop.
        connect_timeout: seconds allowed for each connection attempt.
        stop_timeout: default seconds ``stop()`` and a finite source's end wait for the
            provider's closing message before closing anyway.
    """

    def __init__(
        self,
        provider: str = "auto",
        *,
        source: Any = None,
        api_key: str | None = None,
        url: str | None = None,
        options: Mapping[str, Any] | None = None,
        on_partial: Callable[[PartialTranscript], Any] | None = None,
        on_final: Callable[[Segment], Any] | None = None,
        on_event: Callable[[Event], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        on_status: Callable[[str], Any] | None = None,
        record_to: str | Path | None = None,
        keepalive_s: float = 4.0,
        max_reconnects: int = 5,
        replay_buffer_s: float = 120.0,
        connect_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        local_engine: str = "whisper",
        local_options: Mapping[str, Any] | None = None,
    ):
        self._endpoint = endpoints.resolve(
            provider,
            api_key=api_key,
            url=url,
            local_engine=local_engine,
            local_options=dict(local_options or {}),
        )
        self._options = dict(options or {})
        self._codec = make_codec(self._endpoint.protocol, **self._options)  # validates early
        self._source = _as_source(source)
        self._record_to = Path(record_to) if record_to else None
        self.keepalive_s = keepalive_s
        self.max_reconnects = max_reconnects
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout

        self.transcript = Transcript(provider=self._endpoint.provider)
        self._listeners = Listeners()
        for kind, handler in (
            ("partial", on_partial),
            ("final", on_final),
            ("event", on_event),
            ("error", on_error),
            ("status", on_status),
        ):
            if handler is not None:
                self._listeners.add(kind, handler)

        self._cv = threading.Condition()
        self._meta = SessionMetadata(
            provider=self._endpoint.provider,
            model=endpoints.model_label(self._endpoint, self._codec.model),
            params=dict(self._codec.params),
        )
        self._ledger = AudioLedger(replay_buffer_s)
        self._conn: Connection | None = None
        self._conn_gen = 0
        self._failed_attempts = 0  # reconnection attempts in a row without progress
        self._acked_at_reconnect = 0
        self._conn_offset = 0  # ledger offset where the current connection's clock starts
        self._conn_started = 0.0  # monotonic time the current connection opened
        self._close_sent_gen = -1  # connection generation that got the closing messages
        self._closing = False
        self._close_timeout: float | None = None
        self._deadline: float | None = None  # set when the closing messages are sent
        self._aborted = False
        self._paused = False
        self._paused_since: float | None = None
        self._last_send = 0.0
        self._ended = threading.Event()
        self._started = False
        self._error: LivetxError | None = None
        self._pending_error: LivetxError | None = None
        self._level = 0.0
        self._local_server = None
        self._recorder: Recorder | None = None
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._t0_mono = 0.0

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
            meta.audio_sent_s = self._ledger.sent / BYTES_PER_SECOND
            meta.dropped_audio_s = self._ledger.dropped_bytes / BYTES_PER_SECOND
            if meta.audio_duration_s is None and self._ended.is_set():
                meta.audio_duration_s = meta.audio_sent_s
            if self._paused_since is not None:
                meta.paused_s += time.monotonic() - self._paused_since
        return meta

    @property
    def state(self) -> str:
        return self._meta.state

    @property
    def running(self) -> bool:
        return self._started and not self._ended.is_set()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def level(self) -> float:
        """RMS level of the last chunk read, 0..1 (for a level meter)."""
        return self._level

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
            if self._started:
                raise ConfigurationError(
                    "This session was already started; a session runs once. "
                    "Create a new TranscriptionSession to record again."
                )
            self._started = True
        self._t0_mono = time.monotonic()
        self._meta.started_at = time.time()
        try:
            self._source.start()
            if self._record_to is not None:
                self._recorder = Recorder(self._record_to)
        except LivetxError as exc:
            self._error = exc
            self._meta.error = str(exc)
            self._set_state("error")
            self._ended.set()
            self._listeners.close()
            raise
        self._set_state("connecting")
        self._sender = threading.Thread(target=self._send_loop, name="livetx-sender")
        self._receiver = threading.Thread(target=self._receive_loop, name="livetx-receiver")
        self._sender.start()
        self._receiver.start()  # last: it joins the sender when the session ends
        return self

    def pause(self) -> None:
        """Stop sending audio without closing the session (KeepAlive keeps it open)."""
        with self._cv:
            if not self._paused:
                self._paused = True
                self._paused_since = time.monotonic()
                self._cv.notify_all()
        self._set_state("paused")

    def resume(self) -> None:
        with self._cv:
            if self._paused:
                self._paused = False
                if self._paused_since is not None:
                    self._meta.paused_s += time.monotonic() - self._paused_since
                self._paused_since = None
                self._cv.notify_all()
        if self.running and not self._closing:
            self._set_state("live")

    def finalize(self) -> None:
        """Ask the provider to commit what it has heard so far (Finalize / ForceEndpoint)."""
        with self._cv:
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(LivetxError):
                conn.send_text(conn.codec.finalize())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session has ended; True if it has. Does not raise its error."""
        if not self._started:
            return True
        ended = self._ended.wait(timeout)
        if ended and self._receiver is not None:
            self._receiver.join(timeout)
        return ended

    def stop(self, timeout: float | None = None) -> Transcript:
        """End the session gracefully and return the transcript. Idempotent.

        Sends the provider's closing messages (Deepgram Finalize + CloseStream, AssemblyAI
        Terminate), waits up to ``timeout`` seconds for its closing summary, then closes,
        joins every thread and releases the source. Never raises for remote faults: they
        are in ``error``; everything received is kept.
        """
        timeout = self.stop_timeout if timeout is None else timeout
        if not self._started:
            with contextlib.suppress(Exception):
                self._source.stop()
            return self.transcript
        self.request_stop(timeout)
        # Flushing audio already taken may take up to MAX_PENDING_S (paced) before the
        # closing messages go out and ``timeout`` starts; past that, stop waiting.
        if not self._ended.wait(timeout + MAX_PENDING_S + 1.0):
            self._abort("stop() timed out")
            self._ended.wait(2.0)
        if self._receiver is not None:
            self._receiver.join(5.0)
        return self.transcript

    def request_stop(self, timeout: float | None = None) -> None:
        """Begin the graceful stop and return at once (safe from a signal handler).

        ``wait()`` or ``stop()`` then waits for it to complete.
        """
        if not self._started:
            return
        self._begin_close(self.stop_timeout if timeout is None else timeout)
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
    def _set_state(self, state: str) -> None:
        with self._cv:
            if self._meta.state == state:
                return
            self._meta.state = state
            self._cv.notify_all()
        self._listeners.emit("status", state)

    def _begin_close(self, timeout: float) -> None:
        """Start the graceful end: flush pending audio, then send the closing messages.

        ``timeout`` counts from the moment the closing messages go out (see ``_pump``): it
        bounds the wait for the provider's summary, not the flush of audio already taken.
        """
        with self._cv:
            if self._ended.is_set():
                return
            if self._close_timeout is None or timeout < self._close_timeout:
                self._close_timeout = timeout
            self._closing = True
            self._cv.notify_all()
        self._set_state("stopping")

    def _abort(self, why: str) -> None:
        """Give up waiting: drop the connection so the receiver ends now."""
        log.debug("aborting session: %s", why)
        with self._cv:
            self._aborted = True
            conn = self._conn
            self._cv.notify_all()
        if conn is not None:
            conn.abort()

    # -- sender thread --------------------------------------------------------------------
    def _send_loop(self) -> None:
        source_open = True
        try:
            while True:
                with self._cv:
                    if self._aborted:
                        break
                    paused, closing, deadline = self._paused, self._closing, self._deadline
                    backlogged = self._ledger.pending_bytes > MAX_PENDING_S * BYTES_PER_SECOND
                if closing and deadline is not None and time.monotonic() > deadline:
                    self._abort("the provider did not send its closing message in time")
                    break
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
        """Send pending audio, then closing messages or a KeepAlive, on the current connection."""
        with self._cv:
            conn, gen = self._conn, self._conn_gen
        if conn is None:
            return
        realtime = conn.codec.realtime_only
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
                conn.send_audio(item[1])
                self._last_send = time.monotonic()
            with self._cv:
                send_close = (
                    self._closing and self._close_sent_gen != gen and not self._ledger.has_pending()
                )
                if send_close:
                    self._close_sent_gen = gen
                    if self._deadline is None:
                        self._deadline = time.monotonic() + (self._close_timeout or 0.0)
            if send_close:
                for message in conn.codec.close_messages():
                    conn.send_text(message)
                self._last_send = time.monotonic()
            elif time.monotonic() - self._last_send >= self.keepalive_s:
                conn.send_text(conn.codec.keepalive())
                self._last_send = time.monotonic()
                with self._cv:
                    self._meta.keepalives_sent += 1
        except (ConnectionLostError, ConnectError):
            # The receiver sees the same drop and decides whether to reconnect.
            return

    def _pace_ok(self, n_bytes: int) -> bool:
        """For real-time-only providers: may ``n_bytes`` more go out now? (lock held)"""
        elapsed = time.monotonic() - self._conn_started
        sent_on_conn = self._ledger.sent - self._conn_offset
        return (sent_on_conn + n_bytes) / BYTES_PER_SECOND <= elapsed + PACING_BURST_S

    # -- receiver thread ------------------------------------------------------------------
    def _receive_loop(self) -> None:
        try:
            self._connect(first=True)
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
        if first and self._endpoint.provider == "local" and self._endpoint.url is None:
            self._local_server, url = endpoints.start_local_server(self._endpoint)
            self._endpoint.url = url
        codec = make_codec(self._endpoint.protocol, **self._options)
        request = codec.connect_request(self._endpoint.api_key, self._endpoint.url)
        with self._cv:
            self._meta.url = request.safe_url
        conn = Connection.open(codec, request, timeout=self.connect_timeout)
        with self._cv:
            if self._aborted or self._ended.is_set():
                conn.abort()
                return
            offset = self._ledger.rewind()
            self._conn = conn
            self._conn_gen += 1
            self._conn_offset = offset
            # Decoded times land on the session's clock and keys stay unique across connections.
            codec.time_offset = offset / BYTES_PER_SECOND
            codec.key_prefix = f"c{self._conn_gen}:"
            self._conn_started = time.monotonic()
            self._cv.notify_all()
        for event in codec.handshake_events(conn.response_headers):
            self._dispatch(event)
        self._set_state("stopping" if self._closing else ("paused" if self._paused else "live"))

    def _serve_connection(self, conn: Connection) -> str | LivetxError:
        """Receive until this connection ends. Returns "done" or the error that ended it."""
        while True:
            try:
                frame = conn.recv()
            except ConnectionLostError as exc:
                if self._aborted:
                    return "done"
                error, self._pending_error = self._pending_error, None
                return error or exc
            if frame.text is not None:
                for event in conn.codec.decode(frame.text):
                    self._dispatch(event)
                if conn.codec.finished:
                    with self._cv:
                        self._meta.terminal_message = True
                    conn.close()
                    return "done"
                continue
            # A close frame (or the end of the stream after our own abort).
            if self._aborted:
                return "done"
            error = self._pending_error or conn.codec.close_error(frame.code, frame.reason)
            self._pending_error = None
            if error is None:
                return "done"  # a normal close: the provider ended the session
            return error

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
        if old is not None:
            old.abort()
        if not self._retryable(error) or self.max_reconnects <= 0:
            self._fail(error)
            return False
        self._set_state("reconnecting")
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
            except (ConnectError, ConnectionLostError) as exc:
                last = exc
                continue
            except LivetxError as exc:
                self._fail(exc)
                return False
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
    def _retryable(error: LivetxError) -> bool:
        if isinstance(error, AuthenticationError):
            return False
        if isinstance(error, ConnectionLostError | ConnectError):
            return True
        return isinstance(error, ProviderError) and error.code in RETRYABLE_CODES

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
        elif isinstance(event, SessionEnded):
            with self._cv:
                self._ledger.ack(self._ledger.taken)
                meta = self._meta
                meta.audio_duration_s = event.audio_duration_s
                meta.session_duration_s = event.session_duration_s
                meta.request_id = meta.request_id or event.request_id
                meta.raw["summary"] = event.raw
        elif isinstance(event, ProviderErrorEvent) and event.fatal:
            with self._cv:
                conn = self._conn
            if conn is not None:
                self._pending_error = conn.codec.error_from_event(event)
        self._listeners.emit("event", event)

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
        """Receiver's last act: close the socket, join the sender, release everything."""
        with self._cv:
            conn, self._conn = self._conn, None
            self._closing = True
            self._aborted = True
            self._cv.notify_all()
        if conn is not None:
            conn.close()
        with contextlib.suppress(Exception):
            self._source.stop()
        if self._sender is not None and self._sender is not threading.current_thread():
            self._sender.join()
        if self._local_server is not None:
            with contextlib.suppress(Exception):
                self._local_server.close()
        self.transcript.commit_partials()
        with self._cv:
            self._meta.ended_at = time.time()
            if self._meta.session_duration_s is None:
                self._meta.session_duration_s = time.monotonic() - self._t0_mono
            if self._paused_since is not None:
                self._meta.paused_s += time.monotonic() - self._paused_since
                self._paused_since = None
        self._set_state("error" if self._error is not None else "stopped")
        self._ended.set()
        self._listeners.close()
