"""Audio sources: everything the session reads arrives as 16 kHz mono s16le chunks of ~50 ms.

    AudioSource         the interface (base.py)
    WavFile             a WAV file of any format, streamed from disk, optionally real-time paced
    ArraySource         a numpy array
    QueueSource         audio pushed by a producer thread, re-chunked
    BrowserMicrophone   the QueueSource the widget's browser front end feeds
    Microphone          the kernel machine's sound input (pyaudio, imported lazily)
    list_devices        the inputs Microphone can open
    resample/Resampler  numpy band-limited resampling to 16 kHz, one-shot or streaming

Nothing here knows about providers or sockets.
"""

from __future__ import annotations

from .array import ArraySource
from .base import CHUNK_MS, SAMPLE_RATE, SAMPLE_WIDTH, AudioSource, chunk_bytes, pcm_seconds
from .browser import BrowserMicrophone
from .microphone import InputDevice, Microphone, list_devices
from .queued import QueueSource
from .resampler import Resampler, resample
from .wav import WavFile

__all__ = [
    "CHUNK_MS",
    "SAMPLE_RATE",
    "SAMPLE_WIDTH",
    "ArraySource",
    "AudioSource",
    "BrowserMicrophone",
    "InputDevice",
    "Microphone",
    "QueueSource",
    "Resampler",
    "WavFile",
    "chunk_bytes",
    "list_devices",
    "pcm_seconds",
    "resample",
]
