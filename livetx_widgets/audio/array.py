"""``ArraySource``: audio already in memory (a numpy array) as a 16 kHz mono source."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from .base import SAMPLE_RATE
from .finite import FiniteSource
from .resampler import check_rate, resample, to_mono_float


class ArraySource(FiniteSource):
    """Plays a numpy array as 16 kHz mono s16le chunks.

    Args:
        array: float samples in -1..1 or int16, 1-D or shaped ``(samples, channels)``
            (channels are averaged).
        sample_rate: the array's rate in Hz; other rates are resampled to 16 kHz.
        realtime: pace chunks to the audio clock (``True``) or return them at once (default,
            because arrays are usually analysed, not listened to).
        chunk_ms: chunk duration in milliseconds.

    The array is converted once, here, so a bad array fails at construction.
    """

    def __init__(
        self,
        array,
        sample_rate: int = SAMPLE_RATE,
        *,
        realtime: bool = False,
        chunk_ms: int = 50,
    ) -> None:
        super().__init__(realtime=realtime, chunk_ms=chunk_ms)
        if not isinstance(array, np.ndarray):
            try:
                array = np.asarray(array)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"ArraySource needs a numpy array: {exc}") from exc
        rate = check_rate("sample_rate", sample_rate)
        mono = to_mono_float(array)
        self.input_rate = rate
        self.duration_s = len(mono) / rate
        self._pcm_all = resample(mono, rate, SAMPLE_RATE).tobytes()
        self._offset = 0

    def __repr__(self) -> str:
        return (
            f"ArraySource({self.duration_s:.2f} s at {self.input_rate} Hz, "
            f"realtime={self.realtime})"
        )

    def _open(self) -> None:
        self._offset = 0

    def _pcm(self, n_bytes: int) -> bytes:
        chunk = self._pcm_all[self._offset : self._offset + n_bytes]
        self._offset += len(chunk)
        return chunk
