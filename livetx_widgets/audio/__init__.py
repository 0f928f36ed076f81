"""Audio sources: everything the session reads arrives as 16 kHz mono s16le chunks of ~50 ms.

    AudioSource         the interface (base.py)
    WavFile             a WAV file of any format, streamed from disk, optionally real-time paced
    AudioFile           any other audio file (mp3, m4a, ogg, opus, flac, webm, a video's sound),
                        decoded by PyAV (the ``formats`` extra) and played exactly like WavFile
    open_file           WavFile or AudioFile, from the file's contents
    NetworkStream       an HTTP/Icecast stream or an HLS playlist, live, reopened on drops
    ArraySource         a numpy array
    QueueSource         audio pushed by a producer thread, re-chunked
    BrowserMicrophone   the QueueSource the widget's browser front end feeds
    Microphone          the kernel machine's sound input (pyaudio, imported lazily)
    list_devices        the inputs Microphone can open
    resample/Resampler  numpy band-limited resampling to 16 kHz, one-shot or streaming

Nothing here knows about providers. The one exception to "no sockets outside session/":
``NetworkStream`` reads its own HTTP connection, on a thread it owns and joins (network.py).
"""

from __future__ import annotations

from .array import ArraySource
from .base import CHUNK_MS, SAMPLE_RATE, SAMPLE_WIDTH, AudioSource, chunk_bytes, pcm_seconds
from .browser import BrowserMicrophone
from .decode import AudioFile, open_file
from .microphone import InputDevice, Microphone, list_devices
from .network import NetworkStream
from .queued import QueueSource
from .resampler import Resampler, resample
from .wav import WavFile

__all__ = [
    "CHUNK_MS",
    "SAMPLE_RATE",
    "SAMPLE_WIDTH",
    "ArraySource",
    "AudioFile",
    "AudioSource",
    "BrowserMicrophone",
    "InputDevice",
    "Microphone",
    "NetworkStream",
    "QueueSource",
    "Resampler",
    "WavFile",
    "chunk_bytes",
    "list_devices",
    "open_file",
    "pcm_seconds",
    "resample",
]
