"""Benchmark LiveTranscriber: what one update costs at any transcript length, and whether the
notebook stays responsive while a session streams.

Run: ``.venv/bin/python benchmarks/widget.py [--quick] [--save]`` (``--save`` also writes
``benchmarks/results/widget.txt``). About a minute.

1. **Per update, at 10, 1,000 and 10,000 finals** (in this process, no kernel): a widget with a
   live session (offline script engine, a queue source that stays silent) gets N finals
   committed, then a stream of partial results, exactly as the session's receiver thread
   delivers them (``Transcript.apply`` + the updater's listener). Each update is flushed by
   calling the updater's flush on this thread, timed with ``time.thread_time()`` (kernel CPU:
   reading the transcript, setting traits, building and JSON-serializing the messages), and the
   bytes the front end would receive are the JSON of every comm message that flush published.
   The same for one new final. Target: flat (the same at 10 and 10,000).
2. **Trivial-cell latency while a session streams** (a real ipykernel 7 kernel started with
   jupyter_client): round-trip time of ``execute_request("x = 1")`` -> ``execute_reply``,
   idle and while a widget in that kernel streams a WAV file in real time, first to the script
   engine, then to the Whisper engine (which also runs in the kernel's process). Blocks
   alternate idle / streaming in one run, so the ratios compare like with like. Target: the
   streaming median within 1.2x of idle. For comparison, the same Whisper engine in a separate
   ``livetx serve`` process (``url=``), which takes the engine's Python work off the kernel's
   interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from figure import ServeProcess  # noqa: E402

from livetx_widgets import LiveTranscriber, QueueSource  # noqa: E402
from livetx_widgets.events import FinalTranscript, PartialTranscript  # noqa: E402

SIZES = (10, 1_000, 10_000)


# -- 1. per update ----------------------------------------------------------------------------
class Published:
    """Replaces the widget comm's publish_msg: keeps the JSON byte count of each message."""

    def __init__(self, widget) -> None:
        self.sizes: list[int] = []
        self.kinds: list[str] = []
        widget.comm.publish_msg = self._publish

    def _publish(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        self.sizes.append(len(json.dumps(data, separators=(",", ":")).encode()))
        self.kinds.append(data.get("method", "?"))

    def take(self) -> tuple[int, int]:
        """(bytes, messages) published since the last call."""
        n, size = len(self.sizes), sum(self.sizes)
        self.sizes.clear()
        self.kinds.clear()
        return size, n


def _flush_now(updater) -> None:
    """One flush on this thread, of whatever the listeners recorded (what the flusher does)."""
    with updater._cv:
        finals, updater._pending_finals = updater._pending_finals, {}
        status, updater._status = updater._status, None
        errors, updater._errors = updater._errors, []
        updater._dirty = False
        partials = updater._partials
    updater._flush(finals, status, errors, partials, final=False)


def per_update(n_finals: int, updates: int) -> dict:
    w = LiveTranscriber(
        provider="local", source=QueueSource(), local_engine="script", local_options={}
    )
    w.start()
    deadline = time.monotonic() + 10
    while w.status != "live" and time.monotonic() < deadline:
        time.sleep(0.01)
    updater = w._updater
    # Keep the flusher thread out of the measurement: it ends at join(), and we flush here.
    updater.join()
    transcript = w.session.transcript
    for i in range(n_finals):
        event = FinalTranscript(
            f"segment number {i} of the benchmark.",
            start=i,
            end=i + 0.8,
            segment_key=f"s{i}",
            confidence=0.9,
        )
        segment = transcript.apply(event)
        updater.on_final(segment)
    pub = Published(w)
    _flush_now(updater)  # the catch-up flush (not measured)
    pub.take()
    cpu, sizes = [], []
    for i in range(updates):
        event = PartialTranscript(f"the current partial result number {i:05d}", segment_key="p")
        transcript.apply(event)
        updater.on_partial(event)
        t0 = time.thread_time()
        _flush_now(updater)
        cpu.append(time.thread_time() - t0)
        sizes.append(pub.take()[0])
    # New finals, one per update (a finals message with that segment only).
    final_cpu, final_sizes, final_msgs = [], [], 0
    for i in range(max(20, updates // 4)):
        segment = transcript.apply(
            FinalTranscript(f"one more final segment {i:05d}.", start=n_finals + i,
                            end=n_finals + i + 1, segment_key=f"new{i}", confidence=0.9)
        )  # fmt: skip
        updater.on_final(segment)
        t0 = time.thread_time()
        _flush_now(updater)
        final_cpu.append(time.thread_time() - t0)
        size, final_msgs = pub.take()
        final_sizes.append(size)
    w.session.stop(timeout=2)
    w.close()
    return {
        "n": n_finals,
        "bytes_median": statistics.median(sizes),
        "bytes_max": max(sizes),
        "cpu_us_median": statistics.median(cpu) * 1e6,
        "cpu_us_p95": sorted(cpu)[int(0.95 * (len(cpu) - 1))] * 1e6,
        "final_bytes": statistics.median(final_sizes),
        "final_msgs": final_msgs,
        "final_cpu_us": statistics.median(final_cpu) * 1e6,
    }


# -- 2. trivial-cell latency ------------------------------------------------------------------
SETUP = """
from livetx_widgets import LiveTranscriber, WavFile
def _make(engine, url=None):
    return LiveTranscriber(provider="local", source=WavFile({wav!r}, realtime=True, loop=True),
                           local_engine=engine, url=url)
"""


def _execute(client, code: str, timeout: float = 60.0) -> float:
    t0 = time.perf_counter()
    msg_id = client.execute(code, silent=False, store_history=False)
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    elapsed = time.perf_counter() - t0
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")
    return elapsed


def _drain_iopub(client, stop: threading.Event) -> None:
    """Read iopub so the kernel's messages (widget updates) never back up."""
    while not stop.is_set():
        try:
            client.get_iopub_msg(timeout=0.2)
        except Exception:  # queue.Empty: nothing this time
            continue


def _block(client, cells: int, gap_s: float) -> list[float]:
    times = []
    for _ in range(cells):
        times.append(_execute(client, "x = 1"))
        time.sleep(gap_s)  # spread the requests over the session's update cycle
    return times


def cell_latency(wav: Path, cells: int, rounds: int) -> dict:
    from jupyter_client.manager import start_new_kernel

    km, client = start_new_kernel(kernel_name="python3")
    stop = threading.Event()
    drainer = threading.Thread(target=_drain_iopub, args=(client, stop), daemon=True)
    drainer.start()
    results: dict[str, list[float]] = {"idle": [], "script": [], "whisper": [], "served": []}
    server = ServeProcess(["--engine", "whisper", "--log-level", "WARNING"], start_timeout=120,
                          stop_timeout=30)  # fmt: skip
    url = server.url
    try:
        _execute(client, SETUP.format(wav=str(wav)))
        _block(client, 10, 0.02)  # warm up
        for _ in range(rounds):
            for variant in ("script", "whisper", "served"):
                results["idle"] += _block(client, cells, 0.02)
                make = {"script": "_make('script')", "whisper": "_make('whisper')",
                        "served": f"_make('whisper', url={url!r})"}[variant]  # fmt: skip
                _execute(client, f"w = {make}; w.start()")
                _execute(client, "import time\nt0 = time.monotonic()\n"
                         "while w.status != 'live' and time.monotonic() - t0 < 30:\n"
                         "    time.sleep(0.05)\nassert w.status == 'live', w.error")  # fmt: skip
                results[variant] += _block(client, cells, 0.02)
                _execute(client, "w.stop(timeout=5); w.close()")
    finally:
        server.close()
        stop.set()
        drainer.join(5)
        client.stop_channels()
        km.shutdown_kernel(now=True)

    def summary(values: list[float]) -> dict:
        ordered = sorted(values)
        return {
            "n": len(values),
            "median_ms": statistics.median(values) * 1e3,
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1e3,
        }

    return {name: summary(values) for name, values in results.items()}


# -- report -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer updates and cells")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/widget.txt")
    args = parser.parse_args(argv)
    updates = 100 if args.quick else 400
    cells, rounds = (30, 1) if args.quick else (60, 2)
    wav = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared")) / "audio"
    wav = wav / "dialogue-16k.wav"
    if not wav.exists():
        from livetx_widgets.data import demo_wav

        wav = demo_wav()

    lines = [
        "LiveTranscriber benchmark (benchmarks/widget.py)",
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start",
        "",
        f"1. One partial update, at N finals ({updates} updates each; bytes = JSON of the comm "
        "messages the front end receives; CPU = kernel thread time of one flush)",
        f"{'N finals':>9} {'bytes/update':>13} {'max bytes':>10} {'CPU us median':>14} "
        f"{'CPU us p95':>11} | {'new final: bytes':>16} {'msgs':>5} {'CPU us':>7}",
    ]
    rows = [per_update(n, updates) for n in SIZES]
    for r in rows:
        lines.append(
            f"{r['n']:>9,} {r['bytes_median']:>13.0f} {r['bytes_max']:>10} "
            f"{r['cpu_us_median']:>14.1f} {r['cpu_us_p95']:>11.1f} | {r['final_bytes']:>16.0f} "
            f"{r['final_msgs']:>5} {r['final_cpu_us']:>7.1f}"
        )
    first, last = rows[0], rows[-1]
    lines.append(
        f"ratio 10,000 / 10 finals: bytes {last['bytes_median'] / first['bytes_median']:.3f}x, "
        f"CPU {last['cpu_us_median'] / first['cpu_us_median']:.2f}x, "
        f"new-final bytes {last['final_bytes'] / first['final_bytes']:.3f}x (target: flat)"
    )
    print("\n".join(lines), flush=True)

    lat = cell_latency(wav, cells, rounds)
    more = [
        "",
        f"2. Trivial cell (x = 1) round trip in a real ipykernel 7 kernel, {cells} cells per "
        f"block x {rounds} rounds, idle and while a widget streams {wav.name} in real time",
        f"{'state':>28} {'cells':>6} {'median ms':>10} {'p95 ms':>8} {'median vs idle':>15}",
    ]
    idle = lat["idle"]["median_ms"]
    for name, label in (("idle", "idle"), ("script", "streaming, script engine"),
                        ("whisper", "streaming, whisper engine"),
                        ("served", "whisper in its own process")):  # fmt: skip
        s = lat[name]
        more.append(
            f"{label:>28} {s['n']:>6} {s['median_ms']:>10.2f} {s['p95_ms']:>8.2f} "
            f"{s['median_ms'] / idle:>14.2f}x"
        )
    more.append("target: streaming median within 1.2x of idle")
    more.append(f"load average {os.getloadavg()[0]:.2f} at end")
    print("\n".join(more), flush=True)
    if args.save:
        out = REPO / "benchmarks" / "results" / "widget.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines + more) + "\n")
        print(f"saved {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
