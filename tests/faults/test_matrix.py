"""The fault matrix (issue 9): one pytest cell per row of ``matrix.py`` x phase x provider x
front end, each run by ``harness.run_cell``. Combinations that are not cells of their own
(the table's ``Skip`` entries, with their reasons) are not generated: the README table shows
them as "-".

``KNOWN_GAPS`` names the cells whose designed outcome the session does not reach yet, with
why; they run as strict xfails, so a fix shows up as an unexpected pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str):
    """A module of this folder, shared with conftest (importlib mode has no sibling imports)."""
    qualified = f"livetx_fault_matrix_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


matrix = _load("matrix")
harness = _load("harness")


KNOWN_GAPS = {
    f"deepgram-unrequested-terminal-1000-mid_session-{front}": (
        "Deepgram audio goes out faster than the script engine answers, so CloseStream is "
        "already sent when the fault's Metadata and 1000 arrive: to the client that is the "
        "normal end, and the Metadata's duration covers all the audio sent (the engine "
        "received it). Telling them apart needs the provider to say it stopped early."
    )
    for front in ("widget", "cli")
}
#: The same gap where it depends on timing (whether Terminate already went out): not strict.
TIMING_GAPS = {
    f"assemblyai-unrequested-terminal-1000-mid_session-{front}": (
        "when the file's end and Terminate beat the fault's Termination + 1000, the client "
        "cannot tell them from the normal end (see KNOWN_GAPS)"
    )
    for front in ("widget", "cli")
}


def _param(cell):
    gap = KNOWN_GAPS.get(cell.id)
    if gap is not None:
        return pytest.param(cell, id=cell.id, marks=pytest.mark.xfail(reason=gap, strict=True))
    if cell.id in TIMING_GAPS:
        marks = pytest.mark.xfail(reason=TIMING_GAPS[cell.id], strict=False)
        return pytest.param(cell, id=cell.id, marks=marks)
    return pytest.param(cell, id=cell.id)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "cell", [_param(c) for c in matrix.cells() if not isinstance(c.outcome, matrix.Skip)]
)
def test_cell(cell, fault_audio, monkeypatch, capsys):
    harness.run_cell(cell, matrix, fault_audio, monkeypatch, capsys)


def test_readme_table_is_current():
    """The README's table is rendered from this matrix, not written by hand."""
    readme = (HERE.parent.parent / "README.md").read_text()
    assert matrix.markdown() in readme, "run: python -m tests.faults.matrix --markdown"
