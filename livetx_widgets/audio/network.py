"""``NetworkStream``: an internet radio (HTTP/Icecast mp3, aac, ogg) or an HLS playlist, live.

A live input, paced by the stream itself: a reader thread owned by the source fetches the
stream (``fetch.Body``, or ``hls.HlsInput`` for ``.m3u8``), FFmpeg (PyAV) decodes it packet by
packet, and the decoded frames are pushed into a ``QueueSource`` (which resamples them with the
one resampler and cuts the ~50 ms chunks the session reads). Nothing else paces it: the audio
arrives at the speed the station sends it.

Drops and stalls. A read that gets no byte for ``stall_timeout_s`` is a stall; a closed
connection, a reset or an HTTP error is a drop. Either way the stream is reopened after a
backoff (``backoff_s``, doubling up to ``max_backoff_s``); after ``max_retries`` failures in a
row without audio in between, ``read`` raises ``AudioStreamError`` (once the audio already
received has been read). A 4xx answer (not found, forbidden) or a body that is not audio is
given up on at once. Every reopen is counted (``stats()["reconnects"]``).

The clock. The session stamps transcripts with the position in the audio it sent, so the
source keeps that position on the stream's own clock: **a gap advances the clock**. Audio lost
in a drop is replaced by as much silence, inserted where the drop happened, so everything after
it keeps its true time (``stats()["gaps"]`` and ``["gap_s"]`` count them, and the session's
metadata shows them as ``source_gaps`` / ``source_gap_s``). How long the gap was:

* HLS: exactly the duration of the segments that were lost (a reconnect that finds the next
  segment still in the playlist loses nothing: no gap, the segments arrive late);
* HTTP: the stream has no timestamps, and a live station plays in real time, so its clock is
  the wall clock from the first audio: after a reopen, the gap is how far the audio received
  (silence included) has fallen behind the time elapsed. A stall shorter than
  ``stall_timeout_s`` loses nothing (the server sends the late audio) and adds no gap.

Stopping. ``stop()`` (any thread) sets the stop event, shuts the current socket down (a read
blocked on a silent server returns at once) and joins the reader thread; every wait in that
thread is on the stop event or bounded by ``stall_timeout_s`` (connecting included).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from ..errors import AudioStreamError, ConfigurationError
from .base import SAMPLE_RATE, AudioSource
from .decode import frame_samples, require_av
from .fetch import Body, GaveUp, HttpStatusError, Retry, Stalled, Stopped, redact
from .finite import check_chunk_ms
from .hls import HlsError, HlsInput, looks_like_playlist
from .queued import QueueSource

log = logging.getLogger("livetx_widgets.audio")

#: Content-Type -> FFmpeg demuxer (a hint: without one FFmpeg probes, which needs more bytes).
FORMAT_HINTS = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3",
    "audio/aac": "aac", "audio/aacp": "aac", "audio/x-aac": "aac", "audio/aac-adts": "aac",
    "audio/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "ogg", "audio/vorbis": "ogg",
    "audio/flac": "flac", "audio/x-flac": "flac", "audio/webm": "matroska",
    "video/mp2t": "mpegts", "audio/mp2t": "mpegts",
}  # fmt: skip
PLAYLIST_TYPES = ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
                  "audio/x-mpegurl")  # fmt: skip
#: FFmpeg options for a live input: start decoding after a few KB (a quarter second of a
#: 128 kbit/s mp3) instead of a second or more: FFmpeg needs one frame's header, not seconds
#: of analysis. Not ``fflags=nobuffer``: it drops the packets read while probing.
LIVE_OPTIONS = {"probesize": "4096", "analyzeduration": "0"}
_MIN_GAP_S = 0.05  # HTTP: shortfalls below this are network jitter, not lost audio
_MAX_DECODE_ERRORS = 50  # bad packets in a row before the connection counts as broken
_JOIN_MARGIN_S = 2.0  # stop() waits the stall timeout plus this for the reader thread


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


class NetworkStream(AudioSource):
    """A live audio stream from an ``http://`` or ``https://`` URL (see the module docstring).

    Args:
        url: an HTTP/Icecast stream (mp3, aac, ogg/vorbis or opus, flac, webm, MPEG-TS) or an
            HLS playlist (``.m3u8``, master or media).
        chunk_ms: chunk duration in milliseconds.
        stall_timeout_s: seconds without a byte before the stream counts as stalled (also
            the connect timeout).
        max_retries: reopen attempts in a row without audio before giving up.
        backoff_s, max_backoff_s: the first wait before a reopen and the longest.
        max_backlog_s: most seconds of unread audio kept (see ``QueueSource``).

    Needs the ``formats`` extra (PyAV). Never raises from ``__init__`` for network problems:
    they arrive from ``read`` as ``AudioStreamError``, after the audio received before them.
    """

    live = True
    realtime = True

    def __init__(
        self,
        url: str,
        *,
        chunk_ms: int = 50,
        stall_timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_backlog_s: float = 600.0,
    ) -> None:
        super().__init__()
        if not is_url(url):
            raise ConfigurationError(
                f"NetworkStream needs an http:// or https:// URL, not {url!r}"
            )
        for name, value in (("stall_timeout_s", stall_timeout_s), ("backoff_s", backoff_s),
                            ("max_backoff_s", max_backoff_s)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError("max_retries must be a whole number >= 0")
        require_av(f"the network stream {redact(url)}")
        self.url = url
        self.chunk_ms = check_chunk_ms(chunk_ms)
        self.stall_timeout_s = float(stall_timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_backlog_s = max_backlog_s
        self._lock = threading.Lock()  # guards the counters below and the current body
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reset()

    def _reset(self) -> None:
        self._queue = QueueSource(chunk_ms=self.chunk_ms, max_backlog_s=self.max_backlog_s)
        self._body: Body | None = None
        self._error: AudioStreamError | None = None
        self._raised = False
        self._kind: str | None = None  # "http" or "hls", known after the first response
        self._format: str | None = None
        self._codec: str | None = None
        self._t0: float | None = None  # monotonic time of the first audio
        self._stream_samples = 0  # 16 kHz samples pushed (audio and gap silence)
        self._received_s = 0.0
        self._reconnects = 0
        self._stalls = 0
        self._gaps = 0
        self._gap_s = 0.0
        self._decode_errors = 0
        self._last_problem: str | None = None
        self._reopened = False  # the next audio is the first after a reopen (HTTP gap check)
        self.position_s = 0.0

    def __repr__(self) -> str:
        kind = self._kind or "stream"
        return f"NetworkStream({redact(self.url)!r}, {kind}, live)"

    # -- AudioSource -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread. A no-op while running; after ``stop()`` it starts over."""
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        self._join()
        self._stop = threading.Event()
        self._reset()
        self._queue.start()
        self._thread = threading.Thread(target=self._run, name="livetx-stream", daemon=True)
        self._thread.start()

    def read(self, timeout: float | None = None) -> bytes | None:
        if self._thread is None:
            raise ConfigurationError(
                "NetworkStream.read() called before start(); call start() first or use the "
                "source as a context manager"
            )
        chunk = self._queue.read(timeout)
        self.position_s = self._queue.position_s
        if chunk is None and not self._stop.is_set():
            with self._lock:
                error, raise_it = self._error, self._error is not None and not self._raised
                self._raised = True
            if raise_it:
                raise error
        return chunk

    def stop(self) -> None:
        """Stop reading (any thread, idempotent): ends a blocked read, joins the thread."""
        self._stop.set()
        with self._lock:
            body = self._body
        if body is not None:
            body.abort()
        self._queue.stop()
        self._join()

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            bound = self.stall_timeout_s + _JOIN_MARGIN_S  # a connect can take the timeout
            thread.join(bound)
            if thread.is_alive():  # pragma: no cover - every wait in it is bounded
                log.warning("the stream reader of %s did not stop in %.0f s",
                            redact(self.url), bound)  # fmt: skip

    def stats(self) -> dict[str, Any]:
        """What the stream did: kind, format, reconnects, stalls, gaps and their seconds."""
        with self._lock:
            return {
                "url": redact(self.url),
                "kind": self._kind,
                "format": self._format,
                "codec": self._codec,
                "received_s": round(self._received_s, 3),
                "reconnects": self._reconnects,
                "stalls": self._stalls,
                "gaps": self._gaps,
                "gap_s": round(self._gap_s, 3),
                "decode_errors": self._decode_errors,
                "backlog_s": round(self._queue.backlog_s, 3),
                "dropped_s": round(self._queue.dropped_s, 3),
                "last_problem": self._last_problem,
            }

    @property
    def dropped_s(self) -> float:
        return self._queue.dropped_s

    # -- the reader thread -----------------------------------------------------------------
    def _run(self) -> None:
        retry = Retry(max_retries=self.max_retries, backoff_s=self.backoff_s,
                      max_backoff_s=self.max_backoff_s, stop=self._stop,
                      on_failure=self._count_drop)  # fmt: skip
        self._retry = retry
        hls: HlsInput | None = None
        try:
            while not self._stop.is_set():  # bounded by retry (GaveUp) or stop
                try:
                    if hls is not None:
                        self._fill_gap(hls.resume())
                        self._decode(hls, None)
                        if hls.ended:
                            break
                        if not hls.at_break:
                            retry.failed(ConnectionResetError("the HLS stream ended early"))
                        continue
                    body = self._open(self.url)
                    if self._kind == "hls":
                        first = body.read_all(1 << 20)
                        body.close()
                        hls = HlsInput(self.url, self._open, retry, first=first)
                        continue
                    self._decode(body, FORMAT_HINTS.get(body.content_type))
                    retry.failed(ConnectionResetError("the server closed the stream"))
                except (Stopped, GaveUp):
                    raise
                except HlsError as exc:
                    self._give_up(f"cannot play this HLS stream: {exc}")
                    return
                except HttpStatusError as exc:
                    if exc.permanent:
                        self._give_up(f"the server answered {exc}", status=exc.status)
                        return
                    retry.failed(exc)
                except _NotAudio as exc:
                    if self._received_s == 0:
                        self._give_up(str(exc))
                        return
                    retry.failed(exc)
                except (OSError, EOFError) as exc:  # av.error.FFmpegError is an OSError too
                    retry.failed(exc)
        except Stopped:
            pass
        except GaveUp as exc:
            self._give_up(
                f"gave up after {exc.attempts} attempts in a row ({_words(exc.last)})",
                attempts=exc.attempts,
            )
        finally:
            with self._lock:
                body, self._body = self._body, None
            if body is not None:
                body.close()
            self._queue.end()  # read drains what arrived, then None (or the error)

    def _open(self, url: str) -> Body:
        """GET ``url``, registered as the body ``stop()`` aborts."""
        if self._stop.is_set():
            raise Stopped
        body = Body(url, timeout=self.stall_timeout_s)
        with self._lock:
            previous, self._body = self._body, body
        if previous is not None:
            previous.close()
        if self._stop.is_set():  # stop() may have aborted the previous body, not this one
            raise Stopped
        body.open()
        if self._kind is None:
            head = body.read(4096) if body.content_type not in PLAYLIST_TYPES else b"#EXTM3U"
            if body.content_type not in PLAYLIST_TYPES:
                body.unread(head)
            path = url.split("?")[0].lower()
            hls = body.content_type in PLAYLIST_TYPES or path.endswith((".m3u8", ".m3u"))
            with self._lock:
                self._kind = "hls" if hls or looks_like_playlist(head) else "http"
        return body

    def _decode(self, source: Any, hint: str | None) -> None:
        """Decode ``source`` (a file object) until it ends; push every frame."""
        import av

        try:
            container = av.open(source, "r", format=hint, options=LIVE_OPTIONS,
                                metadata_errors="ignore")  # fmt: skip
        except av.error.FFmpegError as exc:
            if self._stop.is_set():
                raise Stopped from None
            raise _NotAudio(f"{redact(self.url)} is not an audio stream FFmpeg can read "
                            f"({getattr(exc, 'strerror', exc)})") from None  # fmt: skip
        try:
            stream = container.streams.best("audio")
            if stream is None:
                raise _NotAudio(f"{redact(self.url)} has no audio track")
            with self._lock:
                self._format = container.format.name
                self._codec = stream.codec_context.name
            errors = 0
            for packet in container.demux(stream):
                if self._stop.is_set():
                    raise Stopped
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    errors += 1
                    with self._lock:
                        self._decode_errors += 1
                        self._last_problem = f"decode: {getattr(exc, 'strerror', exc)}"
                    if errors > _MAX_DECODE_ERRORS:
                        raise
                    continue
                errors = 0
                for frame in frames:
                    self._push(frame_samples(frame), int(frame.sample_rate))
        finally:
            container.close()

    def _push(self, samples: np.ndarray, rate: int) -> None:
        if not len(samples):
            return
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        elif self._reopened and self._kind == "http":
            behind = (now - self._t0) - self._stream_samples / SAMPLE_RATE
            if behind > _MIN_GAP_S:
                self._fill_gap(behind)
        self._reopened = False
        self._retry.progress()
        seconds = len(samples) / rate
        self._queue.push(samples, sample_rate=rate)
        with self._lock:
            self._received_s += seconds
            self._stream_samples += round(seconds * SAMPLE_RATE)

    def _fill_gap(self, seconds: float) -> None:
        """Silence for ``seconds`` of lost audio, so later audio keeps its time."""
        n = round(seconds * SAMPLE_RATE)
        if n <= 0:
            return
        self._queue.push(np.zeros(n, np.int16), sample_rate=SAMPLE_RATE)
        with self._lock:
            self._gaps += 1
            self._gap_s += n / SAMPLE_RATE
            self._stream_samples += n
        log.info("stream %s: %.2f s lost, filled with silence", redact(self.url), n / SAMPLE_RATE)

    def _count_drop(self, exc: BaseException) -> None:
        with self._lock:
            self._reconnects += 1
            if isinstance(exc, Stalled):
                self._stalls += 1
            self._last_problem = _words(exc)
        self._reopened = True
        log.info("stream %s: %s; reopening", redact(self.url), _words(exc))

    def _give_up(self, why: str, *, attempts: int = 1, status: int | None = None) -> None:
        with self._lock:
            self._error = AudioStreamError(
                f"network stream {redact(self.url)}: {why}. The audio received until then "
                "was transcribed; check the URL, or try again later.",
                url=redact(self.url), attempts=attempts, status=status,
            )  # fmt: skip
            self._last_problem = why


class _NotAudio(Exception):
    """The body is not audio (FFmpeg cannot read it, or it has no audio track)."""


def _words(exc: BaseException | None) -> str:
    if exc is None:
        return "no reason"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text
