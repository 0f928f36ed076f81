"""Who gets the next CTranslate2 worker: fair sharing of decode work across streams.

All streams of one ``WhisperEngine`` share one model with ``num_workers`` workers (CTranslate2
``inter_threads``; each decode also uses ``cpu_threads`` cores). Every decode takes a *turn*
(``Client.turn``): it waits for a free worker, runs, and gives the worker back. When a worker
frees up and several turns wait, the next one is chosen by three rules, in this order:

1. **Real time first.** A stream whose audio arrived more than ``ahead_slack_s`` ahead of the
   wall clock (audio seconds received minus seconds since its first audio: a client flooding
   audio faster than real time, which the Deepgram protocol allows) is served only when no
   stream that keeps to real time waits. It gets what the real-time streams leave: all of the
   machine when it is alone, at most its share under contention. It falls behind, and its own
   latency suffers, not the others'. A stream that merely fell behind (its audio waited in the
   server's queue) never looks ahead, and a burst of replayed audio after a reconnect counts
   as ahead only until the wall clock has caught up with it.
2. **Finals before partials** (``urgent``): a final's latency is what a reader waits for; a
   partial is optional work whose cost the segmenter's budget already watches.
3. **Least recent work first**: the stream with the least decode time in the last few seconds
   (an exponentially decayed sum, half-life ``usage_half_life_s``) goes first, then the
   earliest request. Two streams that both decode back to back thus alternate instead of the
   faster thread taking the worker again and again.

A stream ahead of real time also runs its voice-activity detection inside turns, in pieces of
at most ``VAD_PIECE_WINDOWS`` windows (~1 s of audio), because a flood of silence costs no
decode but a VAD pass over all of it; real-time streams run their VAD (~0.1 ms a window)
outside turns, so it never waits for another stream's decode. A turn is never interrupted, so
a real-time stream waits at most for the turns already running: one decode or one VAD piece.

A ``Client`` is one stream's view (made by ``Scheduler.client``); it reads the clock only to
tell whether its stream is ahead. The clock is injectable for tests.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["VAD_PIECE_WINDOWS", "Client", "Scheduler"]

#: VAD windows (32 ms each) one turn of a stream ahead of real time may process: ~1 s.
VAD_PIECE_WINDOWS = 32


class Scheduler:
    """``workers`` decode turns at a time, handed out by the rules of the module docstring."""

    def __init__(
        self,
        workers: int,
        *,
        ahead_slack_s: float = 2.0,
        usage_half_life_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._free = workers
        self._slack = ahead_slack_s
        self._half_life = usage_half_life_s
        self.clock = clock
        self._cv = threading.Condition()
        self._waiting: dict[int, tuple] = {}  # request number -> its priority key
        self._numbers = itertools.count()

    def client(self) -> Client:
        """A new stream's handle."""
        return Client(self)

    @contextlib.contextmanager
    def _turn(self, client: Client, urgent: bool) -> Iterator[None]:
        with self._cv:
            number = next(self._numbers)
            now = self.clock()
            self._waiting[number] = (client.ahead(now), not urgent, client.usage(now), number)
            try:
                self._cv.wait_for(lambda: self._free > 0 and self._first() == number)
            finally:
                del self._waiting[number]
            self._free -= 1
            self._cv.notify_all()  # with several workers the next in line may go too
        t0 = self.clock()
        try:
            yield
        finally:
            t1 = self.clock()
            with self._cv:
                client.charge(t1 - t0, t1)
                self._free += 1
                self._cv.notify_all()

    def _first(self) -> int:
        return min(self._waiting, key=self._waiting.__getitem__)


class Client:
    """One stream's side of the ``Scheduler``: its audio clock and its recent decode time."""

    def __init__(self, scheduler: Scheduler):
        self._sched = scheduler
        self._first_audio_at: float | None = None
        self._audio_s = 0.0
        self._usage = 0.0
        self._usage_at = 0.0

    def audio(self, seconds: float) -> None:
        """The stream received ``seconds`` more audio (at 16 kHz, after resampling)."""
        if self._first_audio_at is None:
            self._first_audio_at = self._sched.clock()
        self._audio_s += seconds

    def ahead_s(self, now: float | None = None) -> float:
        """How far the stream's audio is ahead of the wall clock since its first audio."""
        if self._first_audio_at is None:
            return 0.0
        now = self._sched.clock() if now is None else now
        return self._audio_s - (now - self._first_audio_at)

    def ahead(self, now: float | None = None) -> bool:
        """Is the stream ahead of real time by more than the scheduler's slack?"""
        return self.ahead_s(now) > self._sched._slack

    def usage(self, now: float) -> float:
        """Seconds of turns taken recently (decayed with the scheduler's half-life)."""
        return self._usage * 0.5 ** (max(0.0, now - self._usage_at) / self._sched._half_life)

    def charge(self, seconds: float, now: float) -> None:
        self._usage = self.usage(now) + seconds
        self._usage_at = now

    def turn(self, urgent: bool) -> contextlib.AbstractContextManager[None]:
        """Hold one worker for a decode (``urgent``: a final) or a VAD piece."""
        return self._sched._turn(self, urgent)
