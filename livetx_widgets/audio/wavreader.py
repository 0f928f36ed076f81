"""A minimal streaming RIFF/WAVE reader: header parsed once, frames read in blocks.

Why not the stdlib ``wave`` module: before Python 3.12 it rejects WAVE_FORMAT_EXTENSIBLE
headers, which is what sox, ffmpeg and most recorders write for 24-bit or multi-channel files,
and it never reads IEEE float. This reader handles integer PCM of 8/16/24/32 bits and float
of 32/64 bits, plain or extensible, and turns every problem into a ``ConfigurationError``
that names the file and says how to convert it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_MAX_CHUNKS = 1000  # a header walk never visits more chunks than this
_CONVERT = "convert it, e.g. `sox in.wav -b 16 -c 1 -r 16000 out.wav`"


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


def _bad(path: Path, what: str) -> ConfigurationError:
    return ConfigurationError(f"cannot read WAV file {str(path)!r}: {what}")


class WavReader:
    """Reads frames of one WAV file as float32 ``(frames, channels)`` blocks."""

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

    def _parse_header(self) -> tuple[WavFormat, int]:
        f = self._file
        file_size = os.fstat(f.fileno()).st_size
        riff = f.read(12)
        if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
            raise _bad(self.path, f"not a RIFF/WAVE file (starts with {riff[:12]!r}); {_CONVERT}")
        if riff[:4] == b"RF64":
            raise _bad(self.path, f"RF64 (over 4 GB) WAV files are not supported; {_CONVERT}")
        fmt = None
        for _ in range(_MAX_CHUNKS):
            head = f.read(8)
            if len(head) < 8:
                break
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id == b"fmt ":
                fmt = self._parse_fmt(f.read(size))
                f.seek(size & 1, os.SEEK_CUR)
            elif chunk_id == b"data":
                if fmt is None:
                    raise _bad(self.path, "the data chunk comes before the fmt chunk")
                offset = f.tell()
                available = file_size - offset
                # Streaming writers leave the size 0 or 0xFFFFFFFF; truncated files claim more.
                if size in (0, 0xFFFFFFFF) or size > available:
                    size = available
                rate, channels, bits, is_float = fmt
                n_frames = size // (channels * bits // 8)
                return WavFormat(rate, channels, bits, is_float, n_frames), offset
            else:
                f.seek(size + (size & 1), os.SEEK_CUR)
        if fmt is None:
            raise _bad(self.path, f"no fmt chunk (truncated or not audio); {_CONVERT}")
        raise _bad(self.path, "no data chunk (the file holds no audio)")

    def _parse_fmt(self, body: bytes) -> tuple[int, int, int, bool]:
        if len(body) < 16:
            raise _bad(self.path, f"fmt chunk too short ({len(body)} bytes)")
        tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
        if tag == _EXTENSIBLE:
            if len(body) < 26:
                raise _bad(self.path, "WAVE_FORMAT_EXTENSIBLE header too short")
            tag = struct.unpack("<H", body[24:26])[0]  # first bytes of the SubFormat GUID
        if tag not in (_PCM, _FLOAT):
            raise _bad(
                self.path,
                f"compressed or unknown encoding (format tag 0x{tag:04x}); only PCM and IEEE "
                f"float WAV are read; {_CONVERT}",
            )
        is_float = tag == _FLOAT
        allowed = (32, 64) if is_float else (8, 16, 24, 32)
        if bits not in allowed:
            kind = "float" if is_float else "integer PCM"
            raise _bad(self.path, f"{bits}-bit {kind} is not supported; {_CONVERT}")
        if channels < 1:
            raise _bad(self.path, "the header says 0 channels")
        if rate < 1:
            raise _bad(self.path, "the header says a sample rate of 0 Hz")
        if block_align != channels * bits // 8:
            raise _bad(
                self.path,
                f"inconsistent header: block align {block_align} for {channels} channels of "
                f"{bits} bits",
            )
        return rate, channels, bits, is_float

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
