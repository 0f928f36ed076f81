"""The widget's front-end module, built from its two sources.

anywidget serves a widget as ONE ES module and cannot resolve relative imports, so
``static/capture.js`` (the browser microphone: it imports nothing and keeps its top-level
names distinct) is put in front of ``static/widget.js`` (the view) in ``static/livetx.js``.
That built file is committed. With ``ANYWIDGET_HMR=1`` (developing the front end) it is given
to anywidget as a ``Path``, so that anywidget's file hot reload works: after editing a source,
run ``python livetx_widgets/ui/assets.py`` (a test checks the built file is current).
Otherwise the widget gets the file's *text*: anywidget connects every instance of a widget
whose ``_esm``/``_css`` is a file to that file's change signal with a closure, so each widget
ever made (with its sessions and transcripts) stayed alive for the life of the kernel
(found by ``benchmarks/storms.py``: 100 closed widgets, 100 alive after ``gc.collect()``).
"""

from __future__ import annotations

import os
from pathlib import Path

STATIC = Path(__file__).parent / "static"
SOURCES = ("capture.js", "widget.js")
BUILT = STATIC / "livetx.js"
HEADER = "// Built from static/capture.js + static/widget.js by livetx_widgets/ui/assets.py.\n"


def build() -> str:
    """The module's text: the sources in order, behind a header saying where it comes from."""
    return HEADER + "\n".join((STATIC / name).read_text() for name in SOURCES)


def asset(path: Path) -> Path | str:
    """What the widget gives anywidget for ``path``: the file under hot reload, else its text."""
    return path if os.environ.get("ANYWIDGET_HMR") == "1" else path.read_text()


def write() -> Path:
    BUILT.write_text(build())
    return BUILT


if __name__ == "__main__":
    print(write())
