"""The offline whisper engine, split by responsibility (see ``engine`` for how they fit):

``segmenter``   VAD endpointing and partial scheduling: probabilities and the audio clock in,
                decisions out; no model, no clock, no audio.
``recognizer``  Whisper decoding on CTranslate2 (faster-whisper's tokenizer and features).
``vad``         the streaming Silero VAD.
``guards``      hallucination and loop rules on decoded text.
``engine``      ``WhisperEngine`` / ``WhisperStream``: the ``server.engine`` interface.

Importing this package needs numpy only; faster-whisper, CTranslate2 and onnxruntime are
imported when a model is loaded.
"""

from .engine import WhisperEngine, WhisperStream

__all__ = ["WhisperEngine", "WhisperStream"]
