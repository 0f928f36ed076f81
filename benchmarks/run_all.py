"""Run every benchmark of the project and print one table of figures.

Run (timing figures are only meaningful alone on the machine: hold the lock for the whole run;
the benchmarks it starts do not take it themselves):
``flock /tmp/livetx-bench.lock .venv/bin/python benchmarks/run_all.py [--quick] [--save]
[--only a,b]``. ``--quick`` (under 10 minutes) runs each benchmark's short form; ``--save``
writes ``benchmarks/results/report.txt`` and the README's table.

How a benchmark plugs in. Every ``benchmarks/*.py`` is discovered. One that defines
``figures(quick: bool) -> list[figure.Figure]`` is run as is, in a child process of its own
(so that memory figures are its own and a crash is contained): nothing to add here. One that
only prints a text report gets an entry in ``ADAPTERS`` (one line: its arguments and a parser
that reads its figures out of the text), as the older ``session.py``, ``widget.py``,
``engine.py`` and ``browser.py`` do here, unedited. A file with neither is listed in the
report as not adapted.

Ratios (``figure.Figure.ratio``) are measured side by side in one run where a timing is
involved: the stop latency against the reference scripts' fixed-sleep stop, the receive path
against bare ``json.loads``, the widget's update cost at 10,000 finals against 10; otherwise
the figure is compared with its target (the floor or ceiling the issues set).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from figure import Figure, child_env, load_file, table  # noqa: E402

RESULTS = HERE / "results"
README = REPO / "README.md"
NOT_BENCHMARKS = {"run_all.py", "figure.py"}
MARKER = "LIVETX-FIGURES-JSON "
README_BEGIN = "<!-- benchmark-table:begin -->"
README_END = "<!-- benchmark-table:end -->"


# ------------------------------------------------------------------ text-report adapters
def _num(pattern: str, text: str, group: int = 1) -> float | None:
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(group).replace(",", "")) if m else None


def parse_session(text: str) -> list[Figure]:
    b, out = "session", []
    for provider, ref_s in (("deepgram", 0.5), ("assemblyai", 5.0)):
        own = _num(rf"^\s+{provider}\s+TranscriptionSession\.stop\(\)\s+([\d.]+)", text)
        ref = _num(rf"^\s+{provider}\s+reference \([\d.]+ s sleep\)\s+([\d.]+)", text)
        out.append(Figure(b, f"{provider}: stop() latency p50 (reference sleeps {ref_s:g} s)",
                          own, "ms", 1000 * ref_s, "lower", reference=ref))  # fmt: skip
    for provider in ("deepgram", "assemblyai"):
        m = re.search(rf"^\s+{provider}\s+\d+\s+\d+\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
                      text, re.MULTILINE)  # fmt: skip
        if m:
            out.append(Figure(b, f"{provider}: receive CPU per message vs json.loads",
                              float(m.group(3)), "x", 3.0, "lower"))  # fmt: skip
    trend = _num(r"\(b\) full session.*\n\s+\d+ chunks: final [\d.-]+ ms, trend ([\d.-]+) ms",
                 text)  # fmt: skip
    if trend is not None:
        out.append(Figure(b, "pacing drift trend, full session", abs(trend), "ms", 10.0, "lower"))
    beyond = _num(r"target < 50 MB beyond the transcript: ([\d.]+) MB", text)
    if beyond is not None:
        out.append(Figure(b, "client memory beyond the transcript, 2 h session", beyond, "MB",
                          50.0, "lower"))  # fmt: skip
    return out


def parse_widget(text: str) -> list[Figure]:
    b, out = "widget", []
    m = re.search(r"ratio [\d,]+ / [\d,]+ finals: bytes ([\d.]+)x, CPU ([\d.]+)x", text)
    if m:
        out.append(Figure(b, "partial update bytes at 10,000 finals / at 10", float(m.group(1)),
                          "x", 1.1, "lower"))  # fmt: skip
        out.append(Figure(b, "partial update CPU at 10,000 finals / at 10", float(m.group(2)),
                          "x", 1.2, "lower"))  # fmt: skip
    for state in ("streaming, script engine", "streaming, whisper engine"):
        v = _num(rf"^\s*{re.escape(state)}\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)x", text)
        if v is not None:
            out.append(Figure(b, f"trivial cell round trip, {state} / idle", v, "x", 1.2,
                              "lower"))  # fmt: skip
    return out


#: Issue 14's targets: (figure, target, pooled key, percentile).
ENGINE_TARGETS = (
    ("first partial after speech starts p50", 0.5, "first", 50),
    ("first partial after speech starts p95", 0.8, "first", 95),
    ("final after speech ends p50", 0.4, "final", 50),
    ("final after speech ends p95", 0.7, "final", 95),
)
_ENGINE_ALL = re.compile(
    r"all / defaults: first partial p50 ([\d.]+) p95 ([\d.]+); "
    r"final p50 ([\d.]+) p95 ([\d.]+)(?:, RTF max ([\d.]+))?"
)


def parse_engine(text: str) -> list[Figure]:
    """The pooled ``all / defaults`` line of the ``[engine]`` (the engine alone) and
    ``[session]`` (through ``TranscriptionSession``, the user's view) sections; the last of
    each when the text holds several runs."""
    b, out, last = "engine", [], {}
    mode = None
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            mode = header.group(1)
        elif mode in ("engine", "session") and (m := _ENGINE_ALL.search(line)):
            last[mode] = m.groups()
    for mode, groups in last.items():
        first50, first95, final50, final95, rtf = groups
        values = {("first", 50): first50, ("first", 95): first95,
                  ("final", 50): final50, ("final", 95): final95}  # fmt: skip
        for name, target, key, q in ENGINE_TARGETS:
            out.append(Figure(b, f"{mode}: {name}", float(values[(key, q)]), "s", target,
                              "lower"))  # fmt: skip
        if rtf is not None:
            out.append(Figure(b, f"{mode}: real-time factor (max)", float(rtf), "", 0.2,
                              "lower"))  # fmt: skip
    return out


def parse_compare(text: str) -> list[Figure]:
    """A three-provider compare against one session on the same file: CPU no worse than three
    separate sessions (the tee reads and keeps the audio once)."""
    b, out = "compare", []
    for mode, body in re.findall(r"^\s*(real time|fast) \((.*?)(?=^\s*(?:real time|fast) \(|\Z)",
                                 text, re.S | re.M):  # fmt: skip
        ratio = _num(r"ratio compare/single: CPU ([\d.]+)x", body)
        if ratio is not None:
            out.append(Figure(b, f"CPU of a 3-provider compare / one session ({mode})", ratio,
                              "x", 3.0, "lower"))  # fmt: skip
    return out


def parse_formats(text: str) -> list[Figure]:
    """Decoding cost against a WAV that pays the same resampling, and memory while streaming
    a long file (never held whole)."""
    b, out = "formats", []
    worst = max((float(x) for x in re.findall(
        r"^\s+(?!wav)\w+\s+AudioFile\s.*?\s([\d.]+)\s+[\d.]+\s+[\d.]+\s*$", text, re.M)),
        default=None)  # fmt: skip
    if worst is not None:
        out.append(Figure(b, "decode CPU, worst format / 44.1 kHz stereo WAV", worst, "x", 1.5,
                          "lower"))  # fmt: skip
    growth = _num(r"peak RSS while streaming it all: \d+ MB \(\+(\d+) MB\)", text)
    if growth is not None:
        out.append(Figure(b, "RSS growth while streaming a long file", growth, "MB", 50,
                          "lower"))  # fmt: skip
    return out


def parse_browser(text: str) -> list[Figure]:
    b, out = "browser", []
    browser = _num(r"browser mic \(page -> comm\)\s+audio-to-partial median\s+([\d.]+) s", text)
    kernel = _num(r"kernel mic \(PulseAudio\)\s+audio-to-partial median\s+([\d.]+) s", text)
    if browser is not None and kernel is not None:
        out.append(Figure(b, "browser mic audio-to-partial median (reference: kernel mic)",
                          browser, "s", None, "lower", reference=kernel))  # fmt: skip
    gone = _num(r"backlog gone ([\d.]+) s after the cell ended", text)
    if gone is not None:
        out.append(Figure(b, "backlog after a 10 s busy cell gone after", gone, "s", 1.0,
                          "lower"))  # fmt: skip
    return out


def parse_table(text: str) -> list[Figure]:
    """The figures of a report that ends with ``figure.table`` (the ``figures()`` benchmarks'
    own ``--save`` output), read back: for ``--collect``."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"benchmark +figure", ln)), None)
    if start is None:
        return []
    out = []
    for line in lines[start + 2 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != 6:
            break
        bench, name, target, measured, _ratio, _result = cells

        def number(cell: str) -> tuple[float | None, str]:
            m = re.match(r"^(?:[<>=]=\s)?(-?[\d,]*\.?\d+(?:e[-+]?\d+)?|inf)\s*(.*)$", cell)
            if not m:
                return None, ""
            return float(m.group(1).replace(",", "")), m.group(2)

        value, unit = number(measured)
        bound, _ = number(target)
        better = {">=": "higher", "<=": "lower", "==": "equal"}.get(target[:2], "higher")
        out.append(Figure(bench, name, value, unit, bound, better))
    return out


@dataclass
class Adapter:
    args: list[str]
    quick_args: list[str]
    parse: Callable[[str], list[Figure]]
    timeout_s: float = 1800


#: Benchmarks that print a text report (run unedited): arguments, quick arguments, parser.
ADAPTERS: dict[str, Adapter] = {
    "session.py": Adapter([], ["--quick", "--only", "stop,cpu,memory", "--runs", "3"],
                          parse_session),
    "widget.py": Adapter([], ["--quick"], parse_widget),
    "engine.py": Adapter(["--runs", "1"], ["--runs", "1", "--modes", "engine,session"],
                         parse_engine),
    "browser.py": Adapter([], ["--quick"], parse_browser),
    "compare.py": Adapter([], ["--quick"], parse_compare),
    "formats.py": Adapter([], ["--runs", "1", "--long-s", "600"], parse_formats),
}  # fmt: skip

#: ``figures()`` benchmarks to leave out of ``--quick`` (none: each has a quick form).
QUICK_SKIP: set[str] = set()


# -------------------------------------------------------------------------- running
@dataclass
class Outcome:
    script: str
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""
    saved: str = ""  # --collect: when the saved report was made


def has_figures(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == "figures" for n in tree.body)


def discover() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS)


def _env() -> dict[str, str]:
    return child_env()


def collect_one(path: Path) -> Outcome:
    """The figures of the benchmark's latest saved report (``results/<name>.txt``)."""
    out = Outcome(path.name)
    saved = RESULTS / f"{path.stem}.txt"
    if not saved.exists():
        out.problem = "no saved report"
        return out
    text = saved.read_text()
    adapter = ADAPTERS.get(path.name)
    out.figures = adapter.parse(text) if adapter is not None else parse_table(text)
    when = re.search(r"(20\d\d-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?(?: UTC)?)", text)
    out.problem = "" if out.figures else "no figures found in its saved report"
    out.saved = when.group(1) if when else time.strftime(
        "%Y-%m-%d %H:%M UTC (file time)", time.gmtime(saved.stat().st_mtime))  # fmt: skip
    return out


def run_one(path: Path, quick: bool) -> Outcome:
    t0 = time.monotonic()
    out = Outcome(path.name)
    adapter = ADAPTERS.get(path.name)
    try:
        if adapter is not None:
            args = adapter.quick_args if quick else adapter.args
            proc = subprocess.run([sys.executable, str(path), *args], capture_output=True,
                                  text=True, timeout=adapter.timeout_s, env=_env(),
                                  cwd=REPO, check=False)  # fmt: skip
            out.figures = adapter.parse(proc.stdout)
            if proc.returncode != 0 or not out.figures:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
                out.problem = f"exit {proc.returncode}, {len(out.figures)} figures: {tail[0][:160]}"
        elif has_figures(path):
            cmd = [sys.executable, __file__, "--child", str(path)] + (["--quick"] if quick else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * 3600,
                                  env=_env(), cwd=REPO, check=False)  # fmt: skip
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
            if lines:
                out.figures = [Figure.from_dict(d) for d in json.loads(lines[-1][len(MARKER):])]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
                out.problem = f"exit {proc.returncode}: {tail[0][:160]}"
        else:
            out.problem = "not adapted: define figures(quick) or add it to ADAPTERS"
    except subprocess.TimeoutExpired:
        out.problem = "timed out"
    out.seconds = time.monotonic() - t0
    return out


def child(path: str, quick: bool) -> int:
    module = load_file(f"livetx_benchmark_{Path(path).stem}", Path(path))
    figures = module.figures(quick)
    print(MARKER + json.dumps([f.to_dict() for f in figures]), flush=True)
    return 0


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")  # fmt: skip


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=REPO, check=False).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "livetx_widgets"],
                               capture_output=True, text=True, cwd=REPO,
                               check=False).stdout.strip()  # fmt: skip
    except OSError:
        return "?"
    return head + (" + uncommitted changes" if dirty else "")


def report(outcomes: list[Outcome], quick: bool, started: str, load0: float,
           seconds: float, collected: bool = False) -> tuple[str, str]:  # fmt: skip
    figures = [f for o in outcomes for f in o.figures]
    passed = sum(1 for f in figures if f.passed is True)
    failed = sum(1 for f in figures if f.passed is False)
    mode = " --collect" if collected else (" --quick" if quick else "")
    head = [
        f"livetx-widgets benchmark report (benchmarks/run_all.py{mode})"
        + (": each benchmark's latest saved run (dates below)" if collected else ""),
        f"date: {started}; machine: {machine()}; commit {commit()}",
        f"load average: {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end "
        f"(the machine is shared; timing figures are ratios measured in one run where possible)",
        "",
    ]
    body = table(figures)
    tail = ["", f"{passed} passed, {failed} failed, "
            f"{sum(1 for f in figures if f.passed is None)} informational; "
            f"{len(outcomes)} benchmarks in {seconds / 60:.1f} min:"]  # fmt: skip
    for o in outcomes:
        when = f"  saved {o.saved}" if o.saved else f"{o.seconds:>6.0f} s"
        tail.append(f"  {o.script:<16} {when}  {len(o.figures):>3} figures"
                    + (f"  PROBLEM: {o.problem}" if o.problem else ""))  # fmt: skip
    tail.append("ratio: times better than the reference scripts (vs ref) or than the target's "
                "bound (vs target); below 1 is a miss.")  # fmt: skip
    text = "\n".join(head) + "\n" + body + "\n" + "\n".join(tail)
    readme_block = "\n".join([
        f"Latest `benchmarks/run_all.py{mode}`: {started}, {machine()}"
        + (" (each benchmark's latest saved run: dates in the report)" if collected else
           f", load average {load0:.2f} at start")
        + " (full report: `benchmarks/results/report.txt`).",
        "",
        "```",
        body,
        "```",
    ])  # fmt: skip
    return text, readme_block


def update_readme(block: str) -> None:
    text = README.read_text()
    new = f"{README_BEGIN}\n{block}\n{README_END}"
    if README_BEGIN in text and README_END in text:
        start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
        text = text[:start] + new + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n## Benchmarks\n\n" + new + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="each benchmark's short form (< 10 min)")
    ap.add_argument("--only", help="comma-separated benchmark names (e.g. fuzz,storms)")
    ap.add_argument("--save", action="store_true",
                    help="write benchmarks/results/report.txt and the README table")
    ap.add_argument("--collect", action="store_true",
                    help="run nothing: the table of each benchmark's latest saved report")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.quick)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    only = set(args.only.split(",")) if args.only else None
    outcomes = []
    for path in discover():
        if only is not None and path.stem not in only:
            continue
        if args.quick and path.name in QUICK_SKIP:
            continue
        if args.collect:
            outcomes.append(collect_one(path))
            continue
        print(f"running {path.name}{' --quick' if args.quick else ''} ...", file=sys.stderr,
              flush=True)  # fmt: skip
        outcomes.append(run_one(path, args.quick))
        o = outcomes[-1]
        print(f"  {o.seconds:.0f} s, {len(o.figures)} figures {o.problem}", file=sys.stderr,
              flush=True)  # fmt: skip
    text, block = report(outcomes, args.quick, started, load0, time.monotonic() - t0,
                         collected=args.collect)
    print(text)
    if args.save:
        (RESULTS / "report.txt").write_text(text + "\n")
        update_readme(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
