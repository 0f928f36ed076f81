"""The widgets' front-end modules, each built from its sources.

anywidget serves a widget as ONE ES module and cannot resolve relative imports, so shared
sources are put in front of a view's own: ``static/livetx.js`` (``LiveTranscriber``) is
``capture.js`` (the browser microphone) + ``host.js`` (what runs alike in Jupyter and marimo)
+ ``common.js`` (what both views draw and do alike: DOM helpers, the page side of the browser
microphone's exchange) + ``widget.js``; ``static/livetx-compare.js`` (``CompareTranscriber``)
is the same three + ``compare.js``. The shared sources import nothing and keep their
top-level names distinct.
The built files are committed. With ``ANYWIDGET_HMR=1`` (developing the front end) they are
given to anywidget as a ``Path``, so that anywidget's file hot reload works: after editing a
source, run ``python livetx_widgets/ui/assets.py`` (a test checks the built files are current).
Otherwise the widgets get the file's *text*: anywidget connects every instance of a widget
whose ``_esm``/``_css`` is a file to that file's change signal with a closure, so each widget
ever made (with its sessions and transcripts) stayed alive for the life of the kernel
(found by ``benchmarks/storms.py``: 100 closed widgets, 100 alive after ``gc.collect()``).
"""

from __future__ import annotations

import os
from pathlib import Path

STATIC = Path(__file__).parent / "static"
BUILT = STATIC / "livetx.js"
COMPARE_BUILT = STATIC / "livetx-compare.js"
#: Each built module and its sources, in order.
BUILDS: dict[Path, tuple[str, ...]] = {
    BUILT: ("capture.js", "host.js", "common.js", "widget.js"),
    COMPARE_BUILT: ("capture.js", "host.js", "common.js", "compare.js"),
}
SOURCES = BUILDS[BUILT]


def header(target: Path) -> str:
    names = " + ".join(f"static/{name}" for name in BUILDS[target])
    return f"// Built from {names} by livetx_widgets/ui/assets.py.\n"


def build(target: Path = BUILT) -> str:
    """The module's text: its sources in order, behind a header saying where it comes from."""
    return header(target) + "\n".join((STATIC / name).read_text() for name in BUILDS[target])


def asset(path: Path) -> Path | str:
    """What a widget gives anywidget for ``path``: the file under hot reload, else its text."""
    return path if os.environ.get("ANYWIDGET_HMR") == "1" else path.read_text()


def write() -> list[Path]:
    for target in BUILDS:
        target.write_text(build(target))
    return list(BUILDS)


if __name__ == "__main__":
    for path in write():
        print(path)
