"""Compare providers side by side on the same audio: ``CompareSession`` and its metrics.

Headless (no Jupyter imports): ``tee.py`` (one source read once for every provider),
``session.py`` (``CompareSession``), ``metrics.py`` (latencies, revisions, WER on the shared
audio clock), ``align.py`` (finals lined up by time). The widget is ``ui/compare_widget.py``.
"""

from .metrics import Metrics
from .session import CompareSession
from .tee import AudioTee, LaggingError, TeeBranch

__all__ = ["AudioTee", "CompareSession", "LaggingError", "Metrics", "TeeBranch"]
