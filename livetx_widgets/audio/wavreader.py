"""A streaming WAV file reader: the header parsed once (``livetx_widgets.wavheader``, the one
parser), frames read in blocks and decoded to float32. Every problem is a
``ConfigurationError`` that names the file and says how to convert it; a file cut off before
the end its header announces plays what it holds, then says so (``problem``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioFileError, ConfigurationError
from ..wavheader import WavHeaderError, read_header

_PLACEHOLDER = 0x7FFFFF00  # data sizes from here up are "unknown" (0x7FFFFFFF, 0xFFFFFFFF...)
_CONVERT = (
    'install the formats extra (pip install "livetx-widgets[formats]"), which reads it with '
    "FFmpeg, or convert it, e.g. `sox in.wav -b 16 out.wav`"
)


@dataclass(frozen=True)
class WavFormat:
    """What the header says about the samples."""

    sample_rate: int
    channels: int
    bits: int
    is_float: bool
    n_frames: int

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate


class WavReader:
    """Reads frames of one WAV file as float32 ``(frames, channels)`` blocks (a
    ``StreamedFile`` reader: see ``streamed.py``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigurationError(f"audio file not found: {str(self.path)!r}")
        if not self.path.is_file():
            raise ConfigurationError(f"audio path is not a file: {str(self.path)!r}")
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ConfigurationError(f"cannot open audio file {str(self.path)!r}: {exc}") from exc
        try:
            self.format, self._data_offset = self._parse_header()
        except BaseException:
            self._file.close()
            raise
        self._frames_left = self.format.n_frames
        self.frames_read = 0
        # The StreamedFile reader interface: set when the header announced more audio than
        # the file holds (a cut-off download or copy); raised after what it holds is played.
        self.problem: AudioFileError | None = self._truncation()

    def _truncation(self) -> AudioFileError | None:
        """The data chunk's own size field against the audio the file holds.

        Streaming recorders that could not go back to fill the size in leave 0 or a
        placeholder near 4 GB; those mean "to the end of the file", not a cut.
        """
        self._file.seek(self._data_offset - 4)
        raw = self._file.read(4)
        self._file.seek(self._data_offset)
        declared = struct.unpack("<I", raw)[0] if len(raw) == 4 else 0
        fmt = self.format
        held = fmt.n_frames * fmt.block_align
        if declared == 0 or declared >= _PLACEHOLDER or declared <= held:
            return None
        want = declared // fmt.block_align / fmt.sample_rate
        name = str(self.path)
        return AudioFileError(
            f"{name!r} is truncated: its header announces {want:.1f} s of audio but the file "
            f"holds {fmt.duration_s:.1f} s; what it holds was played",
            path=name, stopped_at_s=round(fmt.duration_s, 3), duration_s=want,
        )  # fmt: skip

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    def _parse_header(self) -> tuple[WavFormat, int]:
        try:
            h = read_header(self._file, os.fstat(self._file.fileno()).st_size)
        except WavHeaderError as exc:
            raise ConfigurationError(
                f"cannot read WAV file {str(self.path)!r}: {exc}; {_CONVERT}"
            ) from None
        n_frames = h.data_size // h.block_align
        self._file.seek(h.data_offset)
        return WavFormat(h.sample_rate, h.channels, h.bits, h.is_float, n_frames), h.data_offset

    def rewind(self) -> None:
        """Go back to the first frame."""
        self._file.seek(self._data_offset)
        self._frames_left = self.format.n_frames

    def read(self, n_frames: int) -> np.ndarray:
        """Up to ``n_frames`` frames as float32 ``(frames, channels)``; empty at the end."""
        fmt = self.format
        n = max(0, min(n_frames, self._frames_left))
        raw = self._file.read(n * fmt.block_align)
        n = len(raw) // fmt.block_align
        self._frames_left = 0 if n == 0 else self._frames_left - n
        self.frames_read += n
        raw = raw[: n * fmt.block_align]
        return _decode(raw, fmt).reshape(n, fmt.channels)

    def close(self) -> None:
        self._file.close()


def _decode(raw: bytes, fmt: WavFormat) -> np.ndarray:
    if fmt.is_float:
        return np.frombuffer(raw, "<f4" if fmt.bits == 32 else "<f8").astype(np.float32)
    if fmt.bits == 8:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if fmt.bits == 16:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if fmt.bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float32) / float(1 << 23)
    return (np.frombuffer(raw, "<i4") / 2147483648.0).astype(np.float32)
