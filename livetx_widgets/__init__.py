"""livetx-widgets: live speech transcription in Jupyter, headless and from a terminal.

The widget (``LiveTranscriber``) is imported lazily so that headless use (``TranscriptionSession``,
``livetx transcribe``, ``livetx serve``) never pays for importing Jupyter.
"""

from __future__ import annotations

from .errors import (
    AudioDeviceError,
    AudioDroppedError,
    AudioFileError,
    AudioNotKeptError,
    AudioStreamError,
    AuthenticationError,
    CodecError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
    SegmentNotFoundError,
    SessionStateError,
)
from .lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "LiveTranscriber": ".ui",
    "CompareTranscriber": ".ui",
    "CompareSession": ".compare",
    "TranscriptionSession": ".session",
    "SessionMetadata": ".session",
    "Transcript": ".transcript",
    "Segment": ".transcript",
    "Word": ".events",
    "Microphone": ".audio",
    "WavFile": ".audio",
    "AudioFile": ".audio",
    "NetworkStream": ".audio",
    "ArraySource": ".audio",
    "QueueSource": ".audio",
    "BrowserMicrophone": ".audio",
}

__all__ = [
    "AudioDeviceError",
    "AudioDroppedError",
    "AudioNotKeptError",
    "AudioFileError",
    "AudioStreamError",
    "AuthenticationError",
    "CodecError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "LivetxError",
    "ProviderError",
    "SegmentNotFoundError",
    "SessionStateError",
    *_LAZY,
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
