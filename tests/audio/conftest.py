"""Audio test helpers: WAV writers for synthetic files.

The real virtual microphone (``pulse_mic``) lives in ``tests/conftest.py``: the session and
widget tests use it too.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

# -- synthetic WAV files ----------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def quantize(samples: np.ndarray, width: int) -> np.ndarray:
    """Float -1..1 to the integers a ``width``-byte PCM WAV stores (8-bit is unsigned)."""
    bits = 8 * width
    scale = 2 ** (bits - 1)
    q = np.clip(np.rint(samples.astype(np.float64) * scale), -scale, scale - 1).astype(np.int64)
    return q + 128 if width == 1 else q


def dequantize(q: np.ndarray, width: int) -> np.ndarray:
    """What a correct reader decodes from ``quantize`` output, as float64."""
    scale = 2 ** (8 * width - 1)
    return ((q - 128) if width == 1 else q) / scale


def pcm_bytes(q: np.ndarray, width: int) -> bytes:
    """Little-endian PCM bytes of quantized samples, written byte by byte (independent of the
    reader's numpy decoding)."""
    flat = q.reshape(-1).astype(np.int64) % (1 << (8 * width))  # two's complement
    out = np.zeros((len(flat), width), np.uint8)
    for i in range(width):
        out[:, i] = (flat >> (8 * i)) & 0xFF
    return out.tobytes()


def write_pcm_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> np.ndarray:
    """Write float ``samples`` (1-D or ``(n, channels)``) with the stdlib ``wave`` module.

    Returns the float64 ``(n, channels)`` values a correct reader must decode.
    """
    s = samples.reshape(len(samples), -1)
    q = quantize(s, width)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(s.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm_bytes(q, width))
    return dequantize(q, width)


def write_raw_wav(
    path: Path,
    data: bytes,
    *,
    rate: int,
    channels: int,
    bits: int,
    tag: int = 1,
    extensible: bool = False,
    data_size: int | None = None,
    extra_chunk: bool = False,
) -> None:
    """Write a WAV header by hand: float (tag 3), WAVE_FORMAT_EXTENSIBLE, odd chunks, sizes."""
    block = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:  # an odd-sized chunk before data exercises the pad byte
        body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    size = len(data) if data_size is None else data_size
    body += b"data" + struct.pack("<I", size) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.fixture
def wav_writer():
    """The WAV helpers above, for test modules (importlib mode cannot import conftest)."""

    class Writers:
        pass

    w = Writers()
    w.tone = tone
    w.pcm = write_pcm_wav
    w.raw = write_raw_wav
    w.quantize = quantize
    w.pcm_bytes = pcm_bytes
    return w
