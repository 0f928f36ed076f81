"""What files and arrays share: chunking, real-time pacing without drift, and stop.

A finite source either plays "as if live" (``realtime=True``: each chunk is released when the
audio clock reaches its end, like a microphone would deliver it) or as fast as the reader
asks (``realtime=False``: the session paces to what the provider accepts). Pacing computes
every deadline from one monotonic start and the number of samples already returned, so sleep
overshoot never accumulates into drift over an hour-long file, and it waits on an
``Event`` so that ``stop()`` from another thread ends the wait at once.

A source whose input ended early (a truncated file) returns everything it could read, then
raises its error once from the ``read`` that would have returned ``None``: the session sends
the audio first, so the transcript of what the file holds is kept, and ends with that error.
"""

from __future__ import annotations

import threading
import time

from ..errors import ConfigurationError, LivetxError
from .base import SAMPLE_RATE, SAMPLE_WIDTH, AudioSource, chunk_bytes

_BYTES_PER_S = SAMPLE_RATE * SAMPLE_WIDTH


def check_chunk_ms(chunk_ms) -> int:
    """Validate a chunk duration: a whole number of milliseconds from 10 to 1000."""
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) or not 10 <= chunk_ms <= 1000:
        raise ConfigurationError(
            f"chunk_ms must be a whole number of milliseconds from 10 to 1000, got {chunk_ms!r}"
        )
    return chunk_ms


class FiniteSource(AudioSource):
    """Base of sources with a known end. Subclasses implement ``_open``, ``_pcm``, ``_close``.

    ``_pcm(n)`` returns up to ``n`` bytes of 16 kHz mono s16le (fewer only at the end, ``b""``
    once exhausted). The real-time clock starts at the first ``read``, not at ``start``, so
    the time spent connecting to a provider does not turn into a burst of queued audio.
    """

    live = False

    def __init__(self, *, realtime: bool, chunk_ms: int) -> None:
        super().__init__()
        self.realtime = bool(realtime)
        self.chunk_ms = check_chunk_ms(chunk_ms)
        self._chunk_bytes = chunk_bytes(self.chunk_ms)
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # guards the underlying reader against a concurrent stop
        self._started = False
        self._exhausted = False
        self._pending = b""  # the next chunk, read but not yet due
        self._t0: float | None = None
        self._returned = 0  # bytes handed out since start

    # -- subclass hooks -------------------------------------------------------------------
    def _open(self) -> None:
        """Prepare to produce audio from the beginning."""

    def _pcm(self, n_bytes: int) -> bytes:
        raise NotImplementedError

    def _close(self) -> None:
        """Release what ``_open`` acquired. Called once per ``_open``, under the lock."""

    def _end_error(self) -> LivetxError | None:
        """An error to raise once, after the last chunk (a file that ended early says so)."""
        return None

    # -- AudioSource ----------------------------------------------------------------------
    def start(self) -> None:
        """Open from the beginning. A no-op while running; after ``stop()`` it starts over."""
        with self._lock:
            if self._started and not self._stopped.is_set():
                return
            self._open()
            self._started = True
            self._exhausted = False
            self._pending = b""
            self._t0 = None
            self._returned = 0
            self.position_s = 0.0
            self._stopped.clear()

    def read(self, timeout: float | None = None) -> bytes | None:
        if not self._started:
            raise ConfigurationError(
                f"{type(self).__name__}.read() called before start(); "
                "call start() first or use the source as a context manager"
            )
        if self._stopped.is_set():
            return None
        if not self._pending:
            with self._lock:
                if self._stopped.is_set() or self._exhausted:
                    return None
                self._pending = self._pcm(self._chunk_bytes)
                if not self._pending:
                    self._exhausted = True
                    self._close()
                    error = self._end_error()
                    if error is not None:
                        raise error
                    return None
        if self.realtime:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            deadline = self._t0 + (self._returned + len(self._pending)) / _BYTES_PER_S
            remaining = deadline - now
            if remaining > 0:
                if timeout is not None and timeout < remaining:
                    self._stopped.wait(max(0.0, timeout))
                    return None if self._stopped.is_set() else b""
                if self._stopped.wait(remaining):
                    return None
        chunk, self._pending = self._pending, b""
        self._returned += len(chunk)
        self.position_s = self._returned / _BYTES_PER_S
        return chunk

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            if self._started and not self._exhausted:
                self._exhausted = True
                self._close()
