"""Benchmark the offline whisper engine as a live stream: speed, latency and accuracy.

Run: ``.venv/bin/python benchmarks/engine.py`` (add ``--save`` to write
``benchmarks/results/engine.txt``; ``--set end_silence_s=0.3`` to try engine settings).

Each recording is fed in 50 ms chunks on a simulated audio clock: chunk ``i`` arrives when the
clock reaches its end, ``(i + 1) * 0.05`` s; the engine starts on it when it arrives or when it
has finished the previous chunk, whichever is later, and its results are stamped with the clock
at which ``feed`` returned. A recognizer that keeps up thus sees real-time pacing, and one that
falls behind is charged for it in every latency below.

Measured per utterance (one per final), with the reference times taken from the final's word
timestamps (the engine's own alignment, accurate to a few tens of ms):

- first partial: clock at the first ``partial`` minus the first word's start;
- final: clock at the ``final`` minus the last word's end (the endpoint wait is included);
- RTF: wall-clock time spent inside feed/close (partials, finals, VAD, resampling) divided by
  the audio duration;
- WER of the concatenated finals against the approximate transcripts in the shared README.

The machine is shared with other work, so each file is streamed ``--runs`` times and the run
with the median RTF is reported, together with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from livetx_widgets.server.wer import wer  # noqa: E402
from livetx_widgets.server.whisper_engine import WhisperEngine  # noqa: E402

SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
FILES = ("short-16k.wav", "dialogue-16k.wav")


def reference_transcripts(readme: Path) -> dict[str, str]:
    """The approximate transcripts listed as "- `name.wav`: "text"" in the audio README."""
    text = readme.read_text(encoding="utf-8")
    found = re.findall(r"^- `([^`]+)`:\s*\"(.*?)\"", text, flags=re.S | re.M)
    return {name: " ".join(body.split()) for name, body in found}


def read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: expected 16-bit mono PCM")
        return w.readframes(w.getnframes()), w.getframerate()


@dataclass
class Run:
    audio_s: float
    compute_s: float = 0.0
    events: list = field(default_factory=list)  # (clock, EngineResult)

    @property
    def rtf(self) -> float:
        return self.compute_s / self.audio_s


def stream(engine: WhisperEngine, pcm: bytes, rate: int, chunk_s: float) -> tuple[Run, dict]:
    """Feed ``pcm`` on the simulated audio clock; return every result with its clock time."""
    s = engine.open_stream(rate)
    step = round(chunk_s * rate) * 2
    run = Run(audio_s=len(pcm) / 2 / rate)
    free = 0.0  # clock time at which the engine is free again
    for i, off in enumerate(range(0, len(pcm), step)):
        chunk = pcm[off : off + step]
        arrival = off / 2 / rate + len(chunk) / 2 / rate
        begin = max(arrival, free)
        t0 = time.perf_counter()
        results = s.feed(chunk)
        spent = time.perf_counter() - t0
        run.compute_s += spent
        free = begin + spent
        run.events += [(free, r) for r in results]
        assert i < 10_000_000
    t0 = time.perf_counter()
    results = s.close()
    spent = time.perf_counter() - t0
    run.compute_s += spent
    free = max(free, run.audio_s) + spent
    run.events += [(free, r) for r in results]
    return run, dict(s.stats)


def utterance_metrics(run: Run) -> dict:
    """Latencies per final: first partial after the first word, final after the last word."""
    first_partial, final_lat, no_partial = [], [], 0
    pending_partial = None
    for clock, r in run.events:
        if r.kind == "partial" and pending_partial is None:
            pending_partial = clock
        elif r.kind == "final":
            if r.words:
                onset, end = r.words[0].start, r.words[-1].end
                final_lat.append(clock - end)
                if pending_partial is None:
                    no_partial += 1
                else:
                    first_partial.append(pending_partial - onset)
            pending_partial = None
    return {"first_partial": first_partial, "final": final_lat, "no_partial": no_partial}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per file (median RTF reported)")
    ap.add_argument("--chunk-ms", type=int, default=50)
    ap.add_argument("--model", default=None, help="model directory (default: bundled tiny.en)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/engine.txt")
    ap.add_argument("--verbose", action="store_true", help="print every final")
    args = ap.parse_args(argv)

    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = int(value) if value.isdigit() else float(value)
    engine = WhisperEngine(args.model, **settings)
    t0 = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - t0
    refs = reference_transcripts(SHARED / "audio" / "README.md")

    lines = [
        "whisper engine, streamed in real time on a simulated audio clock",
        f"model: {engine!r}  settings: {settings or 'defaults'}",
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}; model load {load_s:.2f} s",
        f"chunks: {args.chunk_ms} ms; runs per file: {args.runs} (median-RTF run shown)",
        "",
        f"{'file':<18}{'audio s':>8}{'RTF':>7}{'utts':>6}{'partials':>9}{'skipped':>8}"
        f"{'1st partial p50/max':>21}{'final p50/p95':>15}{'WER':>7}",
    ]
    totals = {"audio": 0.0, "compute": 0.0, "first": [], "final": []}
    loads = [os.getloadavg()[0]]
    for name in FILES:
        pcm, rate = read_wav(SHARED / "audio" / name)
        engine_runs = []
        for _ in range(max(1, args.runs)):
            engine_runs.append(stream(engine, pcm, rate, args.chunk_ms / 1000))
            loads.append(os.getloadavg()[0])
        engine_runs.sort(key=lambda rs: rs[0].rtf)
        run, stats = engine_runs[len(engine_runs) // 2]
        m = utterance_metrics(run)
        finals = [r for _, r in run.events if r.kind == "final"]
        hyp = " ".join(r.text for r in finals)
        error = wer(refs.get(name, ""), hyp)
        totals["audio"] += run.audio_s
        totals["compute"] += run.compute_s
        totals["first"] += m["first_partial"]
        totals["final"] += m["final"]
        first = f"{pct(m['first_partial'], 50):.2f}/{max(m['first_partial'], default=0):.2f}"
        fin = f"{pct(m['final'], 50):.2f}/{pct(m['final'], 95):.2f}"
        lines.append(
            f"{name:<18}{run.audio_s:>8.1f}{run.rtf:>7.3f}{len(finals):>6}"
            f"{stats['partials']:>9}{stats['partials_skipped']:>8}{first:>21}{fin:>15}"
            f"{error:>7.3f}"
        )
        if m["no_partial"]:
            lines.append(f"{'':<18}({m['no_partial']} utterance(s) ended before a partial)")
        rtfs = ", ".join(f"{r.rtf:.3f}" for r, _ in engine_runs)
        lines.append(f"{'':<18}RTF of each run: {rtfs}")
        if args.verbose:
            for clock, r in run.events:
                if r.kind == "final":
                    lines.append(f"    {clock:6.2f}  [{r.start:5.2f}-{r.end:5.2f}] {r.text}")
    lines += [
        "",
        f"all: RTF {totals['compute'] / totals['audio']:.3f}; first partial after speech onset "
        f"p50 {pct(totals['first'], 50):.2f} s (max {max(totals['first'], default=0):.2f} s); "
        f"final after end of speech p50 {pct(totals['final'], 50):.2f} s, "
        f"p95 {pct(totals['final'], 95):.2f} s",
        "targets: RTF <= 0.15, first partial <= 1.2 s, final p50 <= 0.8 s",
        f"load average during the runs: {statistics.mean(loads):.2f} "
        f"(min {min(loads):.2f}, max {max(loads):.2f}) on {os.cpu_count()} cores",
    ]
    out = "\n".join(lines)
    print(out)
    if args.save:
        target = REPO / "benchmarks" / "results" / "engine.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(out + "\n", encoding="utf-8")
        print(f"\nsaved to {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
