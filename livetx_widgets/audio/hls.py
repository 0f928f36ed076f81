"""HLS (``.m3u8``) as one continuous byte stream: playlists parsed, segments fetched in order.

The segments of an HLS rendition (MPEG-TS, packed ADTS/mp3, or fragmented MP4 after its
``EXT-X-MAP`` init section) are made to be concatenated, so ``HlsInput`` hands them to FFmpeg
one after the other through a single file object and one decoder runs across them: no restart,
no click at the joins. A live playlist is reloaded every target duration (half of it when
nothing new appeared, as RFC 8216 section 6.3.4 asks), and reading starts three segments from
its end; a playlist with ``EXT-X-ENDLIST`` is played from its first segment to its last, and
the stream then ends.

The stream's clock is the sum of its segments' durations. When segments are lost (the reader
fell so far behind, through a stall or a drop, that the playlist moved past them; or a segment
answers 404), the byte stream stops at that boundary (``read`` returns ``b""``), ``gap_s`` says
how long the missing segments were (their ``EXTINF``; for segments never seen in a playlist,
the mean of the last durations seen), and
``resume()`` continues after them: ``NetworkStream`` fills the gap with as much silence, so every
later time stays on the stream's clock. ``EXT-X-DISCONTINUITY`` (a change of encoding) stops the
byte stream the same way, with no gap, so the next segment gets a fresh decoder.

Parsing (``parse_playlist``) is pure; fetching goes through ``fetch`` (a callable returning a
``fetch.Body``) and every failure through the stream's shared ``Retry``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from .fetch import Body, HttpStatusError, Retry, Stopped

PLAYLIST_LIMIT = 1 << 20  # bytes: a playlist is text; anything larger is not one
SEGMENT_LIMIT = 64 << 20  # bytes: one segment is seconds of audio (a video one, more)
START_FROM_END = 3  # live playlists: start this many segments before the end (RFC 8216 6.3.3)
_KNOWN_DURATIONS = 4096  # durations remembered for gap accounting (bounded memory)
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


class HlsError(ValueError):
    """A playlist this reader cannot play (encrypted, byte ranges, not a playlist...)."""


@dataclass(frozen=True)
class Segment:
    seq: int
    uri: str  # absolute
    duration: float
    discontinuity: bool = False


@dataclass(frozen=True)
class MediaPlaylist:
    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]
    ended: bool
    init_uri: str | None = None

    def get(self, seq: int) -> Segment | None:
        i = seq - self.media_sequence
        return self.segments[i] if 0 <= i < len(self.segments) else None

    @property
    def end_seq(self) -> int:
        """The sequence number after the last segment."""
        return self.media_sequence + len(self.segments)


@dataclass(frozen=True)
class Variant:
    uri: str
    bandwidth: int
    codecs: str
    audio_only: bool


def looks_like_playlist(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"#EXTM3U")


def parse_playlist(text: str, base_url: str) -> MediaPlaylist | list[Variant]:
    """A media playlist, or the variants of a master playlist (audio renditions first)."""
    lines = [ln.strip() for ln in text.lstrip("\ufeff").splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("#EXTM3U"):
        raise HlsError("not an HLS playlist (no #EXTM3U line)")
    target, media_seq, ended, init = 0.0, 0, False, None
    segments: list[Segment] = []
    variants: list[Variant] = []
    audio: list[tuple[bool, str]] = []  # (default, uri) of EXT-X-MEDIA TYPE=AUDIO renditions
    duration: float | None = None
    discontinuity = False
    stream_inf: dict[str, str] | None = None
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if line.startswith("#"):
            if tag == "#EXT-X-TARGETDURATION":
                target = float(value)
            elif tag == "#EXT-X-MEDIA-SEQUENCE":
                media_seq = int(value)
            elif tag == "#EXTINF":
                duration = float(value.split(",")[0])
            elif tag == "#EXT-X-ENDLIST":
                ended = True
            elif tag == "#EXT-X-DISCONTINUITY":
                discontinuity = True
            elif tag == "#EXT-X-MAP":
                attrs = _attrs(value)
                if "BYTERANGE" in attrs:
                    raise HlsError("byte-range init sections (EXT-X-MAP BYTERANGE) are not read")
                init = urljoin(base_url, attrs.get("URI", ""))
            elif tag == "#EXT-X-KEY":
                method = _attrs(value).get("METHOD", "NONE")
                if method != "NONE":
                    raise HlsError(f"encrypted HLS (EXT-X-KEY METHOD={method}) is not read")
            elif tag == "#EXT-X-BYTERANGE":
                raise HlsError("byte-range segments (EXT-X-BYTERANGE) are not read")
            elif tag == "#EXT-X-STREAM-INF":
                stream_inf = _attrs(value)
            elif tag == "#EXT-X-MEDIA":
                attrs = _attrs(value)
                if attrs.get("TYPE") == "AUDIO" and attrs.get("URI"):
                    audio.append((attrs.get("DEFAULT") == "YES", urljoin(base_url, attrs["URI"])))
            continue
        if stream_inf is not None:
            codecs = stream_inf.get("CODECS", "")
            kinds = {c.strip().split(".")[0] for c in codecs.split(",") if c.strip()}
            variants.append(Variant(
                uri=urljoin(base_url, line),
                bandwidth=int(stream_inf.get("BANDWIDTH", "0") or 0),
                codecs=codecs,
                audio_only=bool(kinds) and kinds <= {"mp4a", "mp3", "opus", "ac-3", "ec-3", "flac"},
            ))  # fmt: skip
            stream_inf = None
            continue
        segments.append(Segment(
            seq=media_seq + len(segments), uri=urljoin(base_url, line),
            duration=duration if duration is not None else target, discontinuity=discontinuity,
        ))  # fmt: skip
        duration, discontinuity = None, False
    if variants or audio:
        # Speech needs little: a separate audio rendition, else an audio-only variant, else the
        # lowest bandwidth (all of them carry the same audio).
        renditions = [Variant(uri, 0, "", True) for _, uri in sorted(audio, reverse=True)]
        ranked = sorted(variants, key=lambda v: (not v.audio_only, v.bandwidth))
        return renditions + ranked
    if target <= 0:
        target = max((s.duration for s in segments), default=0.0)
    if target <= 0:
        raise HlsError("the playlist has no #EXT-X-TARGETDURATION and no segment")
    return MediaPlaylist(target, media_seq, tuple(segments), ended, init)


def _attrs(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(value)}


class HlsInput:
    """The segments of one HLS stream as a file object for FFmpeg (see the module docstring).

    ``read(n)`` blocks (on the retry's stop event, never longer than a reload interval) until
    the next segment is there; raises ``fetch.Stopped`` when the source stops and
    ``fetch.GaveUp`` when fetching failed too often in a row.
    """

    def __init__(self, url: str, fetch: Callable[[str], Body], retry: Retry, *,
                 first: bytes | None = None):  # fmt: skip
        self.url = url
        self._fetch = fetch
        self._retry = retry
        self._first = first  # the body already fetched to find out this was a playlist
        self._playlist: MediaPlaylist | None = None
        self._next_seq: int | None = None
        self._next_reload = 0.0
        self._durations: dict[int, float] = {}
        self._buf = b""
        self._pos = 0  # next byte of _buf to hand out
        self._init: bytes | None = None
        self._need_init = True
        self._break = False
        self.gap_s = 0.0  # seconds lost at the current break (see resume)
        self.segments = 0  # segments fetched
        self.lost_segments = 0
        self.ended = False

    # -- the file object -------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        # Bounded: each pass fetches a segment, reloads the playlist (after at most one reload
        # interval) or counts a failure in the shared Retry, which gives up after max_retries.
        while self._pos >= len(self._buf):
            if self._break or self.ended:
                return b""
            if self._retry.stop.is_set():
                raise Stopped
            self._fill()
        data = self._buf[self._pos : self._pos + n]  # an index, not a copy of the rest
        self._pos += len(data)
        return data

    def resume(self) -> float:
        """After a break: continue with the next segment; returns the seconds lost."""
        gap, self.gap_s, self._break, self._need_init = self.gap_s, 0.0, False, True
        return gap

    @property
    def at_break(self) -> bool:
        return self._break

    # -- fetching --------------------------------------------------------------------------
    def _fill(self) -> None:
        pl = self._playlist
        seg = pl.get(self._next_seq) if pl is not None and self._next_seq is not None else None
        if seg is None:
            if pl is not None and pl.ended and self._next_seq is not None \
                    and self._next_seq >= pl.end_seq:  # fmt: skip
                self.ended = True
                return
            self._reload()
            return
        if seg.discontinuity and self.segments and not self._need_init:
            self._break = True  # a new encoding: a fresh decoder for it
            self._playlist = _without_discontinuity(pl, seg)
            return
        try:
            data = self._get(seg.uri, SEGMENT_LIMIT)
        except HttpStatusError as exc:
            if exc.status in (404, 410):  # gone: the live window moved past it
                self._lose(seg.seq, seg.seq + 1)
                return
            self._retry.failed(exc)
            return
        except OSError as exc:  # refused, reset, stalled
            self._retry.failed(exc)
            return
        if self._need_init and pl.init_uri:
            if self._init is None:
                try:
                    self._init = self._get(pl.init_uri, SEGMENT_LIMIT)
                except OSError as exc:
                    self._retry.failed(exc)
                    return
            data = self._init + data
        self._need_init = False
        self._next_seq = seg.seq + 1
        self.segments += 1
        self._buf, self._pos = data, 0

    def _reload(self) -> None:
        self._retry.wait(self._next_reload - time.monotonic())
        try:
            if self._first is not None:
                text, self._first = self._first, None
            else:
                text = self._get(self.url, PLAYLIST_LIMIT)
            parsed = parse_playlist(text.decode("utf-8", "replace"), self.url)
        except OSError as exc:
            self._retry.failed(exc)
            return
        if isinstance(parsed, list):
            if not parsed:
                raise HlsError("the master playlist lists no stream")
            self.url = parsed[0].uri  # a master playlist: follow its best audio rendition
            return
        old_end = self._playlist.end_seq if self._playlist is not None else None
        self._playlist = parsed
        for s in parsed.segments:
            self._durations[s.seq] = s.duration
        while len(self._durations) > _KNOWN_DURATIONS:
            self._durations.pop(next(iter(self._durations)))
        if self._next_seq is None:
            start = parsed.media_sequence
            if not parsed.ended:
                start = max(start, parsed.end_seq - START_FROM_END)
            self._next_seq = start
        elif self._next_seq < parsed.media_sequence:
            self._lose(self._next_seq, parsed.media_sequence)
        grew = old_end is None or parsed.end_seq > old_end
        interval = parsed.target_duration if grew else parsed.target_duration / 2
        self._next_reload = time.monotonic() + interval

    def _lose(self, first: int, end: int) -> None:
        """Segments ``first .. end-1`` will never be read: a break with their duration."""
        # A segment never listed in a playlist we loaded has an unknown length: the mean of
        # the last ones seen is closer than the target duration (an upper bound).
        recent = list(self._durations.values())[-10:]
        target = self._playlist.target_duration if self._playlist is not None else 0.0
        typical = sum(recent) / len(recent) if recent else target
        self.gap_s += sum(self._durations.get(s, typical) for s in range(first, end))
        self.lost_segments += end - first
        self._next_seq = end
        self._break = True

    def _get(self, url: str, limit: int) -> bytes:
        body = self._fetch(url)
        try:
            return body.read_all(limit)
        finally:
            body.close()


def _without_discontinuity(pl: MediaPlaylist, seg: Segment) -> MediaPlaylist:
    """``pl`` with ``seg``'s discontinuity flag cleared (it has been acted on)."""
    segments = tuple(
        Segment(s.seq, s.uri, s.duration, False) if s.seq == seg.seq else s for s in pl.segments
    )
    return MediaPlaylist(pl.target_duration, pl.media_sequence, segments, pl.ended, pl.init_uri)
