"""``QueueSource``: audio pushed in by a producer (any thread, any chunk size) read as chunks.

This is the meeting point between code that *receives* audio on its own schedule (the
widget's browser microphone, a network stream, a test) and the session's sender thread,
which *reads* fixed ~50 ms chunks. ``push`` never blocks the producer; ``read`` re-chunks.

The project rule is to lose no audio, so the queue is unbounded in practice: the bound
(``max_backlog_s``, ten minutes by default) exists only so that a consumer that died cannot
exhaust memory. Audio pushed beyond it is counted in ``dropped_s`` rather than silently lost.
The newest audio is the part dropped, so what is queued stays one continuous stretch.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..errors import ConfigurationError
from .base import SAMPLE_RATE, SAMPLE_WIDTH, AudioSource, chunk_bytes
from .finite import check_chunk_ms
from .resampler import Resampler, check_rate

_BYTES_PER_S = SAMPLE_RATE * SAMPLE_WIDTH


class QueueSource(AudioSource):
    """A thread-safe queue of audio with the ``AudioSource`` interface (a live source).

    Args:
        sample_rate: rate of pushed audio when ``push`` is not told otherwise; anything but
            16 kHz is resampled (statefully, so chunk boundaries leave no trace).
        chunk_ms: duration of the chunks ``read`` returns.
        max_backlog_s: most seconds of unread audio kept; see ``dropped_s``.

    Producer side: ``push(data, sample_rate=None)`` with s16le mono ``bytes`` or a numpy
    array (float -1..1 or int16, 1-D or ``(n, channels)``), then ``end()`` when there is no
    more; after ``end()`` (or ``stop()``) pushes are ignored. Audio pushed before ``start()``
    is kept. Consumer side: ``read(timeout)`` returns full chunks, ``b""`` when a full chunk
    did not arrive in time, the last partial chunk after ``end()``, then ``None``.
    """

    live = True
    realtime = True

    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        chunk_ms: int = 50,
        max_backlog_s: float = 600.0,
    ) -> None:
        super().__init__()
        self.input_rate = check_rate("sample_rate", sample_rate)
        self.chunk_ms = check_chunk_ms(chunk_ms)
        if not isinstance(max_backlog_s, (int, float)) or not max_backlog_s > 0:
            raise ConfigurationError(
                f"max_backlog_s must be a positive number of seconds, got {max_backlog_s!r}"
            )
        self.max_backlog_s = float(max_backlog_s)
        self._chunk_bytes = chunk_bytes(self.chunk_ms)
        self._max_bytes = int(self.max_backlog_s * _BYTES_PER_S) // SAMPLE_WIDTH * SAMPLE_WIDTH
        self._cond = threading.Condition()  # guards the buffer and the flags below
        self._push_lock = threading.Lock()  # serializes producers (the resampler has state)
        self._reset()

    def _reset(self) -> None:
        self._buf = bytearray()  # 16 kHz mono s16le, not yet read
        self._carry = b""  # odd trailing byte of a bytes push
        self._resampler: Resampler | None = None
        self._started = False
        self._ended = False
        self._stopped = False
        self._dropped_bytes = 0
        self._pushed_bytes = 0
        self._returned = 0
        self.position_s = 0.0

    # -- producer side ----------------------------------------------------------------------
    def push(self, data, sample_rate: int | None = None) -> None:
        """Queue audio; returns at once. Thread-safe; ignored after ``end()``/``stop()``."""
        rate = self.input_rate if sample_rate is None else check_rate("sample_rate", sample_rate)
        with self._push_lock:
            if self._ended or self._stopped:
                return
            pcm = self._convert(data, rate)
            if not pcm:
                return
            with self._cond:
                if self._ended or self._stopped:
                    return
                self._pushed_bytes += len(pcm)
                room = self._max_bytes - len(self._buf)
                if len(pcm) > room:
                    self._dropped_bytes += len(pcm) - max(room, 0)
                    pcm = pcm[: max(room, 0)]
                self._buf += pcm
                self._cond.notify_all()

    def _convert(self, data, rate: int) -> bytes:
        """``data`` as 16 kHz mono s16le; called with the push lock held."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = self._carry + bytes(data)
            cut = len(raw) - len(raw) % SAMPLE_WIDTH
            raw, self._carry = raw[:cut], raw[cut:]
            samples = np.frombuffer(raw, "<i2")
        elif isinstance(data, np.ndarray):
            samples = data
        else:
            raise ConfigurationError(
                f"push() takes s16le bytes or a numpy array, got {type(data).__name__}"
            )
        if self._resampler is not None and self._resampler.in_rate != rate:
            flushed = self._resampler.flush().tobytes()  # the rate changed mid-stream
            self._resampler = None
        else:
            flushed = b""
        if (
            rate == SAMPLE_RATE
            and self._resampler is None
            and samples.dtype == np.dtype("<i2")
            and samples.ndim == 1
        ):
            return flushed + samples.tobytes()
        if self._resampler is None:
            self._resampler = Resampler(rate, SAMPLE_RATE)
        return flushed + self._resampler.process(samples).tobytes()

    def end(self) -> None:
        """No more audio: ``read`` drains what is queued, then returns ``None``."""
        with self._push_lock:
            tail = b""
            if self._resampler is not None and not self._ended:
                tail = self._resampler.flush().tobytes()
            with self._cond:
                if not self._ended and not self._stopped:
                    self._pushed_bytes += len(tail)
                    self._buf += tail
                self._ended = True
                self._cond.notify_all()

    # -- consumer side ----------------------------------------------------------------------
    @property
    def backlog_s(self) -> float:
        """Seconds of audio queued and not yet read."""
        with self._cond:
            return len(self._buf) / _BYTES_PER_S

    @property
    def dropped_s(self) -> float:
        """Seconds of pushed audio discarded because the backlog exceeded ``max_backlog_s``."""
        with self._cond:
            return self._dropped_bytes / _BYTES_PER_S

    @property
    def pushed_s(self) -> float:
        """Seconds of 16 kHz audio accepted so far (including any dropped)."""
        with self._cond:
            return self._pushed_bytes / _BYTES_PER_S

    def stats(self) -> dict[str, float]:
        """``dropped_s`` (the session adds it to ``metadata.dropped_audio_s``), ``backlog_s``
        and ``pushed_s``."""
        with self._cond:
            return {
                "pushed_s": round(self._pushed_bytes / _BYTES_PER_S, 3),
                "backlog_s": round(len(self._buf) / _BYTES_PER_S, 3),
                "dropped_s": round(self._dropped_bytes / _BYTES_PER_S, 3),
            }

    def start(self) -> None:
        """Begin reading. Keeps audio pushed before it; after ``stop()`` starts empty."""
        with self._push_lock, self._cond:
            if self._stopped:
                self._reset()
            self._started = True

    def read(self, timeout: float | None = None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            if not self._started and not self._stopped:
                raise ConfigurationError(
                    f"{type(self).__name__}.read() called before start(); "
                    "call start() first or use the source as a context manager"
                )
            while True:  # bounded by the deadline, or by stop()/end() when timeout is None
                if self._stopped:
                    return None
                n = self._chunk_bytes
                if len(self._buf) < n and self._ended:
                    n = len(self._buf)
                    if n == 0:
                        return None
                if len(self._buf) >= n:
                    chunk = bytes(self._buf[:n])
                    del self._buf[:n]  # O(1) at the front of a bytearray
                    self._returned += n
                    self.position_s = self._returned / _BYTES_PER_S
                    return chunk
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return b""
                    self._cond.wait(remaining)

    def stop(self) -> None:
        """Stop: pending and future reads return ``None``, pushes are ignored."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
