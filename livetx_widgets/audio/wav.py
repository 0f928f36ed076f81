"""``WavFile``: a WAV file of any rate, channel count and sample width as a 16 kHz mono source.

Needs nothing but numpy: WAV is the one format a base install reads. Streaming, resampling and
pacing are ``StreamedFile``'s, shared with ``AudioFile`` (every other format, via PyAV).
"""

from __future__ import annotations

import os

from .streamed import StreamedFile
from .wavreader import WavReader


class WavFile(StreamedFile):
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
        super().__init__(path, realtime=realtime, chunk_ms=chunk_ms, loop=loop)
        probe = WavReader(self.path)  # validates now; the real reader opens in start()
        probe.close()
        self.format = probe.format
        self.duration_s = probe.format.duration_s

    def __repr__(self) -> str:
        f = self.format
        return (
            f"WavFile({self.path!r}, {f.sample_rate} Hz, {f.channels} ch, {f.bits}-bit"
            f"{' float' if f.is_float else ''}, {self.duration_s:.1f} s, realtime={self.realtime})"
        )

    def _reader(self) -> WavReader:
        return WavReader(self.path)
