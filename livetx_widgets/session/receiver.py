"""The session's receiver thread: connect, receive, decode, reconnect.

It owns the connection: opens it (abortably), decodes each frame with the codec, lets the
close code decide what a terminal message meant, and reconnects with backoff, replaying the
unacknowledged audio on one continuous clock. It ends the session. See ``session.py``."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..audio.base import chunk_bytes
from ..errors import (
    AuthenticationError,
    CodecError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
)
from ..providers import make_codec
from . import endpoints
from . import lifecycle as lc
from .connection import Connection, Opening
from .ledger import BYTES_PER_SECOND
from .timing import (
    RETRYABLE_CODES,
    SUMMARY_TOLERANCE_S,
    TERMINAL_CLOSE_S,
)
from .updates import update_message

log = logging.getLogger("livetx_widgets.session")


class ReceiverThread:
    """Mixed into ``TranscriptionSession``: its state is the session's, under ``_cv``."""

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
            offset = self._ledger.rewind(
                chunk_bytes(codec.min_chunk_ms), chunk_bytes(codec.max_chunk_ms)
            )
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
            message, _ = update_message(conn.codec, terms, changed)
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
