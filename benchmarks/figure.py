"""The one result format every benchmark returns, so that ``run_all.py`` can put them in one
table: ``figures(quick: bool) -> list[Figure]`` in each ``benchmarks/*.py``.

A figure is one measured number with its target and, where the issue asks for one, the same
number measured for the reference scripts (``/work/shared/reference``: the fixed-sleep
Deepgram and AssemblyAI snippets this product replaces) in the same run. ``ratio`` is how many
times better than the reference (or, without one, than the target's floor or ceiling) the
measurement is: above 1 is headroom, below 1 a miss. Figures are plain data (``to_dict``), so
a benchmark that runs in a child process hands them back as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import selectors
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One line of the report. ``better``: ``"higher"``, ``"lower"`` or ``"equal"`` (the
    measurement must equal the target, e.g. zero leaked threads)."""

    benchmark: str
    name: str
    measured: float | None
    unit: str = ""
    target: float | None = None
    better: str = "higher"
    reference: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """``None`` when there is nothing to compare against (informational figures)."""
        m, t = self.measured, self.target
        if m is None or (isinstance(m, float) and math.isnan(m)):
            return False if t is not None else None
        if t is None:
            return None
        if self.better == "equal":
            return m == t
        return m >= t if self.better == "higher" else m <= t

    @property
    def ratio(self) -> float | None:
        """Times better than the reference scripts, else than the target bound."""
        m = self.measured
        base = self.reference if self.reference is not None else self.target
        if m is None or base is None or self.better == "equal":
            return None
        if self.better == "higher":
            return m / base if base else None
        return base / m if m else math.inf

    @property
    def against(self) -> str:
        return "reference" if self.reference is not None else "target"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Figure:
        return cls(**data)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """The report's table: figure, target, measured, ratio (to what), pass/fail."""
    rows = [("benchmark", "figure", "target", "measured", "ratio", "result")]
    for f in figures:
        op = {"higher": ">=", "lower": "<=", "equal": "=="}[f.better]
        target = "-" if f.target is None else f"{op} {fmt(f.target, f.unit)}"
        ratio = f.ratio
        ratio_text = "-" if ratio is None else (
            f"{fmt(ratio)}x vs {'ref' if f.against == 'reference' else 'target'}"
        )
        result = {True: "pass", False: "FAIL", None: "info"}[f.passed]
        rows.append((f.benchmark, f.name, target, fmt(f.measured, f.unit), ratio_text, result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def load_file(name: str, path: Path):
    """The module at ``path`` (a sibling benchmark, a test helper), imported once under
    ``name``: the benchmarks are scripts, not a package, so they cannot import each other."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def child_env() -> dict[str, str]:
    """This environment with the repository first on ``PYTHONPATH``: a benchmark's child
    process imports the same tree as its parent."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


class JsonChild:
    """This interpreter running ``args`` in a child process that prints its result as one
    line of JSON after ``marker``. It starts at once, so the caller measures something beside
    it (each process's memory, threads and descriptors its own); ``close()`` reaps it."""

    def __init__(self, args: list[str], marker: str):
        self.marker = marker
        self.proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                                     text=True, env=child_env())  # fmt: skip

    def result(self, timeout: float):
        """The child's JSON, once it has ended; ``RuntimeError`` if it failed."""
        out, _ = self.proc.communicate(timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith(self.marker)]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"child process {self.proc.args[1:3]} failed "
                               f"(exit {self.proc.returncode})")  # fmt: skip
        return json.loads(lines[-1][len(self.marker) :])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ServeProcess:
    """``livetx serve *args`` of this tree in a child process (owned: terminated and reaped),
    for benchmarks that measure a server apart from its clients. ``url`` is where it said it
    listens; its stderr goes to ``log`` (or nowhere); ``cpu_s()`` and ``rss_mb()`` read
    ``/proc``."""

    def __init__(self, args: list[str], *, log: Path | None = None, start_timeout: float = 30.0,
                 stop_timeout: float = 15.0):  # fmt: skip
        self._stop_timeout = stop_timeout
        self._log = open(log, "w") if log is not None else None  # noqa: SIM115 - close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livetx_widgets.cli", "serve", *args],
            stdout=subprocess.PIPE, stderr=self._log or subprocess.DEVNULL, text=True,
            start_new_session=True, env=child_env(),
        )  # fmt: skip
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(start_timeout):
                self.close()
                raise RuntimeError(f"livetx serve did not start within {start_timeout} s")
            line = self.proc.stdout.readline()
        finally:
            sel.close()
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"livetx serve said {line!r}")
        self.url = line.split()[-1]

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return math.nan

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
