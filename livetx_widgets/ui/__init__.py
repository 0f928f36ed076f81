"""The notebook front end: ``LiveTranscriber`` and its assets (``static/widget.js``/``.css``).

The only layer that imports ipywidgets/anywidget; everything else works without Jupyter.
"""

from __future__ import annotations

from .widget import LiveTranscriber

__all__ = ["LiveTranscriber"]
