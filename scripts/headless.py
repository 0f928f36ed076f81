"""Run a livetx notebook top to bottom without a browser and print the transcript it made.

``bash scripts/lab.sh --headless [X.wav]`` calls this. The notebook runs in a real kernel
(nbclient) with ``LIVETX_AUDIO`` set to the WAV file and ``LIVETX_REALTIME=0`` (as fast as the
engine goes), exactly as its first cell documents; the executed copy is saved in the temporary
directory as ``livetx-<name>.out.ipynb`` so it can be opened afterwards.

Usage: python scripts/headless.py NOTEBOOK [X.wav]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPORT = """
print(f"{w.metadata.provider} ({w.status}): {len(w.transcript)} segments")
print(w.to_dataframe()[["start", "end", "text"]].to_string(index=False))
"""


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    notebook = Path(argv[0])
    wav = Path(argv[1]) if len(argv) > 1 and argv[1] else None
    if wav is None:
        from livetx_widgets.data import demo_wav

        wav = demo_wav()
    if not wav.is_file():
        print(f"no such WAV file: {wav}", file=sys.stderr)
        return 2
    os.environ["LIVETX_AUDIO"] = str(wav.resolve())
    os.environ.setdefault("LIVETX_REALTIME", "0")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    print(f"transcribing {wav} with {notebook} (provider {os.environ.get('LIVETX_PROVIDER')})")
    client = NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(Path.cwd())}})
    out = Path(tempfile.gettempdir()) / f"livetx-{notebook.stem}.out.ipynb"
    try:
        client.execute()
    except CellExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        nbformat.write(nb, out)
    print("".join(o.get("text", "") for o in nb.cells[-1].outputs), end="")
    print(f"(executed notebook saved as {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
