"""``record_to=``: a WAV file of exactly the audio the session sent, as the provider heard it.

Chunks are written when they enter the audio ledger (after being cut and padded to what the
provider accepts), never again on a replay, so the file is the session's audio clock: a
segment's ``start``/``end`` can be looked up in it directly.

The file is written through ``PcmFile`` (``pcmfile.py``, the one writer of sent audio),
so it can be read back while it grows: when ``keep_audio`` is on too, segment playback reads
the recording itself instead of keeping a second copy. The header's sizes are brought up to
date every second of audio and when the sending ends, so even a kernel that dies mid-session
leaves a WAV file that players open.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH
from ..errors import ConfigurationError
from .pcmfile import PcmFile

#: The canonical 44-byte header of a mono 16-bit PCM WAV file; samples follow it.
HEADER_BYTES = 44
_PATCH_EVERY = SAMPLE_RATE * SAMPLE_WIDTH  # bytes of audio between header updates


def wav_header(data_bytes: int) -> bytes:
    """The RIFF/WAVE header of ``data_bytes`` bytes of 16 kHz mono s16le samples."""
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE,
                                SAMPLE_RATE * SAMPLE_WIDTH, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH)
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


class Recorder:
    """The ``record_to`` WAV file, readable while it is written. Not thread-safe by itself:
    ``SessionAudio`` calls it under its lock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._patched = 0
        self._finished = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = open(self.path, "w+b", buffering=0)  # noqa: SIM115 -- closed by close()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot write the recording to {self.path}: {exc.strerror}"
            ) from None
        self.pcm = PcmFile(file, data_offset=HEADER_BYTES)
        try:
            self._patch()
        except OSError as exc:
            self.pcm.close()
            raise ConfigurationError(
                f"Cannot write the recording to {self.path}: {exc.strerror or exc}"
            ) from None

    def write(self, pcm: bytes) -> None:
        self.pcm.write(pcm)
        if self.pcm.written - self._patched >= _PATCH_EVERY:
            self._patch()

    def finish(self) -> None:
        """Bring the header up to date for the last time (the file stays open for reading).
        Idempotent."""
        if not self._finished and not self.pcm.closed:
            self._patch()
            self._finished = True

    def close(self) -> None:
        """Finish the header and close the file. Idempotent."""
        with contextlib.suppress(OSError):
            self.finish()
        self.pcm.close()

    def _patch(self) -> None:
        self.pcm.write_at(0, wav_header(self.pcm.written))
        self._patched = self.pcm.written
