"""Compare providers side by side on the same audio: ``CompareSession`` and its metrics.

Headless (no Jupyter imports): ``tee.py`` (one source read once for every provider),
``session.py`` (``CompareSession``), ``metrics.py`` (latencies, revisions, WER on the shared
audio clock), ``align.py`` (finals lined up by time), ``terminal.py`` (``livetx compare``).
The widget is ``ui/compare_widget.py``. Names are imported on first use, so that the CLI's
parser can import ``terminal`` without loading the sessions.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "CompareSession": ".session",
    "AudioTee": ".tee",
    "TeeBranch": ".tee",
    "LaggingError": ".tee",
    "Metrics": ".metrics",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'livetx_widgets.compare' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
