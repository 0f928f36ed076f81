"""The session's sender thread: source -> audio ledger -> socket.

Reads the source, cuts chunks to what the provider accepts, records them in the ledger (and
the WAV recording), sends what is pending (paced for real-time-only providers), KeepAlive
when idle, and the closing messages once the session is stopping. See ``session.py``."""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np

from ..audio.base import chunk_bytes
from ..errors import (
    ConnectError,
    ConnectionLostError,
    LivetxError,
)
from .ledger import BYTES_PER_SECOND
from .timing import (
    MAX_PENDING_S,
    PACING_BURST_S,
    TICK_S,
)

log = logging.getLogger("livetx_widgets.session")


class SenderThread:
    """Mixed into ``TranscriptionSession``: its state is the session's, under ``_cv``."""

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
            self._audio.finish()  # the recording's header; kept audio stays readable

    def _take(self, chunk: bytes) -> None:
        """Put a chunk from the source in the ledger (and the kept audio / the WAV recording).

        Chunks are cut to what the provider accepts per frame here, once, so that the ledger,
        the kept audio, the recording and the provider's audio clock all count exactly the
        bytes sent. A short chunk (a file's last) is padded with silence up to the provider's
        minimum.
        """
        samples = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2")
        if samples.size:
            self._level = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)) / 32768.0)
        min_bytes = chunk_bytes(self._codec.min_chunk_ms)
        max_bytes = chunk_bytes(self._codec.max_chunk_ms)
        pieces = [chunk[i : i + max_bytes] for i in range(0, len(chunk), max_bytes)]
        pieces = [p + bytes(min_bytes - len(p)) if len(p) < min_bytes else p for p in pieces]
        with self._cv:
            for piece in pieces:
                self._ledger.append(piece)
        for piece in pieces:  # only this thread writes: the same order, outside the lock
            self._audio.write(piece)

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
