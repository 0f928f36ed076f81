"""The audio ledger: every byte taken from the source, until the provider has acknowledged it.

Why it exists: when a connection drops, whatever the provider had not yet turned into final
results is lost on its side. The ledger keeps that audio (bounded) so that the next connection
can replay it, and it knows the byte offset at which each connection started, so the session
can shift the new connection's timestamps onto one continuous audio clock.

Offsets are byte positions on the session's audio clock (16 kHz mono s16le, so 32,000 bytes a
second). Chunks move ``pending`` (taken, not sent) -> ``unacked`` (sent, not acknowledged) ->
gone (acknowledged by a final result). Every operation is O(1) amortized, whatever the length
of the session. Not thread-safe by itself: the session calls it under its own lock.
"""

from __future__ import annotations

import bisect
from collections import deque

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH

BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH


class AudioLedger:
    def __init__(self, max_buffer_s: float = 120.0):
        self.max_buffer_bytes = int(max_buffer_s * BYTES_PER_SECOND)
        self.taken = 0  # bytes taken from the source (end offset of the newest chunk)
        self.acked = 0  # everything before this offset has final results
        self.dropped_bytes = 0  # audio the provider never got because the buffer overflowed
        self._pending: deque[tuple[int, bytes]] = deque()  # (start offset, chunk)
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._buffered = 0  # bytes held in both deques
        self.pending_bytes = 0
        # (end offset, monotonic send time) of recently sent chunks, for final-result latency
        self._sent_ends: deque[int] = deque()
        self._sent_times: deque[float] = deque()
        self._max_sent_entries = max(64, self.max_buffer_bytes // 1600)

    # -- taking and sending -------------------------------------------------------------
    def append(self, chunk: bytes) -> None:
        self._pending.append((self.taken, chunk))
        self.pending_bytes += len(chunk)
        self.taken += len(chunk)
        self._buffered += len(chunk)
        while self._buffered > self.max_buffer_bytes and (self._unacked or self._pending):
            # Oldest first. A sent chunk is only lost if a replay later needs it (see
            # rewind); a chunk that was never sent is lost now.
            if self._unacked:
                _, old = self._unacked.popleft()
            else:
                _, old = self._pending.popleft()
                self.pending_bytes -= len(old)
                self.dropped_bytes += len(old)
            self._buffered -= len(old)

    def has_pending(self) -> bool:
        return bool(self._pending)

    def next_pending(self) -> tuple[int, bytes] | None:
        return self._pending[0] if self._pending else None

    def mark_sent(self, now: float) -> None:
        """The first pending chunk went out at monotonic time ``now``."""
        start, chunk = self._pending.popleft()
        self.pending_bytes -= len(chunk)
        self._unacked.append((start, chunk))
        self._sent_ends.append(start + len(chunk))
        self._sent_times.append(now)
        if len(self._sent_ends) > self._max_sent_entries:  # long silence without finals
            self._sent_ends.popleft()
            self._sent_times.popleft()

    @property
    def sent(self) -> int:
        """End offset of the audio sent so far (on the current connection's replay path)."""
        if self._pending:
            return self._pending[0][0]
        return self.taken

    # -- acknowledgement ----------------------------------------------------------------
    def ack(self, offset: int) -> None:
        """Final results cover the audio before ``offset``: it will never be replayed."""
        if offset <= self.acked:
            return
        self.acked = min(offset, self.taken)
        while self._unacked and self._unacked[0][0] + len(self._unacked[0][1]) <= self.acked:
            _, chunk = self._unacked.popleft()
            self._buffered -= len(chunk)
        # Keep a second of send times before the ack point: late finals still find theirs.
        horizon = self.acked - BYTES_PER_SECOND
        while len(self._sent_ends) > 1 and self._sent_ends[0] < horizon:
            self._sent_ends.popleft()
            self._sent_times.popleft()

    def send_time(self, offset: int) -> float | None:
        """Monotonic time at which the audio at ``offset`` was sent, if still known."""
        i = bisect.bisect_left(self._sent_ends, offset)
        if i >= len(self._sent_times):
            return None
        return self._sent_times[i]

    # -- reconnecting -------------------------------------------------------------------
    def rewind(self, min_bytes: int = SAMPLE_WIDTH, max_bytes: int | None = None) -> int:
        """Move everything unacknowledged back to pending; return the replay start offset.

        The next connection's audio clock starts at that offset. It is the ack point itself,
        to the sample, not the start of the chunk holding it: audio already covered by a final
        is not sent again, and the provider's first window (which starts at the new stream's
        0) cannot begin inside the previous final. The chunk cut there is re-cut with the next
        one so that every piece stays within what the provider accepts per frame
        (``min_bytes``..``max_bytes``); only when the cut piece is shorter than ``min_bytes``
        and nothing follows it does the replay start earlier, ``min_bytes`` before its end.

        If the buffer overflowed and lost audio after the ack point, the gap is counted in
        ``dropped_bytes``.
        """
        if self._unacked:
            self._pending.extendleft(reversed(self._unacked))
            self.pending_bytes += sum(len(c) for _, c in self._unacked)
            self._unacked.clear()
        if self._pending and self._pending[0][0] < self.acked:
            self._cut_at_ack(max(SAMPLE_WIDTH, min_bytes), max_bytes)
        start = self._pending[0][0] if self._pending else self.taken
        if start > self.acked:
            self.dropped_bytes += start - self.acked
            self.acked = start
        self._sent_ends.clear()
        self._sent_times.clear()
        return start

    def _cut_at_ack(self, min_bytes: int, max_bytes: int | None) -> None:
        """Drop the acknowledged head of the first pending chunk (whole samples only)."""
        first, chunk = self._pending.popleft()
        cut = self.acked - first
        cut -= cut % SAMPLE_WIDTH
        rest = chunk[cut:]
        if len(rest) < min_bytes and self._pending:  # too short for one frame: join the next
            _, following = self._pending.popleft()
            rest += following
            if max_bytes is not None and len(rest) > max_bytes:
                # the head is under min_bytes and the next chunk at most max_bytes, so (with
                # max_bytes >= 2 * min_bytes) both pieces fit in [min_bytes, max_bytes]
                self._pending.appendleft((first + cut + min_bytes, rest[min_bytes:]))
                rest = rest[:min_bytes]
        elif len(rest) < min_bytes:  # nothing follows yet: the shortest frame allowed
            cut = max(0, len(chunk) - min_bytes)
            rest = chunk[cut:]
        self._pending.appendleft((first + cut, rest))
        self.pending_bytes -= cut
        self._buffered -= cut
