"""What every file source shares: a reader of native-rate blocks, the one resampler, chunking.

``WavFile`` (numpy only) and ``AudioFile`` (any format, decoded by PyAV) differ only in how
they get frames out of the file; this base turns any such reader into 16 kHz mono s16le chunks
with ``FiniteSource``'s pacing, so both behave exactly alike: the same chunk sizes, the same
real-time clock, the same end of file. The file is read a block at a time (a two-hour recording
never sits in memory whole) and the first chunk is ready at once whatever the file's length.

A reader has ``sample_rate`` (the rate of the block ``read`` returned last: a decoded stream may
change rate part way), ``read(n) -> array (frames, channels)`` (empty at the end), ``rewind()``,
``close()``, ``frames_read`` and ``problem``: ``None``, or the error to raise once the audio it
could read has been played (a truncated or damaged file).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import LivetxError
from .base import SAMPLE_RATE
from .finite import FiniteSource
from .resampler import Resampler

_BLOCK_S = 0.1  # input read per step: small enough to start fast, big enough to be cheap
_MAX_REWINDS = 2  # a looping file rewinds at most twice in a row (the second only if empty)


class StreamedFile(FiniteSource):
    """Base of file sources. Subclasses implement ``_reader()``: a reader at the first frame."""

    def __init__(self, path: str | os.PathLike, *, realtime: bool, chunk_ms: int, loop: bool):
        super().__init__(realtime=realtime, chunk_ms=chunk_ms)
        self.path = os.fspath(path)
        self.loop = bool(loop)
        self.stopped_at_s: float | None = None  # where a truncated file's audio ended
        self._reader_obj = None
        self._resampler: Resampler | None = None
        self._out = bytearray()
        self._eof = False
        self._problem: LivetxError | None = None

    def _reader(self):
        raise NotImplementedError

    # -- FiniteSource hooks -----------------------------------------------------------------
    def _open(self) -> None:
        self._reader_obj = self._reader()
        self._resampler = None
        self._out = bytearray()
        self._eof = False
        self._problem = None
        self.stopped_at_s = None

    def _pcm(self, n_bytes: int) -> bytes:
        reader = self._reader_obj
        rewinds = 0
        # Bounded: each pass reads at least one frame or reaches the end of the file, and a
        # looping file rewinds at most twice in a row.
        while len(self._out) < n_bytes and not self._eof:
            frames = reader.read(max(1, int(reader.sample_rate * _BLOCK_S)))
            if len(frames):
                rewinds = 0
                self._out += self._resample(frames, reader.sample_rate)
            elif self.loop and reader.frames_read and rewinds < _MAX_REWINDS:
                reader.rewind()
                rewinds += 1
            else:
                if self._resampler is not None:
                    self._out += self._resampler.flush().tobytes()
                self._eof = True
                self._problem = reader.problem
                if self._problem is not None:
                    self.stopped_at_s = getattr(self._problem, "stopped_at_s", None)
        chunk = bytes(self._out[:n_bytes])
        del self._out[:n_bytes]
        return chunk

    def _resample(self, frames: np.ndarray, rate: int) -> bytes:
        head = b""
        if self._resampler is None or self._resampler.in_rate != rate:
            if self._resampler is not None:  # the stream changed rate: end the old filter
                head = self._resampler.flush().tobytes()
            self._resampler = Resampler(rate, SAMPLE_RATE)
        return head + self._resampler.process(frames).tobytes()

    def _close(self) -> None:
        if self._reader_obj is not None:
            self._reader_obj.close()
            self._reader_obj = None

    def _end_error(self) -> LivetxError | None:
        return self._problem

    # -- whole-file access -----------------------------------------------------------------
    def read_all(self) -> np.ndarray:
        """The whole file as 16 kHz mono int16, without pacing (for tests and exports).

        Raises the reader's ``problem`` (a truncated file) after reading what it holds."""
        reader = self._reader()
        try:
            resampler: Resampler | None = None
            parts: list[np.ndarray] = []
            # Bounded by the file: every pass returns frames or ends it.
            while True:
                frames = reader.read(max(1, reader.sample_rate * 10))
                if not len(frames):
                    break
                if resampler is None or resampler.in_rate != reader.sample_rate:
                    if resampler is not None:
                        parts.append(resampler.flush())
                    resampler = Resampler(reader.sample_rate, SAMPLE_RATE)
                parts.append(resampler.process(frames))
            if resampler is not None:
                parts.append(resampler.flush())
            if reader.problem is not None:
                raise reader.problem
            return np.concatenate(parts) if parts else np.zeros(0, np.int16)
        finally:
            reader.close()
