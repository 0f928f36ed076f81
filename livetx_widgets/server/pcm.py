"""Turning what a client sends into the 16-bit mono PCM an engine takes.

Engines see one thing only: s16le mono at the stream's rate. Clients may send linear16, 32-bit
linear, G.711 mu-law or A-law, several interleaved channels, or (Deepgram, no ``encoding``)
a WAV file. ``PcmDecoder`` converts, splits channels and keeps the odd bytes of a frame that
ends mid-sample for the next frame, so any framing gives the same samples.
"""

from __future__ import annotations

import struct

import numpy as np


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84) << exponent
    samples = magnitude - 0x84
    return np.where(u & 0x80, -samples, samples).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


_TABLES = {"mulaw": _mulaw_table(), "alaw": _alaw_table()}

#: Bytes per sample of each encoding this server can decode.
SAMPLE_WIDTH = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}


class PcmDecoder:
    """Stateful decoder from one client encoding to per-channel (or mixed) s16le mono."""

    def __init__(self, encoding: str, channels: int = 1, *, split: bool = False):
        if encoding not in SAMPLE_WIDTH:
            raise ValueError(f"unsupported encoding {encoding!r}")
        self.encoding = encoding
        self.channels = channels
        self.split = split
        self._frame = SAMPLE_WIDTH[encoding] * channels
        self._rest = b""

    @property
    def outputs(self) -> int:
        """How many mono streams ``decode`` returns: one per channel when split, else one."""
        return self.channels if self.split else 1

    def decode(self, data: bytes) -> list[bytes]:
        """Decode the next bytes; return one s16le buffer per output (possibly empty)."""
        data = self._rest + data
        usable = len(data) - len(data) % self._frame
        self._rest = data[usable:]
        samples = self._samples(data[:usable]).reshape(-1, self.channels)
        if self.split:
            return [samples[:, c].astype("<i2").tobytes() for c in range(self.channels)]
        if self.channels == 1:
            return [samples[:, 0].astype("<i2").tobytes()]
        mixed = samples.astype(np.int32).mean(axis=1).round().astype("<i2")
        return [mixed.tobytes()]

    def _samples(self, data: bytes) -> np.ndarray:
        if self.encoding == "linear16":
            return np.frombuffer(data, dtype="<i2")
        if self.encoding == "linear32":
            return (np.frombuffer(data, dtype="<i4") >> 16).astype(np.int16)
        return _TABLES[self.encoding][np.frombuffer(data, dtype=np.uint8)]


class WavHeaderError(ValueError):
    """The bytes do not start with a 16-bit PCM WAV header this server can read."""


def parse_wav_header(data: bytes) -> tuple[int, int, int]:
    """``(sample_rate, channels, data_offset)`` of a 16-bit PCM RIFF/WAVE header in ``data``.

    The whole header (up to the start of the ``data`` chunk) must be in ``data``; a client that
    streams a WAV file sends it in its first frame.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavHeaderError("not a RIFF/WAVE file")
    pos, rate, channels, bits = 12, None, None, None
    for _ in range(64):  # a WAV header has a handful of chunks; bound the walk
        if pos + 8 > len(data):
            break
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt ":
            if body + 16 > len(data):
                break
            fmt, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            bits = struct.unpack("<H", data[body + 14 : body + 16])[0]
            if fmt not in (1, 0xFFFE) or bits != 16:
                raise WavHeaderError(f"WAV format {fmt} with {bits}-bit samples is not 16-bit PCM")
        elif chunk == b"data":
            if rate is None or channels is None:
                break
            return rate, channels, body
        pos = body + size + (size & 1)
    raise WavHeaderError("the WAV header is incomplete in the first audio frame")
