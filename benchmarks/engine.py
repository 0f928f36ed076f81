"""Benchmark the offline whisper engine as a live stream: latency, speed and accuracy.

Run under the shared lock (the machine is shared; only one timing benchmark at a time):
``flock /tmp/livetx-bench.lock .venv/bin/python benchmarks/engine.py`` (``--save`` writes
``benchmarks/results/engine.txt``; ``--set end_silence_s=0.3`` changes the engine settings;
``--compare NAME:key=value,key=value`` (repeatable) adds configurations measured side by side
in the same run, interleaved run by run so that the machine's load weighs on each alike).

Modes (``--modes``, comma-separated):

- ``engine``: each recording fed to one ``WhisperStream`` in 50 ms chunks on a simulated audio
  clock: chunk ``i`` arrives when the clock reaches its end; the engine starts on it when it
  arrives or when it has finished the previous chunk, whichever is later, and its results are
  stamped with the clock at which ``feed`` returned. A recognizer that keeps up thus sees
  real-time pacing, one that falls behind is charged for it in every latency. RTF: time
  inside feed/close (VAD, partial re-decodes, finals) over the audio's duration.
- ``engine2``: two streams of the same engine at once, each in its own thread, fed at real time
  on the wall clock (the second starts 1.3 s after the first, so their turns overlap
  differently); results stamped with the wall clock from each stream's audio origin.
- ``session``: what a user sees: ``TranscriptionSession(provider="local")`` reading the WAV at
  real time (``realtime=True``) through the in-process server (Deepgram protocol, websocket,
  transcript model), connected to a ``LocalServer`` running the configuration's engine;
  partials and finals stamped when the session's listeners get them, against the wall time
  at which the source handed out the audio (its first read is the audio clock's origin).
- ``session2``: two such sessions at once on one server (one shared model), offset 1.3 s.

Measured per utterance (one per final). Where speech starts and ends comes from the audio,
never from the engine under test (the rule of ``livetx compare``, ``compare/metrics.py``): the
energy VAD ``speech_regions`` over the WAV (20 ms frames, 12 dB over the noise floor), clipped
to the final's span. First partial: time at the utterance's first partial minus the start of
its first speech; final: time at the final minus the end of its last speech (the endpoint wait
included). Until December 2026 the references were the final's own word times, and Whisper's
cross-attention alignment pins an utterance's first word to the start of its clip, which
includes ``preroll_s`` (0.3 s) of audio before the voice: every first partial was charged
~0.3 s it did not take (``--aligned`` prints both; the per-utterance table shows the offset).
WER: the concatenated finals against the approximate transcripts of the shared README. Per
file and mode the run with the median first-partial p50 is reported (``--runs``), with the
load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from livetx_widgets.compare.metrics import frame_loudness, speech_regions  # noqa: E402
from livetx_widgets.server.wer import wer  # noqa: E402
from livetx_widgets.server.whisper import WhisperEngine  # noqa: E402

SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
FILES = ("short-16k.wav", "dialogue-16k.wav")
MODES = ("engine", "engine2", "session", "session2")
OFFSET_S = 1.3  # the second concurrent stream starts this much later
TARGETS = (
    "targets: first partial p50 <= 0.5 s (p95 <= 0.8 s); final p50 <= 0.4 s (p95 <= 0.7 s); "
    "RTF <= 0.2"
)


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


FRAME_S = 0.02  # the energy VAD's frame (as the compare tee's)


def speech_of(pcm: bytes, rate: int) -> list[tuple[float, float]]:
    """Where the recording holds speech, from its loudness alone (``speech_regions``)."""
    return speech_regions(frame_loudness(pcm, round(FRAME_S * rate)), FRAME_S)


@dataclass
class Run:
    """One stream: (time, kind, words as (start, end) pairs, text, (start, end) of the
    segment) events."""

    audio_s: float
    compute_s: float | None = None
    events: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def rtf(self) -> float | None:
        return None if self.compute_s is None else self.compute_s / self.audio_s


def _event(clock: float, r) -> tuple:
    return (clock, r.kind, [(w.start, w.end) for w in r.words], r.text, (r.start, r.end))


# -- engine modes --------------------------------------------------------------------------


def stream_simulated(engine: WhisperEngine, pcm: bytes, rate: int, chunk_s: float) -> Run:
    """Feed ``pcm`` on the simulated audio clock; return every result with its clock time."""
    s = engine.open_stream(rate)
    step = round(chunk_s * rate) * 2
    run = Run(audio_s=len(pcm) / 2 / rate, compute_s=0.0)
    free = 0.0  # clock time at which the engine is free again
    for off in range(0, len(pcm), step):
        chunk = pcm[off : off + step]
        arrival = (off + len(chunk)) / 2 / rate
        begin = max(arrival, free)
        t0 = time.perf_counter()
        results = s.feed(chunk)
        spent = time.perf_counter() - t0
        run.compute_s += spent
        free = begin + spent
        run.events += [_event(free, r) for r in results if r.kind != "speech_started"]
    t0 = time.perf_counter()
    results = s.close()
    spent = time.perf_counter() - t0
    run.compute_s += spent
    free = max(free, run.audio_s) + spent
    run.events += [_event(free, r) for r in results if r.kind != "speech_started"]
    run.stats = dict(s.stats)
    return run


def stream_realtime(
    engine: WhisperEngine, pcm: bytes, rate: int, chunk_s: float, start_at: float
) -> Run:
    """Feed ``pcm`` at real time on the wall clock from ``start_at`` (a perf_counter time)."""
    s = engine.open_stream(rate)
    step = round(chunk_s * rate) * 2
    run = Run(audio_s=len(pcm) / 2 / rate, compute_s=0.0)
    for off in range(0, len(pcm), step):
        chunk = pcm[off : off + step]
        due = start_at + (off + len(chunk)) / 2 / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        t0 = time.perf_counter()
        results = s.feed(chunk)
        spent = time.perf_counter() - t0
        run.compute_s += spent
        run.events += [_event(t0 + spent - start_at, r) for r in results]
    t0 = time.perf_counter()
    results = s.close()
    run.compute_s += time.perf_counter() - t0
    run.events += [_event(time.perf_counter() - start_at, r) for r in results]
    run.events = [e for e in run.events if e[1] != "speech_started"]
    run.stats = dict(s.stats)
    return run


def concurrently(jobs) -> list:
    """Run the callables at once, one thread each (joined); return their results in order."""
    results: list = [None] * len(jobs)
    errors: list = []

    def work(i, job):
        try:
            results[i] = job()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, j), daemon=True) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]
    return results


def engine2(engine: WhisperEngine, pcm: bytes, rate: int, chunk_s: float) -> list[Run]:
    t0 = time.perf_counter() + 0.2
    return concurrently(
        [
            lambda: stream_realtime(engine, pcm, rate, chunk_s, t0),
            lambda: stream_realtime(engine, pcm, rate, chunk_s, t0 + OFFSET_S),
        ]
    )


# -- session modes ---------------------------------------------------------------------------


def session_run(url: str, path: Path, start_at: float) -> Run:
    """One ``TranscriptionSession(provider="local")`` on ``url``, its WAV read at real time."""
    from livetx_widgets import TranscriptionSession, WavFile
    from livetx_widgets.audio.base import AudioSource

    class OriginSource(AudioSource):
        """The real-time WAV; its first read (at ``start_at``) is the audio clock's origin."""

        def __init__(self):
            super().__init__()
            self.inner = WavFile(str(path), realtime=True)
            self.realtime = True
            self.duration_s = self.inner.duration_s
            self.origin: float | None = None

        def start(self) -> None:
            self.inner.start()

        def read(self, timeout: float | None = None) -> bytes | None:
            if self.origin is None:
                time.sleep(max(0.0, start_at - time.perf_counter()))
                self.origin = time.perf_counter()
            chunk = self.inner.read(timeout)
            self.position_s = self.inner.position_s
            return chunk

        def stop(self) -> None:
            self.inner.stop()

    source = OriginSource()
    raw: list[tuple] = []
    lock = threading.Lock()

    def on_partial(event):
        with lock:
            raw.append((time.perf_counter(), "partial", [], event.text, None))

    def on_final(seg):
        with lock:
            raw.append((time.perf_counter(), "final", [(w.start, w.end) for w in seg.words],
                        seg.text, (seg.start, seg.end)))  # fmt: skip

    session = TranscriptionSession(
        provider="local", url=url, source=source, on_partial=on_partial, on_final=on_final
    )
    with session:
        session.wait(source.duration_s + 60)
    if session.error:
        raise RuntimeError(f"session failed: {session.error}")
    run = Run(audio_s=source.duration_s)
    run.events = [(t - source.origin, *rest) for t, *rest in raw]
    return run


def session_mode(engine: WhisperEngine, path: Path, n: int) -> list[Run]:
    from livetx_widgets.server import LocalServer

    with LocalServer(engine=engine, rate_limit=False) as srv:
        t0 = time.perf_counter() + 0.5
        return concurrently(
            [(lambda i=i: session_run(srv.url, path, t0 + i * OFFSET_S)) for i in range(n)]
        )


# -- metrics ---------------------------------------------------------------------------------


def utterance_metrics(run: Run, speech: list[tuple[float, float]]) -> dict:
    """Latencies per final: first partial after its speech starts, final after it ends.

    ``speech`` is where the audio holds speech (``speech_of``); each final's reference is
    the speech inside its segment. ``aligned_*`` are the same latencies against the final's
    own first and last word times (the old reference), and ``offsets`` how much earlier the
    first aligned word starts than the speech does.
    """
    m = {"first_partial": [], "final": [], "no_partial": 0, "aligned_first_partial": [],
         "aligned_final": [], "offsets": []}  # fmt: skip
    pending = None
    for clock, kind, words, _text, span in run.events:
        if kind == "partial" and pending is None:
            pending = clock
        elif kind == "final":
            inside = [(max(a, span[0]), min(b, span[1])) for a, b in speech
                      if b > span[0] and a < span[1]]  # fmt: skip
            if words and inside:
                onset, end = inside[0][0], inside[-1][1]
                m["final"].append(clock - end)
                m["aligned_final"].append(clock - words[-1][1])
                m["offsets"].append(onset - words[0][0])
                if pending is None:
                    m["no_partial"] += 1
                else:
                    m["first_partial"].append(pending - onset)
                    m["aligned_first_partial"].append(pending - words[0][0])
            pending = None
    return m


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def parse_settings(items: list[str]) -> dict:
    settings = {}
    for item in items:
        for part in filter(None, item.split(",")):
            key, _, value = part.partition("=")
            try:
                settings[key.strip()] = int(value) if value.isdigit() else float(value)
            except ValueError:
                settings[key.strip()] = value
    return settings


@dataclass
class Cell:
    """Every run of one (configuration, mode, file)."""

    runs: list = field(default_factory=list)  # lists of Run (one per concurrent stream)


def summarize(cell: Cell, ref: str, speech: list[tuple[float, float]]) -> dict:
    """The median run (by first-partial p50) of a cell, its metrics pooled over its streams."""
    scored = []
    for streams in cell.runs:
        first, final, missing, rtfs, errors, partials, skipped = [], [], 0, [], [], 0, 0
        aligned_first, aligned_final, offsets = [], [], []
        for run in streams:
            m = utterance_metrics(run, speech)
            first += m["first_partial"]
            final += m["final"]
            missing += m["no_partial"]
            aligned_first += m["aligned_first_partial"]
            aligned_final += m["aligned_final"]
            offsets += m["offsets"]
            if run.rtf is not None:
                rtfs.append(run.rtf)
            hyp = " ".join(e[3] for e in run.events if e[1] == "final")
            errors.append(wer(ref, hyp))
            partials += run.stats.get("partials", 0)
            skipped += run.stats.get("partials_skipped", 0)
        scored.append({
            "first": first, "final": final, "missing": missing, "partials": partials,
            "skipped": skipped, "rtf": max(rtfs) if rtfs else None, "wer": max(errors),
            "utts": len(final), "key": pct(first, 50), "aligned_first": aligned_first,
            "aligned_final": aligned_final, "offsets": offsets,
        })  # fmt: skip
    scored.sort(key=lambda s: (np.nan_to_num(s["key"], nan=9.0)))
    return scored[len(scored) // 2]


def row(label: str, s: dict) -> str:
    rtf = "-" if s["rtf"] is None else f"{s['rtf']:.3f}"
    first = f"{pct(s['first'], 50):.2f}/{pct(s['first'], 95):.2f}"
    fin = f"{pct(s['final'], 50):.2f}/{pct(s['final'], 95):.2f}"
    return (
        f"{label:<30}{rtf:>7}{s['utts']:>5}{s['partials']:>6}{s['skipped']:>6}{s['missing']:>6}"
        f"{first:>13}{fin:>13}{s['wer']:>7.3f}"
    )


HEADER = (
    f"{'file / configuration':<30}{'RTF':>7}{'utts':>5}{'prt':>6}{'skip':>6}{'none':>6}"
    f"{'1st p50/p95':>13}{'fin p50/p95':>13}{'WER':>7}"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per file and mode (median shown)")
    ap.add_argument("--chunk-ms", type=int, default=50)
    ap.add_argument("--model", default=None, help="model directory (default: bundled tiny.en)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/engine.txt")
    ap.add_argument("--title", default="", help="a line saying what this run compares")
    ap.add_argument("--aligned", action="store_true",
                    help="also print the latencies against the final's own word times")
    args = ap.parse_args(argv)

    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    files = [f for f in args.files.split(",") if f]
    configs = [("defaults" if not args.set else "set", parse_settings(args.set))]
    for item in args.compare:
        name, _, rest = item.partition(":")
        configs.append((name, {**configs[0][1], **parse_settings([rest])}))
    engines = {}
    t0 = time.perf_counter()
    for name, settings in configs:
        engines[name] = WhisperEngine(args.model, **settings).load()
    load_s = time.perf_counter() - t0
    refs = reference_transcripts(SHARED / "audio" / "README.md")
    audio = {f: read_wav(SHARED / "audio" / f) for f in files}
    speech = {f: speech_of(*audio[f]) for f in files}
    chunk_s = args.chunk_ms / 1000

    cells: dict[tuple[str, str, str], Cell] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(max(1, args.runs)):
        for mode in modes:
            for f in files:
                pcm, rate = audio[f]
                for name, _settings in configs:
                    eng = engines[name]
                    if mode == "engine":
                        streams = [stream_simulated(eng, pcm, rate, chunk_s)]
                    elif mode == "engine2":
                        streams = engine2(eng, pcm, rate, chunk_s)
                    elif mode == "session":
                        streams = session_mode(eng, SHARED / "audio" / f, 1)
                    else:
                        streams = session_mode(eng, SHARED / "audio" / f, 2)
                    cells.setdefault((mode, f, name), Cell()).runs.append(streams)
                    loads.append(os.getloadavg()[0])

    lines = [
        "whisper engine, streamed live; latencies in seconds on the audio clock",
        *([args.title] if args.title else []),
        f"model: {next(iter(engines.values()))!r}; configurations: "
        + "; ".join(f"{n} = {s or 'defaults'}" for n, s in configs),
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}; model loads {load_s:.2f} s",
        f"chunks: {args.chunk_ms} ms; runs: {args.runs} per cell (median by 1st-partial p50); "
        "prt/skip: partials shown/skipped by the budget; none: utterances without a partial",
        f"load average during the runs: {statistics.mean(loads):.2f} "
        f"(min {min(loads):.2f}, max {max(loads):.2f}) on {os.cpu_count()} cores",
        TARGETS,
    ]
    for mode in modes:
        lines += ["", f"[{mode}]", HEADER]
        pooled: dict[str, dict] = {}
        for f in files:
            for name, _ in configs:
                s = summarize(cells[(mode, f, name)], refs.get(f, ""), speech[f])
                lines.append(row(f"{f} / {name}", s))
                p = pooled.setdefault(name, {k: [] for k in (
                    "first", "final", "rtf", "aligned_first", "aligned_final", "offsets")})
                for key in ("first", "final", "aligned_first", "aligned_final", "offsets"):
                    p[key] += s[key]
                if s["rtf"] is not None:
                    p["rtf"].append(s["rtf"])
        for name, p in pooled.items():
            rtf = f", RTF max {max(p['rtf']):.3f}" if p["rtf"] else ""
            lines.append(
                f"  all / {name}: first partial p50 {pct(p['first'], 50):.2f} p95 "
                f"{pct(p['first'], 95):.2f}; final p50 {pct(p['final'], 50):.2f} p95 "
                f"{pct(p['final'], 95):.2f}{rtf}"
            )
            if args.aligned:
                lines.append(
                    f"  all / {name} (old reference, the final's aligned words): first "
                    f"partial p50 {pct(p['aligned_first'], 50):.2f} p95 "
                    f"{pct(p['aligned_first'], 95):.2f}; final p50 "
                    f"{pct(p['aligned_final'], 50):.2f} p95 {pct(p['aligned_final'], 95):.2f}; "
                    f"first aligned word before the speech by p50 {pct(p['offsets'], 50):.2f} "
                    f"(min {min(p['offsets'], default=float('nan')):.2f}, max "
                    f"{max(p['offsets'], default=float('nan')):.2f}) s"
                )
    out = "\n".join(lines)
    print(out)
    if args.save:
        target = REPO / "benchmarks" / "results" / "engine.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(out + "\n", encoding="utf-8")
        print(f"\nsaved to {target.relative_to(REPO)}")
    for eng in engines.values():
        eng.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
