"""``BrowserMicrophone``: the microphone of the browser showing the notebook.

On a remote kernel (JupyterHub, Colab, a container) the kernel's machine has no microphone;
the user's browser does. The widget's front end captures it with ``getUserMedia`` and an
AudioWorklet, converts it to 16 kHz mono s16le in the page and sends it to the kernel in
numbered chunks (~100 ms), where the widget calls ``receive`` on this source.

Why numbered chunks: the page and the kernel are joined by a message channel that can stall
(a running cell holds every widget message back until it ends, then they arrive as a burst)
and, in principle, lose or repeat a message (a reconnecting page). The design goal is to lose
no audio and keep the transcript's clock equal to the capture clock:

* every chunk carries ``seq`` (0, 1, 2, ... per capture) and ``offset``, the index of its
  first sample in the capture stream (16 kHz);
* a chunk whose ``offset`` lies past the end of what was received means audio went missing:
  the hole is filled with silence of exactly that length, so every later sample keeps its
  place on the capture clock (the transcript's times stay right), and the hole is counted
  (``gaps``, ``gap_s``);
* a chunk already received (``seq`` not above the last) is dropped and counted
  (``duplicates``); a chunk that overlaps what was received is trimmed to the new part;
* audio that arrives late in a burst still lands at its own offset, so its timestamps are the
  ones it was spoken at. ``timeline`` keeps (stream second, capture time, arrival time) per
  chunk, bounded, so ``captured_at(t)`` maps a transcript time back to the wall clock of the
  browser, and ``stats()`` says how late the latest burst was.

Everything else (re-chunking for the session, ``backlog_s``, the ten-minute memory bound and
``dropped_s``) is ``QueueSource``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from typing import Any

from ..errors import AudioDeviceError, ConfigurationError
from .base import SAMPLE_RATE, SAMPLE_WIDTH
from .queued import QueueSource

#: Chunks remembered in ``timeline`` (one hour of 100 ms chunks): bounded memory.
TIMELINE_CHUNKS = 36_000


class BrowserMicrophone(QueueSource):
    """The audio the widget's browser front end sends (a live ``QueueSource``).

    Producer side (the widget, on the kernel's thread): ``receive(pcm, seq=..., offset=...)``
    for each chunk of 16 kHz mono s16le; ``end()`` when the page stopped capturing (what is
    queued is still read); ``fail(message)`` when the page's capture broke, which ends the
    session with an ``AudioDeviceError`` carrying that message. Plain ``push`` still works
    for audio without sequence numbers.

    ``backlog_s`` is what the widget shows when the kernel falls behind the browser;
    ``stats()`` has the counters the widget and ``metadata.raw["browser"]`` report.
    """

    def __init__(self, *, chunk_ms: int = 50, max_backlog_s: float = 600.0) -> None:
        self._seq_lock = threading.Lock()
        super().__init__(sample_rate=SAMPLE_RATE, chunk_ms=chunk_ms, max_backlog_s=max_backlog_s)

    def _reset(self) -> None:
        # Called by QueueSource with its own locks held (construction, start after stop):
        # taking _seq_lock here could deadlock with receive(), which takes them inside it.
        super()._reset()
        self._last_seq = -1
        self._next_offset = 0  # capture-stream sample that the next chunk should start at
        self._chunks = 0
        self._gaps = 0
        self._gap_samples = 0
        self._duplicates = 0
        self._failure: AudioDeviceError | None = None
        self._timeline: deque[tuple[float, float | None, float]] = deque(
            maxlen=TIMELINE_CHUNKS
        )
        self._min_delay: float | None = None
        self._last_delay = 0.0
        self._max_delay = 0.0

    # -- producer side ----------------------------------------------------------------------
    def receive(
        self,
        pcm: bytes | bytearray | memoryview,
        *,
        seq: int,
        offset: int | None = None,
        captured_at: float | None = None,
    ) -> str:
        """Queue one numbered chunk; returns ``"ok"``, ``"gap"`` (silence was inserted before
        it), ``"duplicate"`` (dropped) or ``"ignored"`` (after ``end()``/``stop()``).

        Args:
            pcm: 16 kHz mono s16le bytes (an odd trailing byte is dropped).
            seq: the chunk's number in this capture, from 0.
            offset: index of its first sample in the capture stream; ``None`` assumes it
                follows the last chunk received (gaps then cannot be measured).
            captured_at: when its last sample was captured (Unix seconds, browser clock).
        """
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ConfigurationError(f"seq must be an int >= 0, got {seq!r}")
        data = bytes(pcm)
        data = data[: len(data) - len(data) % SAMPLE_WIDTH]
        n = len(data) // SAMPLE_WIDTH
        now = time.time()
        with self._seq_lock:
            if self._ended or self._stopped:
                return "ignored"
            if seq <= self._last_seq:
                self._duplicates += 1
                return "duplicate"
            start = self._next_offset if offset is None else int(offset)
            result = "ok"
            if start > self._next_offset:  # audio went missing: keep the clock with silence
                hole = start - self._next_offset
                self.push(bytes(hole * SAMPLE_WIDTH))
                self._gaps += 1
                self._gap_samples += hole
                result = "gap"
            elif start < self._next_offset:  # overlaps what we have: keep the new part only
                skip = min(n, self._next_offset - start)
                data = data[skip * SAMPLE_WIDTH :]
                start += skip
                n -= skip
            if data:
                self.push(data)
            self._last_seq = seq
            self._next_offset = max(self._next_offset, start + n)
            self._chunks += 1
            self._timeline.append((self._next_offset / SAMPLE_RATE, captured_at, now))
            if captured_at is not None:
                delay = now - captured_at
                self._min_delay = delay if self._min_delay is None else min(self._min_delay,
                                                                           delay)  # fmt: skip
                self._last_delay = delay - self._min_delay
                self._max_delay = max(self._max_delay, self._last_delay)
            return result

    def fail(self, message: str) -> None:
        """The page's capture broke: the next ``read`` raises ``AudioDeviceError(message)``."""
        with self._seq_lock:
            self._failure = AudioDeviceError(message)
        with self._cond:
            self._cond.notify_all()

    def read(self, timeout: float | None = None) -> bytes | None:
        failure = self._failure
        if failure is not None:
            raise failure
        if timeout is None:
            timeout = 0.5  # wake up now and then to notice fail()
        return super().read(timeout)

    # -- what the widget shows --------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """The highest chunk number received (-1 before the first): the page's ack."""
        with self._seq_lock:
            return self._last_seq

    def captured_at(self, stream_s: float) -> float | None:
        """When the audio at ``stream_s`` seconds of the capture stream was captured (Unix
        seconds, the browser's clock), interpolated within its chunk; ``None`` if unknown
        (not received yet, older than ``timeline`` keeps, or sent without a time)."""
        with self._seq_lock:
            ends = [end for end, _c, _r in self._timeline]
            i = bisect.bisect_left(ends, stream_s)
            if i >= len(ends):
                return None
            end, captured, _received = self._timeline[i]
            return None if captured is None else captured - (end - stream_s)

    @property
    def timeline(self) -> list[tuple[float, float | None, float]]:
        """(end of chunk in stream seconds, captured at, received at) per chunk, oldest first."""
        with self._seq_lock:
            return list(self._timeline)

    def stats(self) -> dict[str, Any]:
        """Counters for the widget and ``metadata.raw["browser"]`` (small; JSON-ready).

        ``late_s`` is how much later than the earliest chunk the newest one arrived, clock
        offset between browser and kernel removed (a burst after a busy cell shows here);
        ``max_late_s`` is the worst seen.
        """
        with self._seq_lock:
            out = {
                "chunks": self._chunks,
                "last_seq": self._last_seq,
                "received_s": round(self._next_offset / SAMPLE_RATE, 3),
                "gaps": self._gaps,
                "gap_s": round(self._gap_samples / SAMPLE_RATE, 3),
                "duplicates": self._duplicates,
                "late_s": round(self._last_delay, 3),
                "max_late_s": round(self._max_delay, 3),
            }
        out["backlog_s"] = round(self.backlog_s, 3)
        out["dropped_s"] = round(self.dropped_s, 3)
        return out

    def __repr__(self) -> str:
        return (
            f"BrowserMicrophone(backlog={self.backlog_s:.2f} s, position={self.position_s:.2f} s)"
        )
