"""Where ``WhisperEngine`` was first imported from; the engine now lives in ``server.whisper``.

Kept so that ``from livetx_widgets.server.whisper_engine import WhisperEngine`` (the engine
factory, the benchmark, notebooks) keeps working.
"""

from .whisper import WhisperEngine, WhisperStream

__all__ = ["WhisperEngine", "WhisperStream"]
