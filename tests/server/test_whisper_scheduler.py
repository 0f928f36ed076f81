"""Fair sharing of the whisper engine's decode workers, without the model.

The rules (``livetx_widgets/server/whisper/scheduler.py``): real-time streams before streams
ahead of real time, finals before partials, the least recent work first. Unit tests hold the
only worker, queue requests and read the order they are served in (a fake clock decides which
stream is ahead); the end-to-end test streams a flood and a real-time stream through one
engine with a fake recognizer whose decodes hold the worker for a controlled time.
"""

from __future__ import annotations

import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.server.whisper import WhisperEngine, WhisperStream
from livetx_widgets.server.whisper.recognizer import Decoded, Decoding
from livetx_widgets.server.whisper.scheduler import Scheduler
from livetx_widgets.server.whisper.segmenter import WINDOW

RATE = 16000
FRAME = 1600  # 100 ms
SPEECH, QUIET = 0.9, 0.05


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def served_order(sched: Scheduler, requests: list[tuple[str, object, bool]]) -> list[str]:
    """Hold the only worker, queue ``(name, client, urgent)`` requests one by one (each seen
    waiting before the next), release it; the names in the order their turns ran."""
    order: list[str] = []
    gate = threading.Event()
    holder_client = sched.client()

    def hold():
        with holder_client.turn(urgent=True):
            gate.wait(10 * support.TIMING)

    def ask(name, client, urgent):
        with client.turn(urgent):
            order.append(name)

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert support.wait_until(lambda: sched._free == 0)
    for k, (name, client, urgent) in enumerate(requests):
        t = threading.Thread(target=ask, args=(name, client, urgent))
        t.start()
        threads.append(t)
        assert support.wait_until(lambda k=k: len(sched._waiting) == k + 1)
    gate.set()
    for t in threads:
        t.join(10 * support.TIMING)
        assert not t.is_alive()
    return order


def test_real_time_streams_go_before_a_flood_and_finals_before_partials():
    clock = FakeClock()
    sched = Scheduler(1, clock=clock)
    flood, live, other = sched.client(), sched.client(), sched.client()
    for client in (flood, live, other):
        client.audio(0.5)
    flood.audio(60.0)  # 60 s of audio in no time: far ahead of the wall clock
    assert flood.ahead() and not live.ahead()
    order = served_order(
        sched,
        [("flood final", flood, True), ("live partial", live, False), ("other final", other, True)],
    )
    assert order == ["other final", "live partial", "flood final"]


def test_the_stream_with_less_recent_work_goes_first_and_work_is_forgotten():
    clock = FakeClock()
    sched = Scheduler(1, clock=clock, usage_half_life_s=5.0)
    busy, quiet = sched.client(), sched.client()
    busy.charge(1.0, clock.now)  # it just decoded for a second
    quiet.charge(0.1, clock.now)
    assert served_order(sched, [("busy", busy, True), ("quiet", quiet, True)]) == [
        "quiet",
        "busy",
    ]
    assert busy.usage(clock.now + 5.0) == pytest.approx(busy.usage(clock.now) / 2, rel=0.05)


def test_a_flood_catches_up_to_real_time_once_the_wall_clock_has():
    clock = FakeClock()
    sched = Scheduler(1, clock=clock, ahead_slack_s=2.0)
    replay = sched.client()
    replay.audio(5.0)  # a reconnect replays 5 s of audio at once
    assert replay.ahead()
    clock.now += 3.5
    assert replay.ahead_s() == pytest.approx(1.5) and not replay.ahead()


class SilenceVad:
    """Stands in for the Silero session: every window is quiet; counts the windows it saw."""

    def __init__(self):
        self.windows = 0

    def run(self, _outputs, inputs):
        n = inputs["input"].shape[0]
        self.windows += n
        return np.full((n, 1), QUIET, np.float32), inputs["h"], inputs["c"]


def test_a_stream_ahead_of_real_time_runs_its_vad_in_turns_a_real_time_one_does_not():
    engine = WhisperEngine()
    engine.scheduler = sched = Scheduler(1, clock=FakeClock())
    live = WhisperStream(engine, None, SilenceVad(), RATE, "en")
    flood_vad = SilenceVad()
    flood = WhisperStream(engine, None, flood_vad, RATE, "en")
    silence = bytes(2 * FRAME)
    flood.feed(silence * 30)  # 3 s at once, on a clock that does not move: ahead
    assert flood._turns.ahead()
    gate, holder_in = threading.Event(), threading.Event()

    def hold():
        with sched.client().turn(urgent=True):
            holder_in.set()
            gate.wait(10 * support.TIMING)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holder_in.wait(5 * support.TIMING)
        assert live.feed(silence) == []  # real time: its VAD does not wait for the worker
        seen = flood_vad.windows
        fed = threading.Thread(target=flood.feed, args=(silence * 10,))
        fed.start()
        assert support.wait_until(lambda: len(sched._waiting) == 1)
        assert flood_vad.windows == seen, "the flood's VAD waited for the worker"
    finally:
        gate.set()
        holder.join(10 * support.TIMING)
    fed.join(10 * support.TIMING)
    assert not fed.is_alive() and flood_vad.windows > seen


# -- a flood and a real-time stream through one engine ---------------------------------------


class LoudVad:
    """A window is speech when it is loud."""

    def run(self, _outputs, inputs):
        windows = inputs["input"][:, -WINDOW:]
        p = np.where(np.abs(windows).mean(axis=1) > 0.05, SPEECH, QUIET).astype(np.float32)
        return p[:, None], inputs["h"], inputs["c"]


class HoldingRecognizer:
    """Each decode holds its worker for ``seconds`` (as a real decode would) and returns text."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.decodes = 0

    def decode(self, audio, *, language, beam_size, with_words, min_context_s, allow_retry,
               keyterms):  # fmt: skip
        time.sleep(self.seconds)  # the worker is busy; the cost is the point of this fake
        self.decodes += 1
        words = (("Hello", 0.31, 0.6, 0.9), ("there.", 0.6, 0.9, 0.8)) if with_words else ()
        decoded = Decoded("Hello there.", words, 0.01, -0.2, "en", 10.0)
        return Decoding(result=decoded, seconds=self.seconds, window_s=10.0)


def utterances(n: int, speech_s: float = 0.8, pause_s: float = 0.6) -> bytes:
    t = np.arange(int(speech_s * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    pcm = np.concatenate([np.zeros(int(0.3 * RATE)), *([tone, np.zeros(int(pause_s * RATE))] * n)])
    return (pcm * 32767).astype("<i2").tobytes()


def live_stream(engine: WhisperEngine, pcm: bytes) -> tuple[list[float], float]:
    """Feed ``pcm`` at real time in 100 ms frames. Returns each final's latency (its arrival
    minus the moment its audio was in) and the stream's worst lag (a feed returning after the
    next frame was due: the stream fell behind real time, a partial or a final waited)."""
    stream = WhisperStream(engine, HoldingRecognizer(0.03), LoudVad(), RATE, "en")
    t0 = time.monotonic()
    latencies, lag = [], 0.0
    for k, off in enumerate(range(0, len(pcm), 2 * FRAME)):
        due = t0 + (k + 1) * FRAME / RATE
        time.sleep(max(0.0, due - time.monotonic()))  # pacing: the audio clock, not a wait
        for r in stream.feed(pcm[off : off + 2 * FRAME]):
            if r.kind == "final":
                latencies.append(time.monotonic() - (t0 + r.end))
        lag = max(lag, time.monotonic() - due)
    stream.close()
    return latencies, lag


FLOODS = 3


def test_flooding_streams_do_not_delay_a_real_time_streams_finals_or_partials():
    """Three streams flood speech as fast as they can (every decode holds the only worker for
    30 ms; about half of them are finals, which a finals-first rule alone would let overtake
    the real-time stream's partials); a stream fed at real time beside them gets each final
    within a bound of a few decodes and never lags behind real time by more, while the floods
    keep the worker busy whenever the real-time stream does not need it."""
    engine = WhisperEngine()
    recs = [HoldingRecognizer(0.03) for _ in range(FLOODS)]
    floods = [WhisperStream(engine, rec, LoudVad(), RATE, "en") for rec in recs]
    stop = threading.Event()
    one_pass = utterances(8)

    def flooding(flood):
        for _ in range(200):  # bounded; ends at stop
            for off in range(0, len(one_pass), 2 * FRAME * 10):
                if stop.is_set():
                    return
                flood.feed(one_pass[off : off + 2 * FRAME * 10])

    flooders = [threading.Thread(target=flooding, args=(f,)) for f in floods]
    for t in flooders:
        t.start()
    try:
        assert support.wait_until(lambda: min(r.decodes for r in recs) >= 3)
        before = sum(r.decodes for r in recs)
        latencies, lag = live_stream(engine, utterances(2))
    finally:
        stop.set()
        for t in flooders:
            t.join(10 * support.TIMING)
    assert not any(t.is_alive() for t in flooders)
    assert all(f._turns.ahead() for f in floods), "the floods ran ahead of real time"
    assert sum(r.decodes for r in recs) - before >= 40, "the floods decoded all along"
    assert len(latencies) == 2
    assert max(latencies) <= 0.2 * support.TIMING, latencies
    assert lag <= 0.15 * support.TIMING, lag
