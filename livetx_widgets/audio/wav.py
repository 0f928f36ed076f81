"""``WavFile``: a WAV file of any rate, channel count and sample width as a 16 kHz mono source.

The file is streamed from disk in blocks (an hour-long recording is never loaded whole) and
converted on the fly, so the first chunk is ready at once whatever the file's length.
"""

from __future__ import annotations

import os

import numpy as np

from .base import SAMPLE_RATE
from .finite import FiniteSource
from .resampler import Resampler
from .wavreader import WavReader

_BLOCK_S = 0.1  # input read per step: small enough to start fast, big enough to be cheap


class WavFile(FiniteSource):
    """Plays a WAV file as 16 kHz mono s16le chunks.

    Args:
        path: the file. Integer PCM of 8/16/24/32 bits or IEEE float, any rate and channel
            count (channels are averaged). A missing or unreadable file raises
            ``ConfigurationError`` here, not later in a background thread.
        realtime: release chunks at the pace of the audio clock (``True``, like a microphone)
            or as fast as ``read`` is called (``False``).
        chunk_ms: chunk duration in milliseconds.
        loop: start again from the beginning at the end of the file (the source then never
            ends; stop it yourself).

    ``duration_s`` is the length of the file (one pass); ``position_s`` the audio returned.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        realtime: bool = True,
        chunk_ms: int = 50,
        loop: bool = False,
    ) -> None:
        super().__init__(realtime=realtime, chunk_ms=chunk_ms)
        self.path = os.fspath(path)
        self.loop = bool(loop)
        probe = WavReader(self.path)  # validates now; the real reader opens in start()
        probe.close()
        self.format = probe.format
        self.duration_s = probe.format.duration_s
        self._reader: WavReader | None = None
        self._resampler: Resampler | None = None
        self._out = bytearray()
        self._eof = False

    def __repr__(self) -> str:
        f = self.format
        return (
            f"WavFile({self.path!r}, {f.sample_rate} Hz, {f.channels} ch, {f.bits}-bit"
            f"{' float' if f.is_float else ''}, {self.duration_s:.1f} s, realtime={self.realtime})"
        )

    def _open(self) -> None:
        self._reader = WavReader(self.path)
        self._resampler = Resampler(self._reader.format.sample_rate, SAMPLE_RATE)
        self._out = bytearray()
        self._eof = False

    def _pcm(self, n_bytes: int) -> bytes:
        reader, resampler = self._reader, self._resampler
        block = max(1, int(reader.format.sample_rate * _BLOCK_S))
        rewinds = 0
        # Bounded: each pass reads at least one frame or reaches the end of the file, and a
        # looping file rewinds at most twice in a row (the second time only if it is empty).
        while len(self._out) < n_bytes and not self._eof:
            frames = reader.read(block)
            if len(frames):
                rewinds = 0
                self._out += resampler.process(frames).tobytes()
            elif self.loop and reader.format.n_frames and rewinds < 2:
                reader.rewind()
                rewinds += 1
            else:
                self._out += resampler.flush().tobytes()
                self._eof = True
        chunk = bytes(self._out[:n_bytes])
        del self._out[:n_bytes]
        return chunk

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def read_all(self) -> np.ndarray:
        """The whole file as 16 kHz mono int16, without pacing (for tests and exports)."""
        reader = WavReader(self.path)
        try:
            resampler = Resampler(reader.format.sample_rate, SAMPLE_RATE)
            parts = []
            block = max(1, reader.format.sample_rate * 10)
            for _ in range(reader.format.n_frames // block + 2):  # bounded by the file length
                frames = reader.read(block)
                if not len(frames):
                    break
                parts.append(resampler.process(frames))
            parts.append(resampler.flush())
            return np.concatenate(parts)
        finally:
            reader.close()
