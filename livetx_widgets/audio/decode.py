"""Every other audio format: files decoded by PyAV (FFmpeg in a wheel), one packet at a time.

mp3, m4a/aac, ogg/vorbis, opus, flac, webm, wav and the audio track of mp4/mkv/mov all come out
of FFmpeg as frames at the file's own rate and layout; ``frame_samples`` turns a frame into a
``(frames, channels)`` array without converting anything, and the one resampler of this
package (``resampler.py``) does the downmix and the rate conversion, as for ``WavFile``.
``AudioFile`` is a ``StreamedFile``, so pacing, chunking and the end of the file are exactly
``WavFile``'s. Decoding streams: a packet is demuxed and decoded only when its audio is needed,
so a two-hour file holds one frame in memory, not two hours.

PyAV is the ``formats`` extra (``offline`` brings it too, through faster-whisper); it is imported
only here, when a non-WAV file or a network stream is opened, so that a base install still
reads WAV and names the ``pip install`` for anything else (``require_av``).

What can go wrong with a file, said in plain words and naming the file (``AudioFileError``):
not audio at all, no audio track (a video-only file), or truncated/damaged. A truncated file
plays what it holds; the error comes after it, with ``stopped_at_s``. FFmpeg knows a file
ended early when decoding fails part way or when fewer samples came out than the container
states (a header with a length: mp3 with a Xing/LAME header, flac, mp4/m4a/mov, mkv/webm).
Where FFmpeg only estimates the length from the file size (ADTS aac, ogg, an mp3 without such a
header) only a decoding failure tells: a cut in the middle of a frame does, a clean cut does
not (such a file just plays to where it ends).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioFileError, ConfigurationError
from ..extras import require
from .streamed import StreamedFile
from .wav import WavFile

#: A file is truncated when the audio decoded falls short of the announced length by more
#: than this (seconds, or this fraction of the length, whichever is larger): encoders pad and
#: prime by a few ms, container durations round.
TRUNCATION_SLACK_S = 0.25
TRUNCATION_SLACK_FRACTION = 0.01
_MAX_DECODE_ERRORS = 50  # bad packets skipped before a damaged file is given up on


def require_av(what: str) -> None:
    """``MissingExtraError`` naming ``pip install "livetx-widgets[formats]"`` without PyAV."""
    require(what, "formats")


def frame_samples(frame: Any) -> np.ndarray:
    """A decoded ``av.AudioFrame`` as ``(frames, channels)`` in its own sample type.

    Planar formats come as ``(channels, frames)``, packed ones as ``(1, frames * channels)``;
    both become ``(frames, channels)``. The sample type is kept (float, int16, int32, uint8):
    ``resampler.to_mono_float`` scales each.
    """
    a = frame.to_ndarray()
    channels = len(frame.layout.channels) or 1
    a = a.T if frame.format.is_planar else a.reshape(-1, channels)
    if a.dtype == np.int64:  # s64: rare, and to_mono_float does not scale it
        a = (a / float(1 << 63)).astype(np.float32)
    return a


def is_wav(path: str | os.PathLike) -> bool:
    """Whether the file starts like a RIFF/WAVE file (its contents, not its name, decide)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE"


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ConfigurationError(f"audio file not found: {str(path)!r}")
    if not path.is_file():
        raise ConfigurationError(f"audio path is not a file: {str(path)!r}")


class DecodedReader:
    """Reads the best audio track of one file as native-rate ``(frames, channels)`` blocks.

    A ``StreamedFile`` reader (see ``streamed.py``): ``sample_rate`` is the rate of the block
    returned last; ``problem`` becomes an ``AudioFileError`` at the end of a truncated file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import av  # the formats extra: checked by AudioFile before it gets here

        self._av = av
        self.path = Path(path)
        _check_path(self.path)
        name = str(self.path)
        try:
            self._container = av.open(name, "r")
        except av.error.FFmpegError as exc:
            raise AudioFileError(
                f"{name!r} is not an audio or video file FFmpeg can read ({_reason(exc)}); "
                "if it is a recording that was cut off (an mp4/m4a/mov whose index is at the "
                "end), it cannot be played at all",
                path=name,
            ) from None
        except OSError as exc:
            raise AudioFileError(f"cannot open audio file {name!r}: {exc}", path=name) from None
        try:
            self._stream = self._container.streams.best("audio")
            if self._stream is None:
                kinds = sorted({s.type for s in self._container.streams}) or ["no streams"]
                raise AudioFileError(
                    f"{name!r} has no audio track (it holds {', '.join(kinds)}): choose a file "
                    "with sound",
                    path=name,
                )
            self.codec = self._stream.codec_context.name
            self.format_name = self._container.format.name
            self.duration_s = _duration(self._container, self._stream)
            # Only a length the file states (not one FFmpeg estimated from its size and
            # bitrate) can show that audio is missing.
            self.announced_s = self.duration_s if _states_length(
                self.format_name, self.path) else None  # fmt: skip
            self.sample_rate = int(self._stream.codec_context.sample_rate or 0)
            self.channels = int(self._stream.codec_context.channels or 0)
            if self.sample_rate <= 0:
                raise AudioFileError(
                    f"{name!r}: its audio track ({self.codec}) announces no sample rate",
                    path=name,
                )
        except BaseException:
            self._container.close()
            raise
        self._start()

    def _start(self) -> None:
        self._frames = self._decode()
        self._pending: np.ndarray | None = None
        self._pending_rate = self.sample_rate
        self.frames_read = 0
        self.seconds_read = 0.0
        self.problem: AudioFileError | None = None
        self._errors = 0
        self._failure: str | None = None
        self._done = False
        self._checked = False

    def _decode(self):
        """Decoded frames, one packet at a time; a bad packet is skipped and counted."""
        av = self._av
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    self._errors += 1
                    self._failure = _reason(exc)
                    if self._errors > _MAX_DECODE_ERRORS:
                        return
                    continue
                yield from frames
        except (av.error.FFmpegError, OSError) as exc:
            self._failure = _reason(exc)

    def read(self, n_frames: int) -> np.ndarray:
        """Up to ``n_frames`` frames, all at one rate (``sample_rate``); empty at the end."""
        parts: list[np.ndarray] = []
        have = 0
        rate: int | None = None
        # Bounded: each pass takes (part of) a decoded frame or ends the file.
        while have < n_frames:
            if self._pending is None:
                frame = None if self._done else next(self._frames, None)
                if frame is None:
                    self._done = True
                    break
                self._pending, self._pending_rate = frame_samples(frame), int(frame.sample_rate)
            if rate is None:
                rate = self._pending_rate
            elif self._pending_rate != rate:  # a new rate starts the next block
                break
            take = self._pending[: n_frames - have]
            rest = self._pending[len(take) :]
            self._pending = rest if len(rest) else None
            parts.append(take)
            have += len(take)
        if not have:
            if self._done and not self._checked:
                self._checked = True
                self.problem = self._check_end()
            return np.zeros((0, max(1, self.channels)), np.float32)
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self.sample_rate = rate
        self.frames_read += len(block)
        self.seconds_read += len(block) / rate
        return block

    def _check_end(self) -> AudioFileError | None:
        """At the end of the packets: did the audio stop early?"""
        got, want, name = self.seconds_read, self.announced_s, str(self.path)
        short = want is not None and want - got > max(
            TRUNCATION_SLACK_S, TRUNCATION_SLACK_FRACTION * want
        )
        if not short and self._failure is None:
            return None
        of = f" of the {want:.1f} s its header announces" if want is not None else ""
        why = f" (FFmpeg: {self._failure})" if self._failure else ""
        return AudioFileError(
            f"{name!r} is truncated or damaged: its audio stops at {got:.1f} s{of}{why}; "
            f"what it holds was played",
            path=name,
            stopped_at_s=round(got, 3),
            duration_s=want,
        )

    def rewind(self) -> None:
        """Back to the first frame (a looping source)."""
        self._container.seek(0, stream=self._stream)
        self._start()

    def close(self) -> None:
        self._container.close()


def _duration(container: Any, stream: Any) -> float | None:
    """The length the file announces (the track's, else the container's), or ``None``."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


#: Containers whose header states the length exactly (FFmpeg reads it, not estimates it).
_STATED = ("flac", "mov", "mp4", "matroska", "webm", "wav", "w64", "aiff", "caf")
_MP3_LENGTH_TAGS = (b"Xing", b"Info", b"VBRI")  # LAME/Xing/Fraunhofer frame-count headers


def _states_length(format_name: str, path: Path) -> bool:
    """Whether this file's length comes from its header. ADTS aac, ogg and an mp3 without a
    Xing/Info/VBRI header only have FFmpeg's estimate from size and bitrate: a VBR file's
    estimate is off by far more than any truncation tolerance."""
    names = set(format_name.split(","))
    if names & set(_STATED):
        return True
    if "mp3" in names:
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 16)  # past an ID3 tag and into the first frame
        except OSError:
            return False
        return any(tag in head for tag in _MP3_LENGTH_TAGS)
    return False


def _reason(exc: BaseException) -> str:
    """FFmpeg's words without the errno and the repeated path."""
    return getattr(exc, "strerror", None) or str(exc)


class AudioFile(StreamedFile):
    """Plays any audio file FFmpeg reads (or a video's audio track) as 16 kHz mono s16le.

    Same arguments and behaviour as ``WavFile``: ``realtime``, ``chunk_ms``, ``loop``;
    ``duration_s`` is the length the file announces (``None`` when it announces none).
    A missing file, one that is not audio or has no audio track raises ``AudioFileError``
    (a ``ConfigurationError``) here; a truncated one plays what it holds, then its ``read``
    raises ``AudioFileError`` with ``stopped_at_s``. Needs the ``formats`` extra (PyAV).
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
        _check_path(Path(self.path))
        require_av(f"reading {Path(self.path).name!r} (not a WAV file)")
        probe = DecodedReader(self.path)  # validates now; the real reader opens in start()
        probe.close()
        self.format_name, self.codec = probe.format_name, probe.codec
        self.input_rate, self.channels = probe.sample_rate, probe.channels
        self.duration_s = probe.duration_s

    def __repr__(self) -> str:
        length = f"{self.duration_s:.1f} s" if self.duration_s is not None else "length unknown"
        return (
            f"AudioFile({self.path!r}, {self.codec}, {self.input_rate} Hz, {self.channels} ch, "
            f"{length}, realtime={self.realtime})"
        )

    def _reader(self) -> DecodedReader:
        return DecodedReader(self.path)


def open_file(
    path: str | os.PathLike, *, realtime: bool = True, chunk_ms: int = 50, loop: bool = False
) -> StreamedFile:
    """The source for a file of any format: ``WavFile`` for PCM WAV, else ``AudioFile``.

    The contents decide, not the name. A WAV file this package's own reader cannot read
    (compressed WAV such as ADPCM or mu-law) goes to FFmpeg when PyAV is installed, and
    otherwise keeps ``WavFile``'s error.
    """
    if is_wav(path):
        try:
            return WavFile(path, realtime=realtime, chunk_ms=chunk_ms, loop=loop)
        except ConfigurationError:
            from ..extras import installed

            if not installed("av"):
                raise
    return AudioFile(path, realtime=realtime, chunk_ms=chunk_ms, loop=loop)
