"""Sample-rate conversion to 16 kHz mono s16le, in numpy only, one chunk at a time.

Every source hands the session 16 kHz mono, but microphones run at 44.1/48 kHz and files come
at any rate, so conversion has to be streaming (a microphone never ends) and must give the same
samples whether the input arrives in one piece or in 50 ms chunks (a recording of what was sent
must match a one-shot conversion of the file). Plain decimation would fold everything between
8 and 24 kHz back onto the speech band; linear interpolation smears it. This is band-limited
interpolation with a Kaiser-windowed sinc (the method of libsamplerate and resampy), stored as a
polyphase table because the rate ratio is rational: output sample ``n`` sits at input time
``n * M / L`` and its fractional part takes only ``L`` distinct values.

The filter is zero-phase: output sample ``n`` is centred on input time ``n / out_rate``, so
timestamps need no delay correction. The cost is that the last ``taps // 2`` input samples are
held back until more input (or ``flush()``) arrives.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np

from ..errors import ConfigurationError
from .base import SAMPLE_RATE

# Pass band edge as a fraction of the lower Nyquist frequency: the 6 dB point is at 0.92 x and
# the stop band starts just below Nyquist, so 44.1/48 kHz -> 16 kHz keeps speech up to ~7 kHz and
# nothing above 8 kHz folds back. Zero crossings per side and the Kaiser beta trade filter
# length (CPU) for transition width and stop-band depth (~80 dB).
ROLLOFF = 0.92
ZERO_CROSSINGS = 64
KAISER_BETA = 8.0

_MAX_CHANNELS = 64  # a (channels, n) array passed as (n, channels) trips this, see to_mono_float
_BLOCK_ELEMENTS = 1 << 16  # gathered input values per vectorised step (bounds peak memory)


def to_mono_float(samples) -> np.ndarray:
    """``samples`` as 1-D float32 in -1..1, channels averaged.

    Accepts float arrays (taken as -1..1), int16, int32 and uint8 (8-bit WAV) arrays, 1-D or
    shaped ``(n, channels)``.
    """
    a = np.asarray(samples)
    if a.ndim == 2:
        if a.shape[1] > _MAX_CHANNELS:
            raise ConfigurationError(
                f"audio array has shape {a.shape}: expected (samples, channels) with at most "
                f"{_MAX_CHANNELS} channels; if it is (channels, samples), pass array.T"
            )
        if a.shape[1] == 0:
            raise ConfigurationError(f"audio array has shape {a.shape}: no channels")
    elif a.ndim != 1:
        raise ConfigurationError(
            f"audio array must be 1-D or (samples, channels), got {a.ndim} dimensions"
        )
    if a.dtype.kind == "f":
        f = a.astype(np.float32, copy=False)
    elif a.dtype == np.int16:
        f = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        f = (a / 2147483648.0).astype(np.float32)
    elif a.dtype == np.uint8:
        f = (a.astype(np.float32) - 128.0) / 128.0
    else:
        raise ConfigurationError(
            f"unsupported audio sample type {a.dtype}: use float (-1..1), int16, int32 or uint8"
        )
    if f.ndim == 2:
        f = f.mean(axis=1, dtype=np.float32) if f.shape[1] > 1 else f[:, 0]
    return np.ascontiguousarray(f)


def float_to_int16(f: np.ndarray) -> np.ndarray:
    """Float -1..1 to int16 with rounding and clipping (the inverse of ``/ 32768``)."""
    return np.clip(np.rint(f * 32768.0), -32768, 32767).astype(np.int16)


def check_rate(name: str, rate) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer, float)):
        raise ConfigurationError(f"{name} must be a positive number of Hz, got {rate!r}")
    if rate != int(rate) or int(rate) <= 0:
        raise ConfigurationError(f"{name} must be a positive whole number of Hz, got {rate!r}")
    return int(rate)


def _polyphase_table(up: int, down: int) -> tuple[np.ndarray, int]:
    """Filter taps per phase, shape ``(up, 2 * half + 1)``, and ``half`` (taps each side).

    ``table[p, half + j]`` weighs input sample ``k + j`` for an output whose input time is
    ``k + p / up``. The kernel is in input-sample units with its cutoff at ``ROLLOFF`` times the
    lower of the two Nyquist frequencies, so it is a plain interpolator when upsampling and an
    anti-aliasing filter when downsampling.
    """
    cutoff = ROLLOFF * min(1.0, up / down)  # fraction of the input Nyquist
    reach = ZERO_CROSSINGS / cutoff  # kernel half-width in input samples
    half = ceil(reach)
    j = np.arange(-half, half + 1, dtype=np.float64)
    tau = np.arange(up, dtype=np.float64)[:, None] / up - j[None, :]
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1.0 - (tau / reach) ** 2, 0.0, None)))
    window /= np.i0(KAISER_BETA)
    window[np.abs(tau) > reach] = 0.0
    table = cutoff * np.sinc(cutoff * tau) * window
    table /= table.sum(axis=1, keepdims=True)  # unit DC gain in every phase
    return table.astype(np.float32), half


class Resampler:
    """Streaming converter from ``in_rate`` to ``out_rate`` (16 kHz by default), mono int16 out.

    ``process`` takes any amount of float (-1..1) or int16 audio, 1-D or ``(n, channels)``
    (channels are averaged), and returns the int16 samples that are complete so far;
    ``flush`` returns the rest once the input has ended, after which the resampler starts
    afresh. Concatenating the outputs gives the same samples however the input was split.
    In all, ``ceil(n_in * out_rate / in_rate)`` samples come out.

    ``as_float=True`` returns float32 in -1..1 instead (unrounded and unclipped), for a consumer
    that computes on floats, such as a recognizer: the one resampler serves it too.
    """

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE, *, as_float: bool = False):
        self._out = (lambda f: f.astype(np.float32, copy=False)) if as_float else float_to_int16
        self._empty = np.zeros(0, np.float32 if as_float else np.int16)
        self.in_rate = check_rate("in_rate", in_rate)
        self.out_rate = check_rate("out_rate", out_rate)
        g = gcd(self.in_rate, self.out_rate)
        self._up = self.out_rate // g
        self._down = self.in_rate // g
        self.passthrough = self.in_rate == self.out_rate
        if self.passthrough:
            self._table, self._half = np.ones((1, 1), np.float32), 0
        else:
            self._table, self._half = _polyphase_table(self._up, self._down)
        self._offsets = np.arange(-self._half, self._half + 1)
        self._reset()

    def _reset(self) -> None:
        # Input samples still needed, starting at absolute index _buf_start. The zeros stand
        # for the silence before the first sample, so output 0 is centred on input 0.
        self._buf = np.zeros(self._half, np.float32)
        self._buf_start = -self._half
        self._n_in = 0
        self._n_out = 0

    @property
    def delay_samples(self) -> int:
        """Input samples held back until more input arrives (the filter's look-ahead)."""
        return self._half

    def process(self, samples) -> np.ndarray:
        """Resample the next piece of input; returns the int16 output completed so far."""
        x = to_mono_float(samples)
        if self.passthrough:
            self._n_in += len(x)
            self._n_out += len(x)
            return self._out(x)
        if len(x):
            self._buf = np.concatenate([self._buf, x])
            self._n_in += len(x)
        # Output n needs inputs up to floor(n * down / up) + half.
        ready = -(-(self._n_in - self._half) * self._up // self._down)
        return self._emit(ready)

    def flush(self) -> np.ndarray:
        """The remaining output once the input has ended (silence assumed after the end)."""
        if self.passthrough:
            self._reset()
            return self._empty.copy()
        total = -(-self._n_in * self._up // self._down)
        self._buf = np.concatenate([self._buf, np.zeros(self._half + 1, np.float32)])
        out = self._emit(total)
        self._reset()
        return out

    def _emit(self, end: int) -> np.ndarray:
        if end <= self._n_out:
            return self._empty.copy()
        out = np.empty(end - self._n_out, np.float32)
        step = max(1, _BLOCK_ELEMENTS // len(self._offsets))
        for s in range(self._n_out, end, step):  # bounded: (end - n_out) / step iterations
            pos = np.arange(s, min(s + step, end), dtype=np.int64) * self._down
            idx = (pos // self._up - self._buf_start)[:, None] + self._offsets[None, :]
            taps = self._table[pos % self._up]
            out[s - self._n_out : s - self._n_out + len(pos)] = np.einsum(
                "ij,ij->i", self._buf[idx], taps
            )
        self._n_out = end
        # Keep only what the next output still needs.
        next_k = (end * self._down) // self._up
        drop = next_k - self._half - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return self._out(out)


def resample(samples, in_rate: int, out_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One-shot conversion of a whole signal to ``out_rate`` mono int16 (see ``Resampler``)."""
    r = Resampler(in_rate, out_rate)
    head = r.process(samples)
    return np.concatenate([head, r.flush()])
