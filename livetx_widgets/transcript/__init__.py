"""The transcript model: events in, committed segments, live partials and exports out.

``Transcript`` is what a session fills and a user reads (``text``, ``to_dataframe()``,
``to_srt()``...); ``Segment`` is one committed piece; ``Word`` is re-exported from
:mod:`livetx_widgets.events` so that users need only this package.
"""

from __future__ import annotations

from ..events import Word
from .model import Segment, Transcript

__all__ = ["Segment", "Transcript", "Word"]
