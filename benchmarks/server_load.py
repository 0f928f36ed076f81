"""Server concurrency: how many simultaneous real-time sessions ``livetx serve`` holds.

Run (a CPU-bound timing benchmark: hold the lock for the whole run):
``flock /tmp/livetx-bench.lock .venv/bin/python benchmarks/server_load.py [--quick] [--save]``
(``--save`` writes ``benchmarks/results/server_load.txt``).

Method. ``livetx serve`` runs in its own process (its CPU and memory are read from
``/proc/<pid>``), with the script engine (``--no-rate-limit`` not needed: every client is paced
to real time) or the whisper engine (the bundled ``tiny.en``). The clients are plain websocket
clients (``websockets`` asyncio, all in this process, Deepgram protocol, no interim results),
each streaming its audio in 100 ms frames paced to real time from its own start (starts spread
over the first two seconds), then ``CloseStream``. Script engine: 30 s of quiet noise against
``benchmarks/session.py``'s ~150 words/min script; whisper: the shared ``dialogue-16k.wav``
(28 s, two voices).

Final latency = arrival of a final result - the moment the frame holding that final's last
word's end was sent (its end of speech on the audio clock): the endpoint wait plus everything
the server and the network add. For each number of sessions N (rising until a level misses), every
session's finals are pooled; a level holds when its p95 is <= 1 s and every session ended
normally. CPU per session = server CPU seconds / wall seconds / N during the level; memory per
session = (server RSS at the end of the level - idle RSS) / N.

One bad session. At half the capacity found (at least 1), the same level runs twice side by
side: alone, and with one extra client that, over and over, sends malformed text frames (bad
JSON, deep nesting, an unknown type, a 100 kB frame), floods 60 s of audio at once, then drops
the TCP connection without a close. The good sessions' p95 must stay within the bound; the
ratio of the two p95s is reported. ``--quick`` runs only the level with the bad session (the
figure is its p95 against the bound; the alone run, about 17 s per engine, only gives the ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from figure import Figure, ServeProcess, load_file, table  # noqa: E402

SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
RATE = 16000
FRAME_S = 0.1
BOUND_S = 1.0
TARGETS = {"script": 200, "whisper": 4}
QUERY = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def serve(engine: str, work: Path, script: Path | None = None) -> ServeProcess:
    """``livetx serve --engine ENGINE`` in a child process (owned: terminated and reaped)."""
    args = ["--engine", engine, "--log-level", "WARNING", "--idle-timeout", "30"]
    if script is not None:
        args += ["--script", str(script)]
    return ServeProcess(args, log=work / f"serve-{engine}.log", start_timeout=120,
                        stop_timeout=20)  # fmt: skip


@dataclass
class Level:
    engine: str
    sessions: int
    latencies: list[float] = field(default_factory=list)
    finals: int = 0
    failed: int = 0
    cpu_per_session: float = 0.0
    mb_per_session: float = 0.0
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    bad_cycles: int = 0

    @property
    def p95(self) -> float:
        return pct(self.latencies, 0.95)

    @property
    def p50(self) -> float:
        return pct(self.latencies, 0.5)

    @property
    def holds(self) -> bool:
        return self.failed == 0 and self.finals > 0 and self.p95 <= BOUND_S


async def good_client(url: str, pcm: bytes, delay: float, out: Level) -> None:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    await asyncio.sleep(delay)
    frame = round(RATE * FRAME_S) * 2
    try:
        async with connect(url + QUERY, additional_headers={"Authorization": "Token k"},
                           max_size=None, open_timeout=30, close_timeout=10) as ws:  # fmt: skip
            t0 = loop.time()

            async def send() -> None:
                for k in range(0, len(pcm), frame):
                    await asyncio.sleep(max(0.0, t0 + (k // frame) * FRAME_S - loop.time()))
                    await ws.send(pcm[k : k + frame])
                await ws.send(json.dumps({"type": "CloseStream"}))

            sender = asyncio.ensure_future(send())
            async for raw in ws:
                now = loop.time()
                m = json.loads(raw)
                if m.get("type") != "Results" or not m.get("is_final"):
                    continue
                words = m["channel"]["alternatives"][0].get("words") or []
                if not words:
                    continue
                # the frame holding the last word's end left at t0 + its index * FRAME_S
                sent_at = t0 + math.floor(words[-1]["end"] / FRAME_S) * FRAME_S
                out.latencies.append(now - sent_at)
                out.finals += 1
            await sender
            if ws.close_code != 1000:
                out.failed += 1
    except Exception:
        out.failed += 1


async def bad_client(url: str, stop: asyncio.Event, out: Level) -> None:
    """Malformed frames, a flood, a drop; again until ``stop``."""
    from websockets.asyncio.client import connect

    garbage = ["{not json", "[" * 20_000, json.dumps({"type": "Nope"}), "x" * 100_000,
               json.dumps({"type": "Finalize", "channel": 99})]  # fmt: skip
    flood = b"\x01\x00" * (RATE * 60)
    for _ in range(1000):  # bounded; ends at stop
        if stop.is_set():
            return
        with contextlib.suppress(Exception):
            async with connect(url + QUERY, additional_headers={"Authorization": "Token k"},
                               max_size=None, open_timeout=10) as ws:  # fmt: skip
                for text in garbage:
                    await ws.send(text)
                frame = round(RATE * FRAME_S) * 2
                for k in range(0, len(flood), frame):
                    await ws.send(flood[k : k + frame])
                await asyncio.sleep(0.5)
                ws.transport.abort()  # the drop: no close frame
        out.bad_cycles += 1
        await asyncio.sleep(0.2)


def run_level(server: ServeProcess, engine: str, n: int, pcm: bytes, *, bad: bool = False) -> Level:
    level = Level(engine, n)

    async def main() -> None:
        stop = asyncio.Event()
        bad_task = asyncio.ensure_future(bad_client(server.url, stop, level)) if bad else None
        goods = [good_client(server.url, pcm, 2.0 * i / max(1, n), level) for i in range(n)]
        await asyncio.gather(*goods)
        stop.set()
        if bad_task is not None:
            await bad_task

    rss0, cpu0, t0, c0 = server.rss_mb(), server.cpu_s(), time.monotonic(), time.process_time()
    peak = [rss0]
    asyncio.run(main())
    level.wall_s = time.monotonic() - t0
    level.client_cpu_s = time.process_time() - c0
    level.cpu_per_session = (server.cpu_s() - cpu0) / level.wall_s / n
    peak.append(server.rss_mb())
    level.mb_per_session = max(0.0, (max(peak) - IDLE_RSS[engine]) / n)
    return level


IDLE_RSS: dict[str, float] = {}


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.readframes(w.getnframes())


def _session_bench():
    return load_file("livetx_benchmark_session", REPO / "benchmarks" / "session.py")


@dataclass
class EngineResult:
    engine: str
    levels: list[Level]
    alone: Level | None = None
    with_bad: Level | None = None

    @property
    def capacity(self) -> int:
        held = [lv.sessions for lv in self.levels if lv.holds]
        return max(held) if held else 0

    @property
    def at_capacity(self) -> Level | None:
        return next((lv for lv in self.levels if lv.sessions == self.capacity), None)


def run_engine(engine: str, steps: list[int], work: Path, seconds: float = 30.0,
               reference: bool = True) -> EngineResult:
    """``steps`` session counts (rising; stops at the first that misses), ``seconds`` of audio
    per session. ``reference``: also run the bad-session level alone, for the ratio."""
    if engine == "script":
        script = work / "script.json"
        script.write_text(json.dumps(_session_bench().make_script(seconds, seed=3)))
        pcm = (b"\x10\x00\xf0\xff" * (RATE * 30))[: round(RATE * seconds) * 2]
        server = serve("script", work, script)
    else:
        pcm = read_pcm(SHARED / "audio" / "dialogue-16k.wav")[: round(RATE * seconds) * 2]
        server = serve("whisper", work)
    try:
        IDLE_RSS[engine] = server.rss_mb()
        if engine == "whisper":  # the model loads lazily on the first stream: warm it up
            run_level(server, engine, 1, pcm[: RATE * 2 * 5])
            IDLE_RSS[engine] = server.rss_mb()
        result = EngineResult(engine, [])
        for n in steps:
            level = run_level(server, engine, n, pcm)
            result.levels.append(level)
            print(f"  {engine} {n:>4} sessions: p95 {level.p95:.3f} s, failed {level.failed}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if not level.holds:
                break
        half = max(1, result.capacity // 2)
        if reference:
            result.alone = run_level(server, engine, half, pcm)
        result.with_bad = run_level(server, engine, half, pcm, bad=True)
        return result
    finally:
        server.close()


def figures_from(results: list[EngineResult]) -> list[Figure]:
    out = []
    for r in results:
        b, e = "server_load", r.engine
        top = r.at_capacity
        out.append(Figure(b, f"{e}: real-time sessions at p95 final latency <= 1 s",
                          r.capacity, "", TARGETS[e], "higher",
                          note=f"p95 {top.p95:.2f} s" if top else ""))  # fmt: skip
        if top is not None:
            out.append(Figure(b, f"{e}: server CPU per session at {top.sessions}",
                              round(100 * top.cpu_per_session, 2), "% core", None))  # fmt: skip
            out.append(Figure(b, f"{e}: server memory per session at {top.sessions}",
                              round(top.mb_per_session, 2), "MB", None))  # fmt: skip
        if r.with_bad:
            note = (f"alone {r.alone.p95:.3f} s; ratio {r.with_bad.p95 / r.alone.p95:.2f}x"
                    if r.alone else "alone: not run (--quick)")
            out.append(Figure(b, f"{e}: good sessions' p95 with one bad session "
                              f"({r.with_bad.sessions} good)", round(r.with_bad.p95, 3), "s",
                              BOUND_S, "lower", note=note))  # fmt: skip
    return out


def steps_for(engine: str, quick: bool) -> list[int]:
    if engine == "script":
        return [200] if quick else [50, 100, 200, 300, 400, 500]
    return [4] if quick else [1, 2, 3, 4, 5, 6, 8]


def run(quick: bool, engines: list[str]) -> list[EngineResult]:
    """Quick: only the target level, 15 s of audio per session, and the bad-session level
    without its alone reference (the figure is the bound; the ratio is the full run's)."""
    with tempfile.TemporaryDirectory(prefix="livetx-load-") as tmp:
        return [run_engine(e, steps_for(e, quick), Path(tmp), 15.0 if quick else 30.0,
                           reference=not quick)
                for e in engines]  # fmt: skip


def figures(quick: bool) -> list[Figure]:
    return figures_from(run(quick, ["script", "whisper"]))


def report(results: list[EngineResult], quick: bool, seconds: float) -> str:
    lines = [
        "livetx serve: simultaneous real-time sessions (benchmarks/server_load.py)"
        + (" --quick" if quick else ""),
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at start {LOAD_AT_START:.2f}",
        "clients: websockets asyncio in one process, Deepgram protocol, 100 ms frames at real "
        "time; final latency = arrival - the stream passing the final's last word",
        "",
        f"{'engine':<8} {'sessions':>8} {'finals':>7} {'p50 s':>6} {'p95 s':>6} {'failed':>6} "
        f"{'CPU %core/sess':>14} {'MB/sess':>8} {'client CPU s':>12} {'wall s':>6}",
    ]
    for r in results:
        rows = [(str(lv.sessions), lv) for lv in r.levels]
        if r.alone:
            rows.append((f"{r.alone.sessions} alone", r.alone))
        if r.with_bad:
            rows.append((f"{r.with_bad.sessions}+1 bad", r.with_bad))
        for label, lv in rows:
            lines.append(
                f"{r.engine:<8} {label:>8} {lv.finals:>7} {lv.p50:>6.3f} {lv.p95:>6.3f} "
                f"{lv.failed:>6} {100 * lv.cpu_per_session:>14.2f} {lv.mb_per_session:>8.2f} "
                f"{lv.client_cpu_s:>12.1f} {lv.wall_s:>6.1f}"
                + (f"  (bad session: {lv.bad_cycles} rounds)" if lv.bad_cycles else "")
            )
        lines.append(f"{r.engine}: holds {r.capacity} sessions (target >= {TARGETS[r.engine]})")
    lines += ["", table(figures_from(results)), "", f"total {seconds:.0f} s; load average at "
              f"end {os.getloadavg()[0]:.2f}"]  # fmt: skip
    return "\n".join(lines)


LOAD_AT_START = os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two levels per engine")
    ap.add_argument("--engine", choices=("script", "whisper", "both"), default="both")
    ap.add_argument("--steps", help="comma-separated session counts to try (one engine)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/server_load.txt")
    args = ap.parse_args(argv)
    engines = ["script", "whisper"] if args.engine == "both" else [args.engine]
    t0 = time.monotonic()
    if args.steps:
        steps = [int(x) for x in args.steps.split(",")]
        with tempfile.TemporaryDirectory(prefix="livetx-load-") as tmp:
            results = [run_engine(e, steps, Path(tmp)) for e in engines]
    else:
        results = run(args.quick, engines)
    text = report(results, args.quick, time.monotonic() - t0)
    print(text)
    if args.save:
        (REPO / "benchmarks" / "results" / "server_load.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
