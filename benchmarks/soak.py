"""Soak: two hours of audio clock through one session, a drop every few minutes, one slow stop.

Run: ``flock /tmp/livetx-bench.lock .venv/bin/python benchmarks/soak.py [--quick] [--save]
[--no-heap]`` (``--quick``: 10 minutes of audio clock, a drop every 2 minutes; ``--save``
writes ``benchmarks/results/soak.txt``; ``--no-heap``: the RSS pass only). Memory figures are
only comparable on a quiet machine, hence the lock.

Method. A ``TranscriptionSession`` (Deepgram protocol) streams a WAV file of timecoded audio
(``script_engine.timecode_pcm``: every sample carries its own index) to an in-process
``LocalServer`` whose script engine reads the timecode (``timecode=True``), so that after a
reconnect the server hears the replayed audio where it really is, as a real recognizer would.
Sped up: the file is read with ``realtime=False`` and the session's pacing is off
(``pace=False``; Deepgram accepts audio faster than real time and the local server applies no
rate limit to it), so two hours of audio take a few minutes of wall time. The script is
``benchmarks/session.py``'s ``make_script`` (sentences of 6-22 words, one utterance each).

Faults (``server/faults.py``): every connection is dropped (TCP abort, no close frame) after
``drop_every_s`` of audio frames, so the session reconnects and replays what was not final,
over and over; once the audio clock passes the end, ``stop()`` meets a server that holds its
closing ``Metadata`` for ``SLOW_TERMINAL_S`` (``terminal_delay_s``): the stop must wait for it
and still end within its timeout.

Two passes of the same run, because a profiler is not free: tracemalloc stores a trace for
every live block, and those tables (and the fragmentation they leave behind) are counted in
the RSS; with it on, the RSS grew about twice as fast as the product's own memory and the run
took 2.4 times as long (``tm MB`` in the report is tracemalloc's own memory,
``tracemalloc.get_tracemalloc_memory()``). So:

- the RSS pass, tracemalloc off: RSS (``/proc/self/status``), glibc's free bytes held in its
  arenas (``mallinfo2().fordblks``: fragmentation), threads, reconnects, finals, transcript
  words, sampled every half second of wall time; its transcript, reconnects, stop and
  threads are the figures;
- the heap pass, tracemalloc on (one frame), the same run in a child process at the same
  time: the Python heap over time and after stop (its RSS column is shown but not used).

RSS growth is counted from the end of the first part (10 minutes of audio, or a quarter of a
short run), once the session's buffers have filled; it is also given per transcript word
added, since the transcript is expected to grow (a word costs its ``Word``, its text and its
segment's share). Diagnosis only: ``MALLOC_ARENA_MAX=2`` in the environment (printed in the
report's header) tells arena fragmentation from threads apart from real growth.

At the end the transcript is compared with the script: every scripted word present,
in order (difflib over the normalized words), none twice, each at its scripted time (the
session's clock kept across every reconnect), segments in order without overlap; in both
passes.
"""

from __future__ import annotations

import argparse
import ctypes
import difflib
import gc
import itertools
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import tracemalloc
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from figure import Figure, JsonChild, load_file, table  # noqa: E402

RATE = 16000
SLOW_TERMINAL_S = 2.0
KEY = "soak-key"
TIME_TOLERANCE_S = 0.002  # the wire carries times to the millisecond


def _session_bench():
    return load_file("livetx_benchmark_session", REPO / "benchmarks" / "session.py")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


def malloc_free_mb() -> float:
    """Bytes glibc's malloc holds free in its arenas (``mallinfo2().fordblks``): RSS that no
    live block uses, i.e. fragmentation. NaN off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc.mallinfo2().fordblks / 2**20
    except (OSError, AttributeError):
        return float("nan")


def write_timecoded_wav(path: Path, seconds: float) -> Path:
    from livetx_widgets.server.script_engine import timecode_pcm

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        done = 0.0
        while done < seconds:  # a minute at a time: bounded memory
            step = min(60.0, seconds - done)
            w.writeframes(timecode_pcm(step, RATE, start_s=done))
            done += step
    return path


@dataclass
class Sample:
    wall_s: float
    audio_s: float
    rss_mb: float
    heap_mb: float
    threads: int
    reconnects: int
    segments: int
    words: int = 0
    profiler_mb: float = 0.0  # tracemalloc's own tables
    malloc_free_mb: float = 0.0


@dataclass
class SoakResult:
    audio_s: float
    drop_every_s: float
    wall_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    stop_s: float = 0.0
    reconnects: int = 0
    drops: int = 0
    error: str = ""
    scripted: int = 0
    transcribed: int = 0
    in_order: int = 0
    duplicates: int = 0
    max_time_error_s: float = 0.0
    time_errors: int = 0
    overlaps: int = 0
    threads_after: list[str] = field(default_factory=list)
    summary: bool = False
    peak_heap_mb: float = 0.0
    heap: bool = True  # tracemalloc was on
    session_bytes: int = 0  # heap pass: what the stopped session held (see below)

    def first_part(self) -> Sample:
        """The sample that ends the first part (10 min of audio, or a quarter of a short run):
        growth is counted from there, once the session's buffers have filled."""
        mark = min(600.0, self.audio_s / 4)
        return next((s for s in self.samples if s.audio_s >= mark), self.samples[0])

    def growth_per_word(self, attr: str) -> float:
        """Bytes of ``attr`` (``rss_mb``, ``heap_mb``) grown per transcript word added since
        the first part."""
        first, last = self.first_part(), self.samples[-1]
        words = last.words - first.words
        return (getattr(last, attr) - getattr(first, attr)) * 2**20 / words if words else 0.0

    def session_bytes_per_word(self) -> float:
        """The heap the stopped session holds (``session_bytes``: its transcript, metadata and
        what is left of its buffers) per transcript word: what a word costs, all included.
        Heap growth between two samples mid-run says less at this scale: the unacknowledged
        audio in the ledger and the server's buffers (up to a drop's worth) comes and goes."""
        words = self.samples[-1].words
        return self.session_bytes / words if words else 0.0

    @property
    def completeness(self) -> float:
        return 100.0 * self.in_order / self.scripted if self.scripted else 0.0


def _norm(text: str) -> str:
    return re.sub(r"[^\w']", "", text).lower()


def compare(script: dict, transcript) -> dict:
    """Scripted words against the transcript's final words: order, times, duplicates."""
    want = [(w["text"], w["start"]) for w in script["words"]]
    segments = [s for s in transcript.segments if s.is_final]
    got = [(w.text, w.start) for s in segments for w in s.words]
    a, b = [_norm(t) for t, _ in want], [_norm(t) for t, _ in got]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    in_order, time_errors, max_err = 0, 0, 0.0
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            in_order += 1
            err = abs(want[block.a + k][1] - got[block.b + k][1])
            max_err = max(max_err, err)
            time_errors += err > TIME_TOLERANCE_S
    starts = [w.start for s in segments for w in s.words]
    duplicates = sum(1 for x, y in itertools.pairwise(starts) if y <= x - 1e-9) + max(
        0, len(b) - len(a)
    )
    overlaps = sum(1 for s, t in itertools.pairwise(segments) if t.start < s.end - 1e-6)
    return {"scripted": len(a), "transcribed": len(b), "in_order": in_order,
            "time_errors": time_errors, "max_time_error_s": max_err,
            "duplicates": duplicates, "overlaps": overlaps}  # fmt: skip


def soak(audio_s: float, drop_every_s: float, seed: int = 15, heap: bool = True) -> SoakResult:
    from livetx_widgets import TranscriptionSession, WavFile
    from livetx_widgets.server import Faults, LocalServer, Trigger

    result = SoakResult(audio_s, drop_every_s, heap=heap)
    script = _session_bench().make_script(audio_s, seed=seed)
    frames_per_drop = round(drop_every_s / 0.05)  # the session sends 50 ms frames
    faults = Faults(drop_when=Trigger(frames=frames_per_drop), terminal_delay_s=SLOW_TERMINAL_S)
    with tempfile.TemporaryDirectory(prefix="livetx-soak-") as tmp:
        # a margin past the script: stop() comes while audio still flows
        wav = write_timecoded_wav(Path(tmp) / "soak.wav", audio_s + 60)
        with LocalServer(engine="script", script=script, rate_limit=False,
                         engine_options={"timecode": True}, faults=faults,
                         idle_timeout_s=30.0) as srv:  # fmt: skip
            session = TranscriptionSession(
                "deepgram", source=WavFile(wav, realtime=False), url=srv.url, api_key=KEY,
                pace=False, max_reconnects=10, stop_timeout=SLOW_TERMINAL_S + 8,
                options={"punctuate": True},
            )  # fmt: skip
            if heap:
                tracemalloc.start()
            done = threading.Event()
            t0 = time.monotonic()

            def sample() -> None:
                meta = session.metadata
                traced = tracemalloc.get_traced_memory()[0] / 2**20
                result.samples.append(Sample(
                    time.monotonic() - t0, meta.audio_sent_s, rss_mb(), traced,
                    threading.active_count(), meta.reconnects, len(session.transcript),
                    sum(1 for _ in session.transcript.words()),
                    tracemalloc.get_tracemalloc_memory() / 2**20, malloc_free_mb(),
                ))  # fmt: skip

            def sampler() -> None:
                while not done.wait(0.5):  # ends when the run sets done
                    sample()

            sample()
            thread = threading.Thread(target=sampler, name="soak-sampler")
            thread.start()
            try:
                session.start()
                deadline = time.monotonic() + max(600.0, audio_s)  # a bound, never reached
                while time.monotonic() < deadline and session.running:
                    if session.metadata.audio_sent_s >= audio_s:
                        break
                    time.sleep(0.05)  # polling the sender's position: there is no event
                t_stop = time.monotonic()
                session.stop()
                result.stop_s = time.monotonic() - t_stop
            finally:
                done.set()
                thread.join()
            sample()
            result.wall_s = time.monotonic() - t0
            result.peak_heap_mb = tracemalloc.get_traced_memory()[1] / 2**20
            meta = session.metadata
            result.reconnects = meta.reconnects
            result.drops = sum(1 for r in srv.sessions if r.dropped)
            error = session.error
            result.error = f"{type(error).__name__}: {error}" if error else ""
            result.summary = bool(meta.raw.get("deepgram_metadata") or meta.raw.get("metadata")
                                  or meta.audio_duration_s)  # fmt: skip
            for key, value in compare(script, session.transcript).items():
                setattr(result, key, value)
        result.threads_after = sorted(t.name for t in threading.enumerate()
                                      if t.name.startswith("livetx-"))  # fmt: skip
        if heap:
            # What the stopped session still holds (its transcript above all): the heap with
            # it and without it, the server gone in both.
            gc.collect()
            with_session = tracemalloc.get_traced_memory()[0]
            session = None  # the only reference (the sampler's closure reads this cell)
            gc.collect()
            result.session_bytes = with_session - tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
    return result


JSON_MARKER = "LIVETX-SOAK-JSON "


def soak_twice(audio_s: float, drop_every_s: float, seed: int = 15) -> Passes:
    """The RSS pass (tracemalloc off) here and the heap pass (tracemalloc on) in a child
    process, side by side: each process's memory is its own, and the two take the time of the
    slower (the heap pass; each pass is about one core's work)."""
    child = JsonChild([__file__, "--heap-pass", "--minutes", repr(audio_s / 60),
                       "--drop-every", repr(drop_every_s / 60), "--seed", str(seed)],
                      JSON_MARKER)  # fmt: skip
    try:
        rss = soak(audio_s, drop_every_s, seed, heap=False)
        data = child.result(timeout=max(1800.0, 2 * audio_s))
    finally:
        child.close()
    heap = SoakResult(**{**data, "samples": [Sample(**x) for x in data["samples"]]})
    return Passes(rss, heap)


@dataclass
class Passes:
    rss: SoakResult  # tracemalloc off: RSS, threads, transcript, timing
    heap: SoakResult | None  # tracemalloc on: the Python heap (None: not measured)


def figures_from(p: Passes) -> list[Figure]:
    b, r = "soak", p.rss
    first, last = r.first_part(), r.samples[-1]
    errors = sum(1 for x in (p.rss, p.heap) if x is not None and x.error)
    out = [
        Figure(b, f"audio clock streamed ({r.audio_s / 60:.0f} min, drop every "
               f"{r.drop_every_s / 60:g} min)", round(last.audio_s / 60, 1), "min",
               round(r.audio_s / 60, 1), "higher", note=f"{r.wall_s:.0f} s wall"),
        Figure(b, "scripted words present, in order", round(min(
            x.completeness for x in (p.rss, p.heap) if x is not None), 3), "%", 100.0,
            "higher", note="the lower of both passes"),
        Figure(b, "words off their scripted time", r.time_errors, "", 0, "equal"),
        Figure(b, "words twice or out of order", r.duplicates, "", 0, "equal"),
        Figure(b, "final segments overlapping the next", r.overlaps, "", 0, "equal",
               note="segment bounds, not words"),
        Figure(b, "reconnects (one per drop)", r.reconnects, "", max(1, r.drops), "equal"),
        Figure(b, "slow-terminal stop() duration", round(r.stop_s, 2), "s",
               SLOW_TERMINAL_S + 8, "lower", note=f"Metadata held {SLOW_TERMINAL_S:g} s"),
        Figure(b, "session error", errors, "", 0, "equal"),
        Figure(b, "RSS growth after the first part", round(last.rss_mb - first.rss_mb, 1), "MB",
               50.0, "lower", note="tracemalloc off"),
        Figure(b, "RSS growth per transcript word", round(r.growth_per_word("rss_mb")), "B",
               None, "lower", note="tracemalloc off"),
    ]  # fmt: skip
    if p.heap is not None:
        h = p.heap
        out += [
            Figure(b, "Python heap at the end", round(h.samples[-1].heap_mb, 1), "MB", 50.0,
                   "lower", note="tracemalloc pass"),
            Figure(b, "Python heap the stopped session holds per word",
                   round(h.session_bytes_per_word()), "B", None, "lower",
                   note="its transcript and all else it keeps, / its words"),
        ]  # fmt: skip
    out.append(Figure(b, "threads left after stop", len(r.threads_after) + (
        len(p.heap.threads_after) if p.heap else 0), "", 0, "equal"))  # fmt: skip
    return out


def figures(quick: bool) -> list[Figure]:
    return figures_from(soak_twice(600.0, 120.0) if quick else soak_twice(7200.0, 180.0))


def _pass_lines(r: SoakResult) -> list[str]:
    lines = [
        f"{'audio min':>9} {'wall s':>7} {'RSS MB':>7} {'heap MB':>8} {'threads':>7} "
        f"{'reconn':>6} {'segments':>8} {'words':>6} {'tm MB':>6} {'free MB':>7}",
    ]
    marks, step = [], max(60.0, r.audio_s / 12)
    next_mark = 0.0
    for s in r.samples:
        if s.audio_s >= next_mark:
            marks.append(s)
            next_mark = s.audio_s + step
    if r.samples and marks[-1] is not r.samples[-1]:
        marks.append(r.samples[-1])
    for s in marks:
        heap = f"{s.heap_mb:>8.2f}" if r.heap else f"{'-':>8}"
        lines.append(f"{s.audio_s / 60:>9.1f} {s.wall_s:>7.1f} {s.rss_mb:>7.1f} {heap} "
                     f"{s.threads:>7} {s.reconnects:>6} {s.segments:>8} {s.words:>6} "
                     f"{s.profiler_mb:>6.1f} {s.malloc_free_mb:>7.1f}")  # fmt: skip
    first, last = r.first_part(), r.samples[-1]
    lines += [
        f"drops {r.drops}, reconnects {r.reconnects}; stop() took {r.stop_s:.2f} s "
        f"(closing summary held {SLOW_TERMINAL_S:g} s); error: {r.error or 'none'}",
        f"transcript: {r.scripted} scripted words, {r.transcribed} transcribed, {r.in_order} "
        f"present in order ({r.completeness:.3f}%), {r.duplicates} twice/out of order, "
        f"{r.overlaps} overlapping segments, {r.time_errors} off their scripted time "
        f"(max error {r.max_time_error_s * 1000:.1f} ms)",
        f"after the first part ({first.audio_s / 60:.1f} min, {first.words} words) to the end "
        f"({last.words} words): RSS +{last.rss_mb - first.rss_mb:.1f} MB "
        f"({r.growth_per_word('rss_mb'):.0f} B per word)"
        + (f", heap +{last.heap_mb - first.heap_mb:.1f} MB; the stopped session holds "
           f"{r.session_bytes / 2**20:.1f} MB ({r.session_bytes_per_word():.0f} B per word); "
           f"tracemalloc's own tables "
           f"+{last.profiler_mb - first.profiler_mb:.1f} MB; peak heap {r.peak_heap_mb:.1f} MB"
           if r.heap else "")
        + f"; threads after stop: {r.threads_after or 0}",
    ]  # fmt: skip
    return lines


def report(p: Passes, quick: bool) -> str:
    r = p.rss
    lines = [
        "Soak: one session, hours of audio clock, drops, a slow-terminal stop "
        "(benchmarks/soak.py)" + (" --quick" if quick else ""),
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
        f"{os.getloadavg()[0]:.2f}; MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '-')}",
        f"method: Deepgram protocol, WavFile(realtime=False) of timecoded audio, pace=False, "
        f"LocalServer script engine (timecode=True); every connection dropped after "
        f"{r.drop_every_s:g} s of audio frames; Metadata held {SLOW_TERMINAL_S:g} s at the end",
        "columns: tm MB = tracemalloc's own tables; free MB = malloc's free bytes in its "
        "arenas (mallinfo2 fordblks)",
        "",
        "RSS pass (tracemalloc off):",
        *_pass_lines(r),
    ]
    if p.heap is not None:
        lines += ["", "heap pass (tracemalloc on, 1 frame; its RSS includes tracemalloc's "
                  "tables, so the RSS figures come from the pass above):",
                  *_pass_lines(p.heap)]  # fmt: skip
    lines += ["", table(figures_from(p))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 min of audio, a drop every 2 min")
    ap.add_argument("--minutes", type=float, help="audio clock to stream (default 120)")
    ap.add_argument("--drop-every", type=float, help="minutes of audio between drops")
    ap.add_argument("--no-heap", action="store_true",
                    help="the RSS pass only (no tracemalloc pass)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--heap-pass", action="store_true", help=argparse.SUPPRESS)  # soak_twice
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/soak.txt")
    args = ap.parse_args(argv)
    minutes = args.minutes or (10 if args.quick else 120)
    drop = args.drop_every or (2 if args.quick else 3)
    if args.heap_pass:
        result = soak(minutes * 60, drop * 60, args.seed, heap=True)
        print(JSON_MARKER + json.dumps(asdict(result)), flush=True)
        return 0
    if args.no_heap:
        passes = Passes(soak(minutes * 60, drop * 60, args.seed, heap=False), None)
    else:
        passes = soak_twice(minutes * 60, drop * 60, args.seed)
    text = report(passes, args.quick)
    print(text)
    if args.save:
        (REPO / "benchmarks" / "results" / "soak.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
