"""``AudioTee``: one audio source read once, the same chunks handed to several sessions.

Why a tee and not one source per session: a microphone can be opened once, and even a file
read twice is two clocks. Comparing providers is only fair when every one of them hears the
same bytes on the same clock, so the tee reads the source once and gives each session a
``TeeBranch`` (an ``AudioSource``) that returns exactly the chunks the source returned, in
order, from the first.

No thread of its own: whichever branch needs a chunk nobody has read yet reads it from the
source (one reader at a time; the others wait on a condition, bounded by their ``timeout``),
so the source is paced by its own clock (a microphone, a real-time file) or by the fastest
session (a file read as fast as possible). A session that stalls (a provider that stopped
reading, one that is slow to accept audio) simply stops asking: the others never wait for
it. What it has not read yet stays in one shared buffer (one copy for every branch), and
``max_lag_s`` bounds how far any branch may fall behind the newest chunk: past it the branch
is cut off, its next ``read`` raises ``LaggingError`` and its session ends with that error
(shown in its row and column) while the others go on.

The shared clock: for every chunk the tee notes when it was read from the source
(``time.monotonic()``) and how loud it was (RMS per 20 ms frame). ``clock_at(t)`` maps a time
on the audio clock (seconds of audio, the clock every session's transcript uses) to the moment
that audio existed; the metrics measure latencies from there (see ``metrics.py``).

Live sources that are fed rather than read (a ``QueueSource``: the browser's microphone, whose
page pushes chunks in) work the same way: their ``read(timeout)`` returns ``b""`` while
nothing has come, so a branch waits within its timeout, and their ``end()`` becomes the end of
every branch once what was queued has been read. A source that fails (``fail()``: the page's
capture broke) fails every branch with that error.
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_left
from collections import deque

import numpy as np

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH, AudioSource
from ..errors import LivetxError
from .metrics import frame_loudness

BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
#: Loudness is kept per frame of this many seconds (the energy VAD's resolution).
FRAME_S = 0.02
_FRAME_BYTES = int(FRAME_S * BYTES_PER_SECOND)
#: Loudness is computed a second of audio at a time (and whenever ``energy()`` is read):
#: numpy's per-call overhead on one 50 ms chunk cost more than the arithmetic.
_MEASURE_BYTES = 50 * _FRAME_BYTES
#: Default bound on how far a branch may fall behind the newest chunk, in seconds of audio.
DEFAULT_MAX_LAG_S = 600.0
#: The smallest bound a comparison accepts (see ``CompareSession``: sessions read ahead).
MIN_MAX_LAG_S = 5.0


class LaggingError(LivetxError):
    """A session fell further behind the shared audio than ``max_lag_s`` and was cut off."""


class AudioTee:
    """Reads ``source`` once for every ``branch()``; see the module docstring.

    ``start()`` opens the source (once); ``stop()`` closes it and ends every branch. Branches
    are made before ``start()``.
    """

    def __init__(self, source: AudioSource, *, max_lag_s: float = DEFAULT_MAX_LAG_S) -> None:
        self.source = source
        self.max_lag_bytes = int(max_lag_s * BYTES_PER_SECOND)
        self.max_lag_s = float(max_lag_s)
        self._cv = threading.Condition()
        # Guarded by _cv:
        self._chunks: deque[bytes] = deque()  # chunk self._base + i, not yet read by all
        self._base = 0  # index of _chunks[0]
        self._count = 0  # chunks read from the source so far
        self._bytes = 0  # bytes read from the source so far
        self._reading = False  # a branch is inside source.read()
        self._ended = False  # the source is exhausted (or stopped)
        self._error: LivetxError | None = None
        self._branches: list[TeeBranch] = []
        self._started = False
        # The shared clock: end offset (bytes) of each chunk and when it was read.
        self._ends = array("q")
        self._times = array("d")
        self._energy = array("f")  # RMS (0..1) per FRAME_S frame, in order
        self._carry = bytearray()  # audio not measured yet (under _MEASURE_BYTES)
        self.t0: float | None = None  # when the first chunk was read

    # -- set-up ---------------------------------------------------------------------------
    def branch(self, name: str) -> TeeBranch:
        with self._cv:
            if self._started:
                raise LivetxError("AudioTee.branch() must be called before start().")
            branch = TeeBranch(self, name)
            self._branches.append(branch)
            return branch

    @property
    def branches(self) -> list[TeeBranch]:
        return list(self._branches)

    def start(self) -> None:
        with self._cv:
            if self._started:
                return
            self._started = True
        self.source.start()

    def stop(self) -> None:
        """Close the source; branches drain what was read, then end. Idempotent."""
        with self._cv:
            self._ended = True
            self._cv.notify_all()
        self.source.stop()

    # -- the shared clock -----------------------------------------------------------------
    @property
    def audio_s(self) -> float:
        """Seconds of audio read from the source so far."""
        with self._cv:
            return self._bytes / BYTES_PER_SECOND

    def clock_at(self, audio_s: float) -> float | None:
        """``time.monotonic()`` when the audio up to ``audio_s`` seconds had been read from
        the source (``None``: not yet, or never)."""
        offset = max(1, round(audio_s * BYTES_PER_SECOND))
        with self._cv:
            i = bisect_left(self._ends, offset)
            if i >= len(self._ends):
                return None
            return self._times[i]

    def energy(self) -> np.ndarray:
        """RMS loudness (0..1) of every ``FRAME_S`` frame read so far."""
        with self._cv:
            self._measure_carry()
            return np.frombuffer(self._energy, dtype=np.float32).copy()

    # -- branch side ----------------------------------------------------------------------
    def _read(self, branch: TeeBranch, timeout: float | None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cv:
            while True:  # bounded by the deadline, the source's own read timeout, or the end
                if branch._cut is not None:
                    raise branch._cut
                if branch._stopped:
                    return None
                index = branch._next - self._base
                if index < len(self._chunks):
                    chunk = self._chunks[index]
                    branch._next += 1
                    branch._bytes += len(chunk)
                    if index == 0:
                        # Only the branch that took the oldest chunk can free any: the
                        # others' reads leave the slowest branch where it was.
                        self._trim()
                    return chunk
                if self._error is not None:
                    raise self._error
                if self._ended:
                    return None
                if not self._reading:
                    break  # this branch reads the next chunk for everyone
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._cv.wait(remaining)
            self._reading = True
        chunk: bytes | None = None
        try:
            chunk = self.source.read(timeout=timeout)
        except LivetxError as exc:
            with self._cv:
                self._error = exc
            raise
        finally:
            with self._cv:
                self._reading = False
                if chunk is None:
                    self._ended = True
                elif chunk:
                    self._publish(chunk)
                self._cv.notify_all()
        if not chunk:
            return chunk
        return self._read(branch, 0)  # take it (or be told it was cut meanwhile)

    def _publish(self, chunk: bytes) -> None:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        self._chunks.append(chunk)
        self._count += 1
        self._bytes += len(chunk)
        self._ends.append(self._bytes)
        self._times.append(now)
        self._measure(chunk)
        # A branch more than max_lag behind the newest audio is cut off (see the docstring).
        for branch in self._branches:
            if branch._active() and self._bytes - branch._bytes > self.max_lag_bytes:
                branch._cut = LaggingError(
                    f"{branch.name} fell more than {self.max_lag_s:g} s behind the shared "
                    "audio (the provider is not taking audio as fast as it comes), so it was "
                    "stopped to keep memory bounded; the other providers go on."
                )
        self._trim()

    def _measure(self, chunk: bytes) -> None:
        self._carry += chunk
        if len(self._carry) >= _MEASURE_BYTES:
            self._measure_carry()

    def _measure_carry(self) -> None:
        """Append the RMS of every whole frame held in ``_carry`` (lock held)."""
        n = len(self._carry) // _FRAME_BYTES
        if n:
            whole = bytes(self._carry[: n * _FRAME_BYTES])
            del self._carry[: n * _FRAME_BYTES]
            self._energy.extend(frame_loudness(whole, _FRAME_BYTES // SAMPLE_WIDTH).tolist())

    def _trim(self) -> None:
        """Forget chunks every active branch has read (lock held)."""
        active = [b._next for b in self._branches if b._active()]
        keep_from = min(active) if active else self._count
        while self._base < keep_from and self._chunks:
            self._chunks.popleft()
            self._base += 1

    def _branch_stopped(self) -> None:
        """A branch's session let go of it; once every branch has, nobody will read again,
        so the source is closed (a microphone is released without waiting for ``stop()``)."""
        with self._cv:
            self._trim()
            self._cv.notify_all()
            everyone_gone = self._started and all(b._stopped for b in self._branches)
        if everyone_gone:
            self.stop()


class TeeBranch(AudioSource):
    """One session's view of an ``AudioTee``: the source's chunks, all of them, in order."""

    def __init__(self, tee: AudioTee, name: str) -> None:
        super().__init__()
        self.tee = tee
        self.name = name
        source = tee.source
        self.live = source.live
        self.realtime = source.realtime
        self.chunk_ms = source.chunk_ms
        self.duration_s = source.duration_s
        self._next = 0  # index of the next chunk this branch reads
        self._bytes = 0
        self._stopped = False
        self._cut: LaggingError | None = None

    def _active(self) -> bool:
        return not self._stopped and self._cut is None

    @property
    def position_s(self) -> float:  # type: ignore[override]
        return self._bytes / BYTES_PER_SECOND

    @position_s.setter
    def position_s(self, _value: float) -> None:  # AudioSource.__init__ sets it
        pass

    @property
    def lag_s(self) -> float:
        """Seconds of audio the tee has read that this branch has not taken yet."""
        return max(0.0, self.tee.audio_s - self.position_s)

    def stats(self) -> dict:
        """The shared source's counters (a browser microphone's gaps, drops...), so that every
        session's ``metadata.raw["source"]`` reports the audio it was given."""
        report = getattr(self.tee.source, "stats", None)
        return report() if callable(report) else {}

    def start(self) -> None:
        """The tee is started once by its owner; a branch has nothing of its own to open."""

    def read(self, timeout: float | None = None) -> bytes | None:
        return self.tee._read(self, timeout)

    def stop(self) -> None:
        with self.tee._cv:
            self._stopped = True
        self.tee._branch_stopped()

    def __repr__(self) -> str:
        return f"TeeBranch({self.name!r} of {self.tee.source!r})"
