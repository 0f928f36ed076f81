"""Benchmark a three-provider ``CompareSession`` against one ``TranscriptionSession``: the
client's CPU and memory on the same file, measured side by side in one run.

Run (under the machine's benchmark lock): ``flock /tmp/livetx-bench.lock python
benchmarks/compare.py [--quick] [--save]`` (``--save`` writes ``benchmarks/results/compare.txt``).
Full run: ~4 minutes.

Method: one ``livetx serve --engine script --no-rate-limit`` in its own process (so its CPU and
memory are never counted as the client's) with a ~150 words/min script (``session.py``'s).
Each measurement is a fresh child process that imports the package, then runs either

* **single**: one ``TranscriptionSession`` (Deepgram protocol), or
* **compare**: ``CompareSession`` with three providers: Deepgram, AssemblyAI and Deepgram
  again with another model, all on the one source through the tee,

on the same WAV, and reports its own CPU time (``resource.getrusage(RUSAGE_SELF)``: every
thread, user + system) and memory (``VmHWM`` peak RSS, and its growth over the RSS after the
imports) from ``start()`` to the end of ``stop()``. Two modes: **real time** (the file is
played at speaking pace, as a user compares providers) and **fast** (``realtime=False,
pace=False``: as fast as the sockets take it, the cost per audio second with no idle time).
Single and compare runs alternate (A B A B ...) so that load from other work on the machine
hits both alike; medians are reported, and the ratios compare/single are the figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from figure import ServeProcess, load_file  # noqa: E402

bench = load_file("bench_session", REPO / "benchmarks" / "session.py")  # make_script, write_wav...

KEY = "bench-key"


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# -- child: one measured run ---------------------------------------------------------------
def child(params: dict) -> dict:
    from livetx_widgets import CompareSession, TranscriptionSession

    url, wav, mode, fast = params["url"], params["wav"], params["mode"], params["fast"]
    common = {"source": wav, "realtime": not fast, "api_key": KEY, "url": url,
              "pace": False if fast else None, "stop_timeout": 30.0}  # fmt: skip
    rss0 = status_kb("VmRSS")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if mode == "single":
        session = TranscriptionSession("deepgram", **common)
        session.start()
        session.wait(3600)
        session.stop()
        finals = {"deepgram": len(session.transcript)}
        errors = [str(session.error)] if session.error else []
        audio = session.metadata.audio_sent_s
    else:
        providers = ["deepgram", "assemblyai",
                     ("deepgram", {"model": "nova-2", "label": "deepgram-nova-2"})]  # fmt: skip
        compare = CompareSession(providers, **common)
        compare.start()
        compare.wait(3600)
        compare.stop()
        finals = {k: len(t) for k, t in compare.transcripts.items()}
        errors = [f"{k}: {e}" for k, e in compare.errors.items() if e is not None]
        audio = min(m.audio_sent_s for m in compare.metadata.values())
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "wall_s": wall,
        "rss_after_import_mb": rss0 / 1024,
        "peak_rss_mb": status_kb("VmHWM") / 1024,
        "audio_s": audio,
        "finals": finals,
        "errors": errors,
    }


def run_child(params: dict, timeout: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(params)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report ----------------------------------------------------------------------------------
def section(url: str, wav: Path, seconds: float, fast: bool, rounds: int, out: list[str]) -> dict:
    runs: dict[str, list[dict]] = {"single": [], "compare": []}
    for _ in range(rounds):
        for mode in ("single", "compare"):  # alternating: the same load hits both
            params = {"url": url, "wav": str(wav), "mode": mode, "fast": fast}
            result = run_child(params, timeout=seconds * 3 + 120)
            if result["errors"]:
                raise RuntimeError(f"{mode} run failed: {result['errors']}")
            runs[mode].append(result)
            print(f"  {mode:8s} {'fast' if fast else 'real time'}: cpu {result['cpu_s']:.2f} s, "
                  f"peak rss {result['peak_rss_mb']:.1f} MB", file=sys.stderr)  # fmt: skip

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    def growth(mode: str) -> float:
        return statistics.median(r["peak_rss_mb"] - r["rss_after_import_mb"] for r in runs[mode])

    name = "fast (realtime=False, pace=False)" if fast else "real time (realtime=True)"
    out.append(f"   {name}: {seconds:.0f} s WAV, {rounds} rounds, medians")
    out.append("   run       providers  cpu s  % of a core  wall s  peak RSS MB  RSS growth MB")
    for mode, n in (("single", 1), ("compare", 3)):
        cpu, wall = med(mode, "cpu_s"), med(mode, "wall_s")
        out.append(
            f"   {mode:9s} {n:9d}  {cpu:5.2f}  {100 * cpu / wall:11.2f}  {wall:6.1f}"
            f"  {med(mode, 'peak_rss_mb'):11.1f}  {growth(mode):13.1f}"
        )
    ratio_cpu = med("compare", "cpu_s") / med("single", "cpu_s")
    ratio_mem = growth("compare") / max(growth("single"), 1e-9)
    out.append(f"   ratio compare/single: CPU {ratio_cpu:.2f}x (3 providers), "
               f"RSS growth {ratio_mem:.2f}x, peak RSS "
               f"{med('compare', 'peak_rss_mb') / med('single', 'peak_rss_mb'):.2f}x")  # fmt: skip
    finals = runs["compare"][0]["finals"]
    out.append(f"   finals per provider (compare): {finals}; single: {runs['single'][0]['finals']}")
    return {"cpu_ratio": ratio_cpu, "rss_growth_ratio": ratio_mem, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short files, one round")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/compare.txt")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    realtime_s, fast_s, rounds = (10.0, 120.0, 1) if args.quick else (30.0, 600.0, 3)
    started = time.perf_counter()
    out = ["CompareSession benchmark: three providers through the tee vs one session",
           *bench.machine_lines(), ""]  # fmt: skip
    out += __doc__[__doc__.index("Method:") :].strip().splitlines()
    out.append("")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "script.json"
        script.write_text(json.dumps(bench.make_script(max(realtime_s, fast_s))))
        server = ServeProcess(["--engine", "script", "--script", str(script), "--no-rate-limit",
                               "--log-level", "WARNING"], log=work / "server.log")  # fmt: skip
        try:
            for seconds, fast in ((realtime_s, False), (fast_s, True)):
                wav = bench.write_wav(work / f"audio-{seconds:.0f}.wav", seconds)
                section(server.url, wav, seconds, fast, rounds, out)
                out.append("")
        finally:
            server.close()
    out.append(f"total {time.perf_counter() - started:.0f} s; load average at end "
               f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    text = "\n".join(out) + "\n"
    print(text)
    if args.save:
        (REPO / "benchmarks" / "results" / "compare.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
