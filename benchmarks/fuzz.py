"""Fuzz every untrusted-input target with >= 100,000 inputs each and count what breaks.

Run: ``.venv/bin/python benchmarks/fuzz.py [--quick] [--inputs N] [--atheris] [--save]``
(``--save`` writes ``benchmarks/results/fuzz.txt``; not a timing benchmark, so no lock needed).

The targets, seeds, mutations and checks are ``tests/fuzz/targets.py``, the same the fast-lane
test runs 300 examples of: both client codecs (``decode`` of one connection's frames), both
server protocol cores (query, text frames, audio and the clock) and the browser-audio messages
(``BrowserLink`` into a ``BrowserMicrophone``). Two engines:

* **mutation** (always): input ``i`` of a target is ``Mutator`` driven by ``random.Random(i)``,
  so any finding is reproduced from its number;
* **atheris** (``--atheris``, when the package installs): libFuzzer, coverage-guided over the
  package's bytecode, drives the same ``Mutator`` through a ``random.Random`` whose every
  decision is read from the fuzzer's bytes, so the fuzzer learns which decisions reach new
  code. One child process per target (libFuzzer owns its process).

Each process runs with its address space capped (``RLIMIT_AS``), so an input that makes the
code allocate gigabytes fails with ``MemoryError`` (a finding) instead of hurting a shared
machine; each operation must finish within ``targets.CASE_BUDGET_S``.

A finding is any exception other than the documented ones (the target's contract, see
``targets.py``); ``--write-fixtures`` stores the first case of each new kind under
``tests/fixtures/fuzz/`` for a regression test.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from figure import Figure, load_file, table  # noqa: E402

FULL_INPUTS = 100_000
QUICK_INPUTS = 5_000
MEMORY_CAP = 3 << 30  # bytes of address space per fuzzing process


def load_targets():
    return load_file("livetx_fuzz_targets", REPO / "tests" / "fuzz" / "targets.py")


def cap_memory() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_CAP if hard == resource.RLIM_INFINITY else min(MEMORY_CAP, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


class Tally:
    """Inputs run and findings by kind (first input of each kept to reproduce it)."""

    def __init__(self, target: str):
        self.target = target
        self.inputs = 0
        self.findings: collections.Counter[str] = collections.Counter()
        self.first: dict[str, object] = {}
        self.seconds = 0.0

    def found(self, finding: Exception, case, label) -> None:
        kind = str(finding).split(" at ")[0][:140]
        self.findings[kind] += 1
        self.first.setdefault(kind, (label, case))

    def to_dict(self) -> dict:
        return {"target": self.target, "inputs": self.inputs, "seconds": self.seconds,
                "findings": dict(self.findings),
                "first": {k: str(v[0]) for k, v in self.first.items()}}  # fmt: skip


def mutation_run(name: str, inputs: int, start: int = 0) -> Tally:
    fz = load_targets()
    target = fz.make_targets()[name]
    mutator = fz.Mutator(fz.load_seeds())
    tally = Tally(name)
    t0 = time.perf_counter()
    for i in range(start, start + inputs):
        case = target.generate(mutator, random.Random(i))
        try:
            target.run(case)
        except fz.Finding as finding:
            tally.found(finding, case, i)
        except MemoryError as exc:  # the cap: an allocation the code should never attempt
            tally.found(fz.Finding(name, f"MemoryError {exc}"), case, i)
        tally.inputs += 1
    tally.seconds = time.perf_counter() - t0
    tally.cases = {k: v[1] for k, v in tally.first.items()}  # type: ignore[attr-defined]
    return tally


# ----------------------------------------------------------------------------- atheris
class BytesRandom(random.Random):
    """A ``random.Random`` whose decisions are the fuzzer's bytes (zeros once they run out),
    so libFuzzer's mutations of the input steer the ``Mutator`` step by step."""

    def __init__(self, fdp):
        self._fdp = fdp
        super().__init__(0)

    def random(self) -> float:
        return self._fdp.ConsumeProbability()

    def getrandbits(self, k: int) -> int:
        return self._fdp.ConsumeInt((k + 7) // 8) % (1 << k) if k else 0

    def seed(self, *args, **kwargs) -> None:  # Random.__init__ calls it
        return None


def atheris_child(name: str, runs: int, out: Path) -> None:
    import atheris

    cap_memory()
    with atheris.instrument_imports(include=["livetx_widgets"]):
        import livetx_widgets.audio
        import livetx_widgets.providers
        import livetx_widgets.server
        import livetx_widgets.ui.browser_link  # noqa: F401
    fz = load_targets()
    target = fz.make_targets()[name]
    mutator = fz.Mutator(fz.load_seeds())
    tally = Tally(name)
    t0 = time.perf_counter()

    def save() -> None:
        tally.seconds = time.perf_counter() - t0
        out.write_text(json.dumps(tally.to_dict()))

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        case = target.generate(mutator, BytesRandom(fdp))
        try:
            target.run(case)
        except fz.Finding as finding:
            tally.found(finding, None, data.hex()[:64])
        except MemoryError as exc:
            tally.found(fz.Finding(name, f"MemoryError {exc}"), None, data.hex()[:64])
        tally.inputs += 1
        if tally.inputs % 1000 == 0 or tally.inputs >= runs - 2:
            save()  # libFuzzer ends the process with C exit(): Python's atexit never runs

    atheris.Setup([sys.argv[0], f"-runs={runs}", "-rss_limit_mb=3000", "-max_len=4096",
                   "-print_final_stats=0", "-close_fd_mask=3"], one_input)  # fmt: skip
    atheris.Fuzz()


def atheris_run(name: str, runs: int) -> dict | None:
    if importlib.util.find_spec("atheris") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="livetx-fuzz-") as tmp:
        out = Path(tmp) / "tally.json"
        cmd = [sys.executable, __file__, "--atheris-child", name, str(runs), str(out)]
        subprocess.run(cmd, cwd=tmp, timeout=3600, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return json.loads(out.read_text()) if out.exists() else {"target": name, "inputs": 0,
                                                                  "seconds": 0, "findings": {
                                                                      "(child died)": 1}}


# ------------------------------------------------------------------------------ report
def write_fixtures(tallies: list[Tally]) -> list[Path]:
    fz = load_targets()
    written = []
    for tally in tallies:
        for n, (kind, case) in enumerate(getattr(tally, "cases", {}).items()):
            path = fz.FUZZ_FIXTURES / f"{tally.target}-found-{n + 1}.json"
            path.write_text(fz.case_to_json(tally.target, case, kind))
            written.append(path)
    return written


def run(quick: bool, inputs: int | None = None, use_atheris: bool = False):
    cap_memory()
    fz = load_targets()
    n = inputs or (QUICK_INPUTS if quick else FULL_INPUTS)
    names = list(fz.make_targets())
    tallies = [mutation_run(name, n) for name in names]
    fuzzed = []
    if use_atheris:
        fuzzed = [atheris_run(name, n) for name in names]
    return n, tallies, fuzzed


def figures_from(n: int, tallies: list[Tally], fuzzed: list) -> list[Figure]:
    out = []
    for t in tallies:
        out.append(Figure("fuzz", f"{t.target}: inputs (mutation)", t.inputs, "", n, "higher",
                          note=f"{t.inputs / t.seconds:,.0f} inputs/s"))  # fmt: skip
        out.append(Figure("fuzz", f"{t.target}: undocumented exceptions", sum(t.findings.values()),
                          "", 0, "equal"))  # fmt: skip
    for a in fuzzed:
        if a is None:
            continue
        out.append(Figure("fuzz", f"{a['target']}: undocumented exceptions (atheris, "
                          f"{a['inputs']:,} inputs)", sum(a["findings"].values()), "", 0,
                          "equal"))  # fmt: skip
    return out


def figures(quick: bool) -> list[Figure]:
    """For ``run_all.py``: mutation fuzzing only in ``--quick``, atheris too otherwise."""
    return figures_from(*run(quick, use_atheris=not quick))


def report(n: int, tallies: list[Tally], fuzzed: list, seconds: float) -> str:
    lines = [
        "Fuzzing: every untrusted-input target (benchmarks/fuzz.py; tests/fuzz/targets.py)",
        f"machine: {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average {os.getloadavg()[0]:.2f}",
        f"seeds: {sum(len(v) for v in load_targets().load_seeds().values())} real payloads "
        "(protocol notes + tests/fixtures); mutations: truncation, type swaps, huge numbers, "
        "NaN/Infinity, deep nesting, invalid UTF-8, unknown fields and types, reordering",
        "",
        "mutation engine (input i = Mutator(random.Random(i)))",
        f"{'target':<18} {'inputs':>9} {'inputs/s':>9} {'findings':>9}",
    ]  # fmt: skip
    for t in tallies:
        lines.append(f"{t.target:<18} {t.inputs:>9,} {t.inputs / t.seconds:>9,.0f} "
                     f"{sum(t.findings.values()):>9}")  # fmt: skip
        for kind, count in t.findings.most_common():
            lines.append(f"    {count:>6} x {kind} (first: input {t.first[kind][0]})")
    if fuzzed:
        lines += ["", "atheris (libFuzzer, coverage-guided over livetx_widgets' bytecode)"]
        for a in fuzzed:
            if a is None:
                lines.append("    atheris not installed: skipped")
                break
            rate = a["inputs"] / a["seconds"] if a["seconds"] else 0
            lines.append(f"{a['target']:<18} {a['inputs']:>9,} {rate:>9,.0f} "
                         f"{sum(a['findings'].values()):>9}")  # fmt: skip
            for kind, count in a["findings"].items():
                lines.append(f"    {count:>6} x {kind}")
    lines += ["", table(figures_from(n, tallies, fuzzed)), "", f"total {seconds:.0f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_INPUTS:,} inputs per target")
    ap.add_argument("--inputs", type=int, help="inputs per target (default 100,000)")
    ap.add_argument("--atheris", action="store_true", help="also run atheris per target")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/fuzz.txt")
    ap.add_argument("--write-fixtures", action="store_true",
                    help="store the first case of each finding under tests/fixtures/fuzz/")
    ap.add_argument("--atheris-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.atheris_child:
        name, runs, out = args.atheris_child
        atheris_child(name, int(runs), Path(out))
        return 0
    t0 = time.perf_counter()
    n, tallies, fuzzed = run(args.quick, args.inputs, args.atheris)
    text = report(n, tallies, fuzzed, time.perf_counter() - t0)
    print(text)
    if args.write_fixtures:
        for path in write_fixtures(tallies):
            print("wrote", path)
    if args.save:
        (REPO / "benchmarks" / "results" / "fuzz.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
