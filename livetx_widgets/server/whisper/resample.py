"""The whisper engine's streaming resampler: any input rate to the 16 kHz Whisper and Silero take.

It lives with the engine because the server is written without importing the client side's
audio layer (``livetx_widgets/audio/resampler.py`` solves the same problem for sources).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SAMPLE_RATE", "Resampler"]

SAMPLE_RATE = 16000  # what Whisper and Silero take


class Resampler:
    """Streaming windowed-sinc resampler to 16 kHz (numpy only, exact across chunk edges).

    Output sample ``k`` sits at input position ``k * rate_in / 16000``; it is computed from the
    input samples within ``half`` of that position with a Hann-windowed sinc whose cutoff is
    the lower Nyquist frequency (so downsampling filters out what would alias). An output is
    produced once the input it needs has arrived, which delays it by ``half`` input samples
    (under 3 ms) until ``drain`` pads the end with silence.
    """

    def __init__(self, rate_in: int, zero_crossings: int = 12):
        self.ratio = rate_in / SAMPLE_RATE
        self.cutoff = min(1.0, SAMPLE_RATE / rate_in)
        self.half = math.ceil(zero_crossings / self.cutoff)
        self._buf = np.zeros(self.half, dtype=np.float64)  # silence before the stream starts
        self._buf_start = -self.half  # input index of _buf[0]
        self._next = 0  # next output index

    def process(self, x: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        return self._emit(self._buf_start + len(self._buf) - self.half)

    def drain(self) -> np.ndarray:
        available = self._buf_start + len(self._buf)
        self._buf = np.concatenate([self._buf, np.zeros(self.half + 1)])
        return self._emit(available)

    def _emit(self, limit: int) -> np.ndarray:
        end = math.ceil(limit / self.ratio) if limit > 0 else 0
        if end <= self._next:
            return np.zeros(0, dtype=np.float32)
        ks = np.arange(self._next, end, dtype=np.float64)
        pos = ks * self.ratio
        base = np.floor(pos).astype(np.int64)
        offsets = np.arange(-self.half + 1, self.half + 1, dtype=np.int64)
        idx = base[:, None] + offsets[None, :]
        dist = pos[:, None] - idx
        weights = np.sinc(self.cutoff * dist) * (0.5 + 0.5 * np.cos(np.pi * dist / self.half))
        weights /= weights.sum(axis=1, keepdims=True)
        y = (weights * self._buf[idx - self._buf_start]).sum(axis=1)
        self._next = end
        keep_from = math.floor(end * self.ratio) - self.half + 1
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return y.astype(np.float32)
