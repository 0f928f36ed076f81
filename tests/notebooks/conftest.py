"""Run the shipped notebooks top to bottom in a real kernel (nbclient), headless.

The notebooks read their settings from environment variables (``LIVETX_*``), which the kernel
inherits from this process. After the notebook's own cells the runner appends one cell that
prints a JSON summary of what the kernel holds (the transcript, the DataFrame, the widget's
state, the ipykernel version, live threads), so tests assert on values read back from the
kernel, not on rendered text.

Two kernels: ipykernel 7 (the venv's) and ipykernel 6, which ``scripts/setup.sh`` installs
with ``pip install --target`` into ``<venv>/ipykernel6`` (or ``$LIVETX_IPYKERNEL6``) and the
kernel spec puts first on the kernel's ``PYTHONPATH``. Both specs live in a temporary
``JUPYTER_PATH``. Nothing is installed during the run: without that directory the ipykernel 6
cells fail under CI (``CI`` set), where setup must have made it, and skip elsewhere, saying
how to add it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
IPYKERNEL6 = "ipykernel>=6.29,<7"
MARK = "LIVETX-RESULT "

# What the appended cell reports (variables the notebooks define: w, and df when present).
SUMMARY_CELL = """
import json as _json, threading as _threading, ipykernel as _ipk
_df = w.to_dataframe()
print("LIVETX-RESULT " + _json.dumps({
    "ipykernel": _ipk.__version__,
    "status": w.status,
    "error": w.error,
    "text": w.transcript.text,
    "rows": _df[["start", "end", "text", "speaker"]].astype(str).to_dict("records"),
    "columns": list(_df.columns),
    "n_finals": w.n_finals,
    "threads": [t.name for t in _threading.enumerate() if t.name.startswith("livetx-")],
    "extra": globals().get("_livetx_extra", {}),
}, default=str))
"""

#: The dialogue recording with a script that matches its turns (speakers alternate).
DIALOGUE_SCRIPT = {
    "turns": [
        {"text": "Do you hear me?", "start": 0.5, "end": 1.5, "speaker": 0},
        {"text": "Yes.", "start": 2.2, "end": 2.6, "speaker": 1},
        {"text": "Do you hear me?", "start": 3.4, "end": 4.4, "speaker": 0},
        {"text": "Yes.", "start": 5.0, "end": 5.4, "speaker": 1},
        {"text": "We laugh less heartily, so we have still that resource.",
         "start": 6.5, "end": 10.0, "speaker": 0},
    ]
}  # fmt: skip


#: What setup installs (``scripts/setup.sh``) and where it puts it.
IPYKERNEL6_DIR = Path(os.environ.get("LIVETX_IPYKERNEL6") or Path(sys.prefix) / "ipykernel6")
IPYKERNEL6_HOW = (
    f"{IPYKERNEL6!r} is not installed in {IPYKERNEL6_DIR}: run scripts/setup.sh, or "
    f"pip install --no-deps --target {IPYKERNEL6_DIR} '{IPYKERNEL6}' 'nest-asyncio>=1.4'"
)


def _ipykernel6() -> Path | None:
    """The directory holding ipykernel 6, or ``None`` when setup did not install it."""
    if (IPYKERNEL6_DIR / "ipykernel" / "__init__.py").is_file():
        return IPYKERNEL6_DIR
    return None


def _kernel_spec(root: Path, name: str, display: str, env: dict[str, str]) -> None:
    spec = root / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": display,
                "language": "python",
                "env": env,
            }
        )
    )


@pytest.fixture(scope="session")
def kernels(tmp_path_factory):
    """``{"7": kernel name, "6": kernel name or None}`` in a private JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    _kernel_spec(root, "livetx-ipykernel7", "ipykernel 7", {})
    names = {"7": "livetx-ipykernel7", "6": None}
    target = _ipykernel6()
    if target is not None:
        _kernel_spec(root, "livetx-ipykernel6", "ipykernel 6", {"PYTHONPATH": str(target)})
        names["6"] = "livetx-ipykernel6"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        yield names


@pytest.fixture
def kernel(request, kernels):
    """Parametrize indirectly with "7" or "6"."""
    major = request.param
    name = kernels[major]
    if name is None:
        if os.environ.get("CI"):
            pytest.fail(f"{IPYKERNEL6_HOW} (CI installs what the tests need)")
        pytest.skip(IPYKERNEL6_HOW)
    return major, name


class Result:
    def __init__(self, nb, summary: dict, saved: Path) -> None:
        self.nb = nb
        self.summary = summary
        self.saved = saved

    def outputs(self, source_start: str) -> list[dict]:
        """Outputs of the first code cell whose source starts with ``source_start``."""
        for cell in self.nb.cells:
            if cell.cell_type == "code" and cell.source.startswith(source_start):
                return cell.outputs
        raise AssertionError(f"no cell starting with {source_start!r}")


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute ``notebooks/<name>.ipynb`` with ``env`` set; returns a ``Result``.

    ``summary``: the last cell, which prints ``LIVETX-RESULT {json}`` (default: the
    ``LiveTranscriber`` notebooks' ``SUMMARY_CELL``)."""

    def run(name: str, kernel_name: str, env: dict[str, str], *,
            after: dict[str, str] | None = None, timeout: int = 180,
            summary: str = SUMMARY_CELL) -> Result:  # fmt: skip
        # Imported here, not at the top: nbformat's jsonschema pulls in rfc3987_syntax, whose
        # grammar takes ~6 s to build, and every test here is slow: the fast lane, which
        # still imports this conftest, need not pay for it.
        import nbformat
        from nbclient import NotebookClient

        for key, value in env.items():
            monkeypatch.setenv(key, value)
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
            f"{name}.ipynb is committed with outputs"
        )
        # Test-only cells inserted after the cell whose source starts with a given text.
        for start, source in (after or {}).items():
            index = next(i for i, c in enumerate(nb.cells) if c.source.startswith(start))
            nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
        nb.cells.append(nbformat.v4.new_code_cell(summary))
        client = NotebookClient(
            nb,
            kernel_name=kernel_name,
            timeout=timeout,
            store_widget_state=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        saved = tmp_path / f"{name}.executed.ipynb"
        nbformat.write(nb, saved)
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        line = next(x for x in text.splitlines() if x.startswith(MARK))
        return Result(nb, json.loads(line[len(MARK):]), saved)

    return run


@pytest.fixture
def dialogue_script(tmp_path) -> Path:
    path = tmp_path / "dialogue-script.json"
    path.write_text(json.dumps(DIALOGUE_SCRIPT))
    return path


@pytest.fixture
def script_env(tmp_path, dialogue_wav, dialogue_script) -> dict[str, str]:
    """Settings for a fast, deterministic run: the offline script engine on the dialogue."""
    return {
        "LIVETX_PROVIDER": "local",
        "LIVETX_ENGINE": "script",
        "LIVETX_SCRIPT": str(dialogue_script),
        "LIVETX_AUDIO": str(dialogue_wav),
        "LIVETX_REALTIME": "0",
        "LIVETX_OUT": str(tmp_path / "out"),
    }
