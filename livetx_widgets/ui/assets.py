"""The widget's front-end module, built from its two sources.

anywidget serves a widget as ONE ES module and cannot resolve relative imports, so
``static/capture.js`` (the browser microphone: it imports nothing and keeps its top-level
names distinct) is put in front of ``static/widget.js`` (the view) in ``static/livetx.js``.
That built file is committed and given to anywidget as a ``Path``, which keeps anywidget's
file hot reload (``ANYWIDGET_HMR=1``) working: after editing a source, run
``python livetx_widgets/ui/assets.py`` (a test checks the built file is current).
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
SOURCES = ("capture.js", "widget.js")
BUILT = STATIC / "livetx.js"
HEADER = "// Built from static/capture.js + static/widget.js by livetx_widgets/ui/assets.py.\n"


def build() -> str:
    """The module's text: the sources in order, behind a header saying where it comes from."""
    return HEADER + "\n".join((STATIC / name).read_text() for name in SOURCES)


def write() -> Path:
    BUILT.write_text(build())
    return BUILT


if __name__ == "__main__":
    print(write())
