"""The notebook front end: ``LiveTranscriber``, ``CompareTranscriber`` and their assets
(``static/widget.js``/``.css``, ``static/compare.js``/``.css``).

The only layer that imports ipywidgets/anywidget; everything else works without Jupyter.
"""

from __future__ import annotations

from .compare_widget import CompareTranscriber
from .widget import LiveTranscriber

__all__ = ["CompareTranscriber", "LiveTranscriber"]
