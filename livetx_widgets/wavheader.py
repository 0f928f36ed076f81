"""The one RIFF/WAVE header parser: the client's ``WavFile`` reads files with it and
``livetx serve`` reads the header of a WAV stream a Deepgram client sends without
``encoding``. Stdlib only, so both layers can import it.

Why not the stdlib ``wave`` module: before Python 3.12 it rejects WAVE_FORMAT_EXTENSIBLE
headers, which is what sox, ffmpeg and most recorders write for 24-bit or multi-channel files,
and it never reads IEEE float. This parser accepts integer PCM of 8/16/24/32 bits and float of
32/64 bits, plain or extensible, and says in plain words what is wrong with anything else.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

PCM = 0x0001
FLOAT = 0x0003
EXTENSIBLE = 0xFFFE
_MAX_CHUNKS = 1000  # a header walk never visits more chunks than this


class WavHeaderError(ValueError):
    """The bytes are not a WAV header this package can read (the message says why)."""


class WavHeaderIncomplete(WavHeaderError):
    """The input ended before the header did (no fmt or no data chunk yet)."""


@dataclass(frozen=True)
class WavHeader:
    """What the header says: the sample format and where the samples start."""

    sample_rate: int
    channels: int
    bits: int
    is_float: bool
    data_offset: int
    #: Bytes of samples; a size left 0 or 0xFFFFFFFF by a streaming writer, or larger than
    #: what follows (a truncated file), is taken as everything that follows.
    data_size: int

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8


def read_header(f: BinaryIO, total_size: int) -> WavHeader:
    """Parse the header of the ``total_size`` bytes readable from ``f`` (at its start); ``f`` is
    left anywhere. Raises ``WavHeaderError``."""
    riff = f.read(12)
    if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise WavHeaderError(f"not a RIFF/WAVE file (starts with {riff[:12]!r})")
    if riff[:4] == b"RF64":
        raise WavHeaderError("RF64 (over 4 GB) WAV files are not supported")
    fmt = None
    for _ in range(_MAX_CHUNKS):
        head = f.read(8)
        if len(head) < 8:
            break
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"fmt ":
            body = f.read(size)
            if len(body) < size:
                break
            fmt = _parse_fmt(body)
            f.seek(size & 1, os.SEEK_CUR)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavHeaderError("the data chunk comes before the fmt chunk")
            offset = f.tell()
            available = max(0, total_size - offset)
            if size in (0, 0xFFFFFFFF) or size > available:
                size = available
            return WavHeader(*fmt, data_offset=offset, data_size=size)
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)
    if fmt is None:
        raise WavHeaderIncomplete("no fmt chunk (truncated or not audio)")
    raise WavHeaderIncomplete("no data chunk (the file holds no audio)")


def _parse_fmt(body: bytes) -> tuple[int, int, int, bool]:
    """``(rate, channels, bits, is_float)`` of a ``fmt `` chunk's body."""
    if len(body) < 16:
        raise WavHeaderError(f"fmt chunk too short ({len(body)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE:
        if len(body) < 26:
            raise WavHeaderError("WAVE_FORMAT_EXTENSIBLE header too short")
        tag = struct.unpack("<H", body[24:26])[0]  # first bytes of the SubFormat GUID
    if tag not in (PCM, FLOAT):
        raise WavHeaderError(
            f"compressed or unknown encoding (format tag 0x{tag:04x}); only PCM and IEEE "
            f"float WAV are read"
        )
    is_float = tag == FLOAT
    allowed = (32, 64) if is_float else (8, 16, 24, 32)
    if bits not in allowed:
        raise WavHeaderError(
            f"{bits}-bit {'float' if is_float else 'integer PCM'} is not supported"
        )
    if channels < 1:
        raise WavHeaderError("the header says 0 channels")
    if rate < 1:
        raise WavHeaderError("the header says a sample rate of 0 Hz")
    if block_align != channels * bits // 8:
        raise WavHeaderError(
            f"inconsistent header: block align {block_align} for {channels} channels of {bits} bits"
        )
    return rate, channels, bits, is_float


def parse_wav_header(data: bytes) -> tuple[int, int, int]:
    """``(sample_rate, channels, data_offset)`` of a 16-bit integer PCM WAV header at the start
    of ``data`` (what ``livetx serve`` decodes from a stream sent without ``encoding``).

    The whole header, up to the start of the ``data`` chunk, must be in ``data``: a client that
    streams a WAV file sends it in its first frame.
    """
    try:
        header = read_header(io.BytesIO(data), len(data))
    except WavHeaderIncomplete as exc:
        raise WavHeaderIncomplete(
            f"the WAV header is incomplete in the first audio frame ({exc})"
        ) from None
    if header.is_float or header.bits != 16:
        kind = "float" if header.is_float else "integer PCM"
        raise WavHeaderError(f"{header.bits}-bit {kind} WAV is not 16-bit PCM")
    return header.sample_rate, header.channels, header.data_offset
