"""Turning what a client sends into the 16-bit mono PCM an engine takes.

Engines see one thing only: s16le mono at the stream's rate. Clients may send linear16, 32-bit
linear, G.711 mu-law or A-law, several interleaved channels, or (Deepgram, no ``encoding``)
a WAV file. ``PcmDecoder`` converts, splits channels and keeps the odd bytes of a frame that
ends mid-sample for the next frame, so any framing gives the same samples.
"""

from __future__ import annotations

import numpy as np

from ..wavheader import WavHeaderError, parse_wav_header

__all__ = ["SAMPLE_WIDTH", "PcmDecoder", "WavHeaderError", "parse_wav_header"]


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
