"""livetx-widgets: live speech transcription in Jupyter, headless and from a terminal.

The widget (``LiveTranscriber``) is imported lazily so that headless use (``TranscriptionSession``,
``livetx transcribe``, ``livetx serve``) never pays for importing Jupyter.
"""

from __future__ import annotations

from importlib import import_module

from .errors import (
    AudioDeviceError,
    AudioFileError,
    AudioStreamError,
    AuthenticationError,
    CodecError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
    SessionStateError,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "LiveTranscriber": ".ui",
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
    "AudioFileError",
    "AudioStreamError",
    "AuthenticationError",
    "CodecError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "LivetxError",
    "ProviderError",
    "SessionStateError",
    *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'livetx_widgets' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
