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
* chunks are queued in ``seq`` order, not arrival order: the kernel does not keep the
  order of widget messages around a busy cell (ipykernel 7.4 handled the newest chunks of a
  burst before its oldest), so a chunk that comes early is held until the ones before it
  arrive (``reordered`` counts them);
* a chunk that never comes (given up on after ``reorder_wait_s``, or at ``end()``) becomes
  silence of exactly its length (from the next chunk's ``offset``), so every later sample
  keeps its place on the capture clock and the transcript's times stay right; the hole is
  counted (``gaps``, ``gap_s``), and the chunk, should it still come, is dropped
  (``too_late``);
* a chunk already received is dropped and counted (``duplicates``); a chunk that overlaps
  what was received is trimmed to the new part;
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
#: Largest sample offset taken (JavaScript's exact integers; 17,800 years at 16 kHz): beyond it
#: the clock arithmetic would overflow a float.
MAX_OFFSET = 2**53
#: How long chunks that came early wait for a missing earlier one before silence takes its
#: place. Only a chunk that never comes costs this wait; out-of-order delivery (measured on
#: ipykernel 7.4 after a busy cell: the burst's newest chunks handled before its oldest)
#: resolves within the same burst.
REORDER_WAIT_S = 3.0


class BrowserMicrophone(QueueSource):
    """The audio the widget's browser front end sends (a live ``QueueSource``).

    Producer side (the widget, on the kernel's thread): ``receive(pcm, seq=..., offset=...)``
    for each chunk of 16 kHz mono s16le; ``end()`` when the page stopped capturing (what is
    queued is still read); ``fail(message)`` when the page's capture broke, which ends the
    session with an ``AudioDeviceError`` carrying that message. Plain ``push`` still works
    for audio without sequence numbers (``sample_rate`` is its default rate; ``receive``
    always takes 16 kHz).

    ``backlog_s`` is what the widget shows when the kernel falls behind the browser;
    ``stats()`` has the counters the widget and ``metadata.raw["source"]`` report.
    """

    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        chunk_ms: int = 50,
        max_backlog_s: float = 600.0,
        reorder_wait_s: float = REORDER_WAIT_S,
    ) -> None:
        if not isinstance(reorder_wait_s, (int, float)) or not reorder_wait_s >= 0:
            raise ConfigurationError(
                f"reorder_wait_s must be a number of seconds >= 0, got {reorder_wait_s!r}"
            )
        self.reorder_wait_s = float(reorder_wait_s)
        self._seq_lock = threading.Lock()
        super().__init__(sample_rate=sample_rate, chunk_ms=chunk_ms, max_backlog_s=max_backlog_s)

    def _reset(self) -> None:
        # Called by QueueSource with its own locks held (construction, start after stop):
        # taking _seq_lock here could deadlock with receive(), which takes them inside it.
        super()._reset()
        self._next_seq = 0  # the chunk that comes next in order
        self._max_seq = -1  # the highest chunk received (the page's ack)
        self._held: dict[int, tuple[bytes, int | None, float | None, float]] = {}
        self._hole_seq = -1  # the missing chunk the held ones wait for...
        self._hole_since = 0.0  # ...since this monotonic time
        # Chunks given up on (silence took their place), as [start, stop) ranges of seq: a
        # page that jumps to seq 10**12 must not make a set of every number skipped.
        self._skipped: list[tuple[int, int]] = []
        self._next_offset = 0  # capture-stream sample that the next chunk should start at
        self._chunks = 0
        self._gaps = 0
        self._gap_samples = 0
        self._duplicates = 0
        self._reordered = 0
        self._too_late = 0
        self._last_gap: dict[str, float] | None = None
        self._failure: AudioDeviceError | None = None
        self._timeline: deque[tuple[float, float | None, float]] = deque(maxlen=TIMELINE_CHUNKS)
        self._min_delay: float | None = None
        self._last_delay = 0.0
        self._max_delay = 0.0
        self._last_received = time.monotonic()  # a chunk came, or the capture began

    # -- producer side ----------------------------------------------------------------------
    def receive(
        self,
        pcm: bytes | bytearray | memoryview,
        *,
        seq: int,
        offset: int | None = None,
        captured_at: float | None = None,
    ) -> str:
        """Queue one numbered chunk. Returns what became of it:

        ``"ok"`` (queued, with any held chunks it unblocked), ``"held"`` (an earlier chunk is
        still missing: kept until it comes or ``reorder_wait_s`` passes), ``"duplicate"``
        (already had it: dropped), ``"late"`` (its place was already filled with silence:
        dropped) or ``"ignored"`` (after ``end()``/``stop()``).

        Args:
            pcm: 16 kHz mono s16le bytes (an odd trailing byte is dropped).
            seq: the chunk's number in this capture, from 0.
            offset: index of its first sample in the capture stream; ``None`` assumes it
                follows the chunk before it (a hole then cannot be measured).
            captured_at: when its last sample was captured (Unix seconds, browser clock).
        """
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ConfigurationError(f"seq must be an int >= 0, got {seq!r}")
        if offset is not None and (
            isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < MAX_OFFSET
        ):
            raise ConfigurationError(
                f"offset must be None or a sample index 0..2**53-1, got {offset!r:.40}"
            )
        data = bytes(pcm)
        data = data[: len(data) - len(data) % SAMPLE_WIDTH]
        now = time.time()
        with self._seq_lock:
            if self._ended or self._stopped:
                return "ignored"
            self._last_received = time.monotonic()
            if seq < self._next_seq or seq in self._held:
                if self._was_skipped(seq):
                    self._too_late += 1
                    return "late"
                self._duplicates += 1
                return "duplicate"
            if captured_at is not None:
                delay = now - captured_at
                self._min_delay = delay if self._min_delay is None else min(self._min_delay,
                                                                           delay)  # fmt: skip
                self._last_delay = delay - self._min_delay
                self._max_delay = max(self._max_delay, self._last_delay)
            if seq < self._max_seq:
                self._reordered += 1  # a later chunk came first
            self._max_seq = max(self._max_seq, seq)
            self._held[seq] = (data, offset, captured_at, now)
            self._release(force=False)
            return "held" if seq in self._held else "ok"

    def _release(self, *, force: bool) -> None:
        """Queue held chunks in order; give up on a missing one after ``reorder_wait_s``
        (or at once with ``force``), letting silence take its place. ``_seq_lock`` held."""
        while self._held:  # bounded: each pass queues one held chunk or skips one hole
            if self._next_seq in self._held:
                self._queue(*self._held.pop(self._next_seq))
                self._next_seq += 1
                continue
            if self._hole_seq != self._next_seq:
                self._hole_seq, self._hole_since = self._next_seq, time.monotonic()
            if not force and time.monotonic() - self._hole_since < self.reorder_wait_s:
                return
            nxt = min(self._held)
            self._skipped.append((self._next_seq, nxt))
            self._next_seq = nxt  # the offset jump of the next chunk becomes silence

    def _was_skipped(self, seq: int) -> bool:
        i = bisect.bisect_right(self._skipped, (seq, float("inf"))) - 1
        return i >= 0 and self._skipped[i][0] <= seq < self._skipped[i][1]

    def _queue(self, data: bytes, offset: int | None, captured_at: float | None,
               received_at: float) -> None:  # fmt: skip
        """Put one in-order chunk in the queue at its place on the capture clock."""
        n = len(data) // SAMPLE_WIDTH
        start = self._next_offset if offset is None else int(offset)
        if start > self._next_offset:  # audio went missing: keep the clock with silence
            hole = start - self._next_offset
            self._push_silence(hole)
            self._gaps += 1
            self._gap_samples += hole
            self._last_gap = {
                "seq": self._next_seq, "at_s": self._next_offset / SAMPLE_RATE,
                "length_s": hole / SAMPLE_RATE,
            }  # fmt: skip
        elif start < self._next_offset:  # overlaps what we have: keep the new part only
            skip = min(n, self._next_offset - start)
            data = data[skip * SAMPLE_WIDTH :]
            start += skip
            n -= skip
        if data:
            self.push(data, sample_rate=SAMPLE_RATE)  # receive() is always 16 kHz
        self._next_offset = max(self._next_offset, start + n)
        self._chunks += 1
        self._timeline.append((self._next_offset / SAMPLE_RATE, captured_at, received_at))

    def _push_silence(self, samples: int) -> None:
        """Queue ``samples`` of silence without ever building more than the queue holds: an
        offset far ahead (a buggy page) then costs the bound, not gigabytes; the part beyond
        the bound is counted in ``dropped_s`` like any audio past it."""
        fill = min(samples, self._max_bytes // SAMPLE_WIDTH)
        self.push(bytes(fill * SAMPLE_WIDTH), sample_rate=SAMPLE_RATE)
        if samples > fill:
            with self._cond:
                self._pushed_bytes += (samples - fill) * SAMPLE_WIDTH
                self._dropped_bytes += (samples - fill) * SAMPLE_WIDTH

    def end(self) -> None:
        """No more audio: held chunks are queued (holes become silence), then read drains."""
        with self._seq_lock:
            if not (self._ended or self._stopped):
                self._release(force=True)
        super().end()

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
        if self._held:  # a hole nothing else will resolve (no more chunks coming)
            with self._seq_lock:
                self._release(force=False)
        if timeout is None:
            timeout = 0.5  # wake up now and then to notice fail() and held chunks
        return super().read(timeout)

    # -- what the widget shows --------------------------------------------------------------
    @property
    def last_received_at(self) -> float:
        """Monotonic time the last chunk arrived (or the source was reset), for liveness."""
        return self._last_received

    @property
    def ended(self) -> bool:
        """``end()`` or ``stop()`` was called: no more audio is taken."""
        return bool(self._ended or self._stopped)

    @property
    def last_seq(self) -> int:
        """The highest chunk number received (-1 before the first): the page's ack."""
        with self._seq_lock:
            return self._max_seq

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
        """Counters for the widget and ``metadata.raw["source"]`` (small; JSON-ready).

        ``late_s`` is how much later than the earliest chunk the newest one arrived, clock
        offset between browser and kernel removed (a burst after a busy cell shows here);
        ``max_late_s`` is the worst seen. ``last_gap`` says where the latest hole was (the
        chunk after it, the stream second it starts at, its length).
        """
        with self._seq_lock:
            out = {
                "chunks": self._chunks,
                "last_seq": self._max_seq,
                "received_s": round(self._next_offset / SAMPLE_RATE, 3),
                "gaps": self._gaps,
                "gap_s": round(self._gap_samples / SAMPLE_RATE, 3),
                "duplicates": self._duplicates,
                "reordered": self._reordered,
                "held": len(self._held),
                "too_late": self._too_late,
                "last_gap": None if self._last_gap is None else dict(self._last_gap),
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
