"""Start/stop storms: 100 cycles of a session and 100 of the widget, faults at random phases.

Run: ``.venv/bin/python benchmarks/storms.py [--quick] [--cycles N] [--seed S] [--serial] [--save]``
(``--save`` writes ``benchmarks/results/storms.txt``). Not a timing benchmark: the figures are
counts, so it needs no lock.

Each cycle draws, from one ``random.Random(seed)``, a provider (Deepgram or AssemblyAI
protocol), a fault for the in-process ``LocalServer`` (none, a drop or a close after N frames
or after the first final, a refused upgrade, a refused key, a hanging upgrade, a server that
stops reading, a withheld or late terminal message, garbage frames, slow answers) and the phase
at which it is stopped (at once, while connecting, after the first partial, after the first
final, while paused, after the source ended). A session cycle is ``TranscriptionSession(...)``,
``start()``, the phase, ``stop(timeout)``. A widget cycle is what a notebook does without a
browser, through the kernel-side API (as ``tests/widget/test_teardown.py`` drives it):
construct, display (``_repr_mimebundle_`` and the front end's ``hello``), the Start button's
message, the phase, the Stop button's message, ``wait``, ``close()``.

After the storm, with every reference dropped and ``gc.collect()``, it counts what is left
against the count before: ``livetx-*`` threads (the server's own excluded: it is shared),
sockets and file descriptors of this process (``/proc/self/fd``), files in the run's own
``TMPDIR`` (a fresh directory: any temporary file a cycle makes (``record_to``, the kept audio
of ``keep_audio`` once it lands) is counted, whoever makes it), sessions and widgets still
alive (weak references) or still running. Target: zero of each.

``tests/scale/test_storms.py`` runs the same cycles, fewer of them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
from figure import Figure, JsonChild, load_file, table  # noqa: E402

support = load_file("livetx_test_support", REPO / "tests" / "support.py")

KEY = "storm-key-0123456789"
SCRIPT = support.TWO_TURNS
FAULTS = ["none", "drop-frames", "close-frames", "drop-final", "refuse-503", "refuse-auth",
          "connect-hang", "stop-reading", "never-terminal", "terminal-delay", "garbage",
          "slow-answers"]  # fmt: skip
PHASES = ["at-once", "connecting", "first-partial", "first-final", "paused", "source-ended"]
STOP_TIMEOUT = 1.5
PHASE_WAIT = 5.0


def make_faults(name: str, rng: random.Random):
    from livetx_widgets.server import Faults, Trigger

    frames = rng.randint(1, 40)
    return {
        "none": Faults(),
        "drop-frames": Faults(drop_when=Trigger(frames=frames), connections=1),
        "close-frames": Faults(close_when=Trigger(frames=frames), close_code=1011, connections=1),
        "drop-final": Faults(drop_when=Trigger(finals=1), connections=1),
        "refuse-503": Faults(refuse_status=503, connections=1),
        "refuse-auth": Faults(refuse_auth=True),
        "connect-hang": Faults(connect_hang=True, connections=1),
        "stop-reading": Faults(stop_reading_when=Trigger(frames=frames)),
        "never-terminal": Faults(never_terminal=True),
        "terminal-delay": Faults(terminal_delay_s=rng.choice([0.2, 3.0])),
        "garbage": Faults(malformed_when=Trigger(frames=frames),
                          unknown_type_when=Trigger(frames=frames + 1),
                          oversized_when=Trigger(frames=frames + 2)),
        "slow-answers": Faults(response_delay_ms=rng.choice([50, 400])),
    }[name]  # fmt: skip


@dataclass
class Plan:
    provider: str
    fault: str
    phase: str
    faults: object


def plans(seed: int, cycles: int) -> list[Plan]:
    rng = random.Random(seed)
    out = []
    for _ in range(cycles):
        fault = rng.choice(FAULTS)
        out.append(Plan(rng.choice(["deepgram", "assemblyai"]), fault, rng.choice(PHASES),
                        make_faults(fault, rng)))  # fmt: skip
    return out


def tcp_sockets() -> list[tuple[int, int]]:
    """(local port, remote port) of each TCP socket this process holds (``/proc/net/tcp*``)."""
    inodes = {s[len("socket:["):-1] for s in support.socket_inodes()}
    out = []
    for family in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{family}").read_text().splitlines()[1:]:
                parts = line.split()
                if parts[9] in inodes:
                    out.append((int(parts[1].rsplit(":", 1)[1], 16),
                                int(parts[2].rsplit(":", 1)[1], 16)))  # fmt: skip
    return out


def fd_targets() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return found


@dataclass
class Census:
    """What this process holds: compared before and after a storm. Sockets are told apart by
    side: the client's (to the server's port) and the in-process server's (from its port),
    whose connections to a peer that stopped reading live until the server stops."""

    threads: list[str]
    client_sockets: int
    server_sockets: int
    tmp_files: int

    @classmethod
    def take(cls, tmpdir: Path, port: int) -> Census:
        files = sum(len(f) + len(d) for _, d, f in os.walk(tmpdir))
        tcp = tcp_sockets()
        return cls(support.livetx_threads(exclude=support.SERVER_THREADS),
                   sum(1 for _, remote in tcp if remote == port),
                   sum(1 for local, remote in tcp if local == port and remote != 0),
                   files)  # fmt: skip


@dataclass
class StormResult:
    kind: str
    cycles: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_phase: Counter = field(default_factory=Counter)
    max_stop_s: float = 0.0
    seconds: float = 0.0
    leaked_threads: list[str] = field(default_factory=list)
    leaked_sockets: int = 0
    server_lingering: int = 0
    leaked_fds: int = 0
    leaked_tmp_files: int = 0
    alive: int = 0
    running: int = 0
    problems: list[str] = field(default_factory=list)


def _tone(seconds: float) -> np.ndarray:
    return support.tone(seconds)


def _reach(phase: str, state: dict, is_paused, pause, ended) -> None:
    """Wait (bounded) until ``phase`` of a cycle; a fault may end the session first."""
    deadline = time.monotonic() + PHASE_WAIT * support.TIMING
    if phase in ("at-once", "connecting"):
        return
    for _ in range(100_000):  # bounded by the deadline
        if ended() or time.monotonic() > deadline:
            return
        if phase == "first-partial" and state["partials"]:
            return
        if phase == "first-final" and state["finals"]:
            return
        if phase == "paused" and state["partials"]:
            with contextlib.suppress(Exception):
                pause()
            return
        time.sleep(0.005)  # polling the session's own counters; bounded by the deadline


def session_cycle(plan: Plan, server, record_dir: Path | None) -> tuple[str, float]:
    from livetx_widgets import ArraySource, TranscriptionSession

    state = {"partials": 0, "finals": 0}
    kwargs = {}
    if record_dir is not None:
        kwargs["record_to"] = str(record_dir / "cycle.wav")
    session = TranscriptionSession(
        plan.provider, source=ArraySource(_tone(6.0), realtime=plan.phase != "source-ended"),
        api_key=KEY, url=server.url, stop_timeout=STOP_TIMEOUT, connect_timeout=2.0,
        max_reconnects=2,
        on_partial=lambda *_: state.__setitem__("partials", state["partials"] + 1),
        on_final=lambda *_: state.__setitem__("finals", state["finals"] + 1),
        **kwargs,
    )  # fmt: skip
    SESSIONS.add(session)
    session.start()
    if plan.phase == "source-ended":
        session.wait(10 * support.TIMING)
    else:
        _reach(plan.phase, state, lambda: session.paused, session.pause,
               lambda: not session.running)  # fmt: skip
    t0 = time.monotonic()
    session.stop()
    took = time.monotonic() - t0
    error = session.error
    return (type(error).__name__ if error else "ok"), took


def widget_cycle(plan: Plan, server) -> tuple[str, float]:
    from livetx_widgets import ArraySource, LiveTranscriber

    w = LiveTranscriber(
        provider=plan.provider, api_key=KEY, url=server.url,
        source=ArraySource(_tone(6.0), realtime=plan.phase != "source-ended"),
        stop_timeout=STOP_TIMEOUT, connect_timeout=2.0, max_reconnects=2,
    )  # fmt: skip
    WIDGETS.add(w)
    with contextlib.suppress(Exception):
        w._repr_mimebundle_()  # what display(w) asks of it

    def send(content: dict) -> None:
        w._on_front_end_msg(w, content, [])

    send({"type": "hello"})
    send({"type": "start"})
    session = w.session
    state = {"partials": 0, "finals": 0}
    if session is not None:
        session.on("partial", lambda *_: state.__setitem__("partials", state["partials"] + 1))
        session.on("final", lambda *_: state.__setitem__("finals", state["finals"] + 1))
        SESSIONS.add(session)
        if plan.phase == "source-ended":
            w.wait(10 * support.TIMING)
        else:
            _reach(plan.phase, state, lambda: w.session.paused,
                   lambda: send({"type": "pause"}), lambda: not session.running)  # fmt: skip
    t0 = time.monotonic()
    send({"type": "stop"})
    w.wait(STOP_TIMEOUT + 2)
    w.close()
    took = time.monotonic() - t0
    error = session.error if session is not None else None
    return (type(error).__name__ if error else "ok"), took


SESSIONS: weakref.WeakSet = weakref.WeakSet()
WIDGETS: weakref.WeakSet = weakref.WeakSet()


def storm(kind: str, cycles: int, seed: int, tmpdir: Path) -> StormResult:
    from livetx_widgets.server import LocalServer

    result = StormResult(kind)
    record_dir = Path(tempfile.mkdtemp(prefix="rec-", dir=tmpdir))
    with LocalServer(engine="script", script=SCRIPT, api_key=KEY, rate_limit=False,
                     idle_timeout_s=3.0) as server:  # fmt: skip
        port = int(server.url.rsplit(":", 1)[1])
        # one cycle first, not counted: imports and lazy singletons (the comm machinery, the
        # resolver's caches) open what they open once; a leak is what grows with the cycles
        warm = Plan("deepgram", "none", "source-ended", None)
        session_cycle(warm, server, None) if kind == "session" else widget_cycle(warm, server)
        gc.collect()
        before = Census.take(tmpdir, port)
        fds_before = fd_targets()
        t0 = time.monotonic()
        for n, plan in enumerate(plans(seed, cycles)):
            server.set_faults(plan.faults)
            if kind == "session":
                # every 5th session records (record_to): its file is the caller's, removed here
                rec = record_dir if n % 5 == 0 else None
                outcome, took = session_cycle(plan, server, rec)
                for path in record_dir.iterdir():
                    path.unlink()
            else:
                outcome, took = widget_cycle(plan, server)
            result.cycles += 1
            result.outcomes[f"{plan.fault} -> {outcome}"] += 1
            result.by_phase[plan.phase] += 1
            result.max_stop_s = max(result.max_stop_s, took)
            if took > STOP_TIMEOUT + 2.5 * support.TIMING:
                result.problems.append(f"cycle {n}: stop took {took:.1f} s ({plan})")
        result.seconds = time.monotonic() - t0
        server.set_faults(None)
        gc.collect()
        # the server closes its side of each connection on its own loop: wait for it
        support.wait_until(lambda: Census.take(tmpdir, port).server_sockets
                           <= before.server_sockets, 10.0)  # fmt: skip
        support.wait_until(lambda: not Census.take(tmpdir, port).threads, 10.0)
        after = Census.take(tmpdir, port)
        fds_after = fd_targets()
    record_dir.rmdir()
    result.leaked_threads = after.threads
    result.leaked_sockets = max(0, after.client_sockets - before.client_sockets)
    result.server_lingering = max(0, after.server_sockets - before.server_sockets)
    # descriptors other than sockets (files, pipes, eventfds), plus the client's sockets
    new = sorted(t for t in fds_after - fds_before if "socket:" not in t)
    result.leaked_fds = len(new) + result.leaked_sockets
    if new:
        result.problems.append(f"new descriptors: {new[:10]}")
    result.leaked_tmp_files = max(0, after.tmp_files - before.tmp_files)
    gc.collect()
    pool = SESSIONS if kind == "session" else WIDGETS
    result.alive = len(pool)
    result.running = sum(1 for s in list(SESSIONS) if s.running)
    return result


def _in_fresh_tmpdir(run):
    """``run(tmpdir)`` with TMPDIR pointing at a fresh directory (restored afterwards)."""
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="livetx-storm-") as tmp:
        tmpdir = Path(tmp)
        os.environ["TMPDIR"] = str(tmpdir)
        tempfile.tempdir = str(tmpdir)
        try:
            return run(tmpdir)
        finally:
            if saved[0] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[0]
            tempfile.tempdir = saved[1]


def one_storm(kind: str, cycles: int, seed: int) -> StormResult:
    """One storm in a fresh TMPDIR; the widget storm draws from ``seed + 1``."""
    return _in_fresh_tmpdir(lambda d: storm(kind, cycles, seed + (kind == "widget"), d))


JSON_MARKER = "LIVETX-STORM-JSON "


def run_storms(cycles: int, seed: int, parallel: bool = True) -> list[StormResult]:
    """Both storms. ``parallel``: the widget storm runs in a child process while the session
    storm runs here. A storm's cycles mostly wait (connect and stop timeouts, audio at real
    time: under 2 s of CPU for 20 quick cycles), so side by side they take half the wall time;
    each census stays its own, since threads, descriptors, sockets (told apart by inode) and
    the fresh TMPDIR all belong to one process."""
    if not parallel:
        return [one_storm("session", cycles, seed), one_storm("widget", cycles, seed)]
    child = JsonChild([__file__, "--kind", "widget", "--cycles", str(cycles), "--seed",
                       str(seed), "--json"], JSON_MARKER)  # fmt: skip
    try:
        session = one_storm("session", cycles, seed)
        data = child.result(timeout=120 + cycles * 30 * support.TIMING)
    finally:
        child.close()
    widget = StormResult(**{**data, "outcomes": Counter(data["outcomes"]),
                            "by_phase": Counter(data["by_phase"])})  # fmt: skip
    return [session, widget]


def figures_from(results: list[StormResult]) -> list[Figure]:
    out = []
    for r in results:
        b = "storms"
        out += [
            Figure(b, f"{r.kind}: start/stop cycles with faults", r.cycles, "", None, "higher",
                   note=f"{r.seconds:.0f} s"),
            Figure(b, f"{r.kind}: leaked threads", len(r.leaked_threads), "", 0, "equal"),
            Figure(b, f"{r.kind}: leaked client sockets", r.leaked_sockets, "", 0, "equal"),
            Figure(b, f"{r.kind}: leaked file descriptors", r.leaked_fds, "", 0, "equal"),
            Figure(b, f"{r.kind}: leaked temporary files", r.leaked_tmp_files, "", 0, "equal"),
            Figure(b, f"{r.kind}: {r.kind}s alive after gc", r.alive, "", 0, "equal"),
            Figure(b, f"{r.kind}: sessions still running", r.running, "", 0, "equal"),
            Figure(b, f"{r.kind}: slowest stop", round(r.max_stop_s, 2), "s",
                   round(STOP_TIMEOUT + 2.5, 2), "lower"),
        ]  # fmt: skip
    return out


def figures(quick: bool) -> list[Figure]:
    return figures_from(run_storms(10 if quick else 100, seed=15))


def report(results: list[StormResult], seed: int) -> str:
    lines = [
        "Start/stop storms (benchmarks/storms.py)",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
        f"{os.getloadavg()[0]:.2f}; seed {seed}; stop_timeout {STOP_TIMEOUT} s",
        "",
    ]
    for r in results:
        lines.append(f"{r.kind}: {r.cycles} cycles in {r.seconds:.0f} s; slowest stop "
                     f"{r.max_stop_s:.2f} s")  # fmt: skip
        lines.append("  phases: " + ", ".join(f"{k} {v}" for k, v in sorted(r.by_phase.items())))
        lines.append("  fault -> outcome (session.error type):")
        for k, v in sorted(r.outcomes.items()):
            lines.append(f"    {v:>3} x {k}")
        lines.append(f"  server connections still open at the end (peers it stopped reading; "
                     f"closed when the server stops): {r.server_lingering}")  # fmt: skip
        lines.append(f"  leaked: threads {r.leaked_threads or 0}, sockets {r.leaked_sockets}, "
                     f"fds {r.leaked_fds}, temporary files {r.leaked_tmp_files}, alive "
                     f"{r.alive}, running {r.running}")  # fmt: skip
        for p in r.problems:
            lines.append(f"  problem: {p}")
        lines.append("")
    lines.append(table(figures_from(results)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 cycles each")
    ap.add_argument("--cycles", type=int, help="cycles of each storm (default 100)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--kind", choices=("session", "widget", "both"), default="both")
    ap.add_argument("--serial", action="store_true",
                    help="both storms one after the other in this process")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print the results as JSON (one line)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/storms.txt")
    args = ap.parse_args(argv)
    cycles = args.cycles or (10 if args.quick else 100)
    if args.kind == "both":
        results = run_storms(cycles, args.seed, parallel=not args.serial)
    else:
        results = [one_storm(args.kind, cycles, args.seed)]
    if args.json:
        # vars(), not asdict(): asdict rebuilds a Counter from its items as a count of pairs
        print(JSON_MARKER + json.dumps(vars(results[-1])), flush=True)
        return 0
    text = report(results, args.seed)
    print(text)
    if args.save:
        (REPO / "benchmarks" / "results" / "storms.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
