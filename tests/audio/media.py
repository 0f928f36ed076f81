"""Test media made during the run: encoded files of every format, tone clocks, stream servers.

Loaded by ``tests/audio/conftest.py`` as ``livetx_test_media`` (and by ``benchmarks/formats.py``
by its path). Everything is encoded with PyAV from the shared speech or from generated tones,
so no binary test file is committed.

Servers (loopback, port 0, every thread joined by ``close``):

* ``RadioServer``: an endless live station. Its clock is the wall clock since the server
  started; a client joining at time ``t`` gets the frames from ``t`` on, each sent when due
  (real time, frame by frame), looping over the encoded content. ``plan`` injects faults per
  connection: drop (close) or stall (stop sending, keep the socket) after some seconds.
* ``HlsServer``: a live HLS playlist over the same content cut into segments of about
  ``segment_s``. Segment ``n`` becomes available when the clock passes its end; the playlist
  lists the last ``window`` available ones. Faults per fetch: an HTTP error or a stall.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: extension -> (muxer, codec, rate, layout, extra encoder options)
FORMATS: dict[str, tuple[str, str, int, str, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", 44100, "stereo", {}),
    "m4a": ("ipod", "aac", 44100, "stereo", {}),
    "aac": ("adts", "aac", 22050, "mono", {}),
    "ogg": ("ogg", "vorbis", 44100, "stereo", {"strict": "experimental"}),
    "opus": ("ogg", "libopus", 48000, "stereo", {}),
    "flac": ("flac", "flac", 22050, "mono", {}),
    "webm": ("webm", "libopus", 48000, "mono", {}),
    "wav": ("wav", "pcm_s16le", 8000, "stereo", {}),  # read by WavFile: no PyAV needed
    "mp4": ("mp4", "aac", 48000, "stereo", {}),
    "mkv": ("matroska", "libmp3lame", 32000, "mono", {}),
    "mov": ("mov", "aac", 44100, "mono", {}),
}
MUXER_OPTIONS = {"mp3": {"id3v2_version": "0", "write_xing": "1"}}


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy(), w.getframerate()


def encode(pcm: np.ndarray, rate: int, path: str | Path, ext: str, *,
           with_video: bool = False, muxer_options: dict | None = None) -> Path:  # fmt: skip
    """Encode mono int16 ``pcm`` at ``rate`` into ``path`` as format ``ext`` (see FORMATS).

    ``with_video``: a small black video track first (the mp4/mkv/mov "video with sound" case).
    """
    import av

    muxer, codec, out_rate, layout, options = FORMATS[ext]
    opts = {**MUXER_OPTIONS.get(muxer, {}), **(muxer_options or {})}
    out = av.open(str(path), "w", format=muxer, options=opts)
    try:
        video = add_black_video(out) if with_video else None
        stream = out.add_stream(codec, rate=out_rate, layout=layout, options=options)
        if video is not None:
            encode_black_video(out, video, len(pcm) / rate)
        encode_into(out, stream, pcm, rate)
    finally:
        out.close()
    return Path(path)


def encode_into(out, stream, pcm: np.ndarray, rate: int) -> None:
    """Encode mono int16 ``pcm`` at ``rate`` into the open ``stream`` of container ``out``
    (converted to the stream's rate, layout and sample format by FFmpeg's resampler)."""
    import av

    ctx = stream.codec_context
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=ctx.sample_rate,
                                  frame_size=ctx.frame_size or 1024)  # fmt: skip
    for f in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(f):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def add_black_video(out):
    video = out.add_stream("mpeg4", rate=10)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def encode_black_video(out, video, seconds: float) -> None:
    import av

    black = np.zeros((48, 64, 3), np.uint8)
    for _ in range(max(1, int(seconds * 10))):
        for packet in video.encode(av.VideoFrame.from_ndarray(black, format="rgb24")):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)


def video_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An mp4 with a video track and no audio."""
    import av

    out = av.open(str(path), "w")
    try:
        encode_black_video(out, add_black_video(out), seconds)
    finally:
        out.close()
    return Path(path)


# -- the tone clock: content second k holds a sine of tone_hz(k) --------------------------------

CLOCK_RATE = 16000


def tone_hz(k: int) -> float:
    return 400.0 + 100.0 * (k % 10)


def tone_clock(seconds: int, rate: int = CLOCK_RATE) -> np.ndarray:
    """``seconds`` seconds of int16 audio whose second ``k`` is a tone of ``tone_hz(k)``."""
    t = np.arange(rate) / rate
    parts = [0.5 * np.sin(2 * np.pi * tone_hz(k) * t) for k in range(seconds)]
    return (np.concatenate(parts) * 32767).astype(np.int16)


def dominant_hz(samples: np.ndarray, rate: int = CLOCK_RATE) -> float:
    """The strongest frequency of ``samples`` (0.0 for silence)."""
    x = samples.astype(np.float32)
    if not len(x) or np.sqrt(np.mean(x**2)) < 300:
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def nearest_tone(hz: float) -> int | None:
    """The content second (mod 10) whose tone is ``hz``, or ``None`` for silence/noise."""
    if hz <= 0:
        return None
    k = round((hz - 400.0) / 100.0)
    return k % 10 if abs(hz - tone_hz(k)) < 40 else None


# -- frames of an encoded stream -----------------------------------------------------------------


@dataclass(frozen=True)
class Frames:
    """An elementary stream cut into its frames: ``data[i]`` lasts ``frame_s`` seconds."""

    data: tuple[bytes, ...]
    frame_s: float
    content_type: str

    @property
    def duration_s(self) -> float:
        return len(self.data) * self.frame_s


def stream_frames(pcm: np.ndarray, rate: int, workdir: Path, ext: str) -> Frames:
    """Encode ``pcm`` as an mp3 or ADTS aac elementary stream and cut it into frames."""
    import av

    path = encode(pcm, rate, workdir / f"stream.{ext}", ext,
                  muxer_options={"write_xing": "0"} if ext == "mp3" else None)  # fmt: skip
    data = path.read_bytes()
    codec = {"mp3": "mp3", "aac": "aac"}[ext]
    parser = av.CodecContext.create(codec, "r")
    packets = [bytes(p) for p in [*parser.parse(data), *parser.parse(None)]]
    _, _, out_rate, _, _ = FORMATS[ext]
    samples = 1152 if ext == "mp3" else 1024
    kind = "audio/mpeg" if ext == "mp3" else "audio/aac"
    return Frames(tuple(packets), samples / out_rate, kind)


# -- servers ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    """For one connection or fetch: after ``after_s`` seconds of audio sent, ``drop`` (close)
    or ``stall`` for ``stall_s``; or answer ``status`` instead of the body."""

    after_s: float = 0.0
    drop: bool = False
    stall_s: float = 0.0
    status: int | None = None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True


@dataclass
class _Base:
    server: _Server | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0
    requests: list[str] = field(default_factory=list)

    def _serve(self, handler_cls) -> None:
        self.server = _Server(("127.0.0.1", 0), handler_cls)
        self.server.owner = self
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       name="test-stream-server")  # fmt: skip
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()  # joins the handler threads (each ends on ``stop``)
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    @property
    def owner(self):
        return self.server.owner

    def do_GET(self) -> None:
        self.owner.requests.append(self.path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.owner.handle(self)

    def send_body_headers(self, content_type: str, length: int | None = None) -> None:
        if getattr(self.owner, "icy", False):  # SHOUTcast v1's status line
            self.wfile.write(b"ICY 200 OK\r\n")
            self.send_header("icy-name", "test station")
        else:
            self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()


class RadioServer(_Base):
    """An endless live station at ``url`` (see the module docstring). ``plan[i]``: the fault
    of connection ``i`` (none when missing). ``burst_s``: audio sent at once on connect, as
    Icecast does; ``icy``: answer SHOUTcast v1's ``ICY 200 OK``."""

    def __init__(self, frames: Frames, plan: dict[int, Fault] | None = None, burst_s: float = 0.0,
                 icy: bool = False):  # fmt: skip
        super().__init__()
        self.icy = icy
        self.frames = frames
        self.plan = plan or {}
        self.burst_s = burst_s
        self.connections = 0
        self._lock = threading.Lock()
        self._serve(_Handler)
        self.url = f"{self.base}/radio.{'mp3' if frames.content_type == 'audio/mpeg' else 'aac'}"

    def handle(self, h: _Handler) -> None:
        with self._lock:
            index = self.connections
            self.connections += 1
        fault = self.plan.get(index)
        if fault is not None and fault.status is not None:
            h.send_error(fault.status)
            return
        h.send_body_headers(self.frames.content_type)
        fs, n = self.frames.frame_s, len(self.frames.data)
        joined = self.clock()
        first = max(0, int((joined - self.burst_s) / fs))
        # Bounded: the loop ends on stop, a fault or a closed client; frame i is due at i * fs.
        for i in range(first, first + int(3600 / fs)):
            if fault is not None and (i - first) * fs >= fault.after_s:
                if fault.drop:
                    return
                if fault.stall_s and self.stop.wait(fault.stall_s):
                    return
                fault = None
            due = self.t0 + i * fs
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            h.wfile.write(self.frames.data[i % n])
            h.wfile.flush()


@dataclass(frozen=True)
class Segments:
    """HLS segments: ``data[i]`` lasts ``durations[i]`` seconds; ``ext`` names the files."""

    data: tuple[bytes, ...]
    durations: tuple[float, ...]
    ext: str
    content_type: str


def adts_segments(frames: Frames, segment_s: float) -> Segments:
    """Packed-audio segments: ``frames`` (ADTS aac) grouped into ~``segment_s`` pieces."""
    per = max(1, round(segment_s / frames.frame_s))
    n = len(frames.data) // per
    data = tuple(b"".join(frames.data[k * per : (k + 1) * per]) for k in range(n))
    return Segments(data, (per * frames.frame_s,) * n, "aac", "audio/aac")


def ts_segments(pcm: np.ndarray, rate: int, workdir: Path, segment_s: float = 1.0) -> Segments:
    """MPEG-TS segments with AAC, cut by FFmpeg's own HLS muxer (the common live packaging);
    the last, short segment is left out so that every segment lasts about ``segment_s``."""
    import av

    workdir.mkdir(parents=True, exist_ok=True)
    out = av.open(str(workdir / "index.m3u8"), "w", format="hls",
                  options={"hls_time": str(segment_s), "hls_list_size": "0",
                           "hls_segment_filename": str(workdir / "seg%d.ts")})  # fmt: skip
    try:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        encode_into(out, stream, pcm, rate)
    finally:
        out.close()
    lines = (workdir / "index.m3u8").read_text().splitlines()
    durations = [float(ln.split(":")[1].rstrip(",")) for ln in lines if ln.startswith("#EXTINF")]
    names = [ln for ln in lines if ln and not ln.startswith("#")]
    keep = [i for i, d in enumerate(durations) if d > segment_s / 2]
    return Segments(tuple((workdir / names[i]).read_bytes() for i in keep),
                    tuple(durations[i] for i in keep), "ts", "video/mp2t")  # fmt: skip


class HlsServer(_Base):
    """A live HLS playlist at ``url`` over ``segments`` (looping), and a master playlist at
    ``master_url`` that points at it (next to a video variant a speech client should skip).

    Segment ``n`` becomes available when the clock passes the end of its content; the playlist
    lists the last ``window`` available ones. ``faults[(seq, attempt)]``: the fault of the
    ``attempt``-th fetch (0-based) of segment ``seq``; ``playlist_faults[i]``: of the ``i``-th
    playlist fetch. ``ended_after``: a finished (VOD) playlist of that many segments.
    """

    def __init__(self, segments: Segments | Frames, *, segment_s: float = 1.0, window: int = 4,
                 faults: dict[tuple[int, int], Fault] | None = None,
                 ended_after: int | None = None,
                 playlist_faults: dict[int, Fault] | None = None):  # fmt: skip
        super().__init__()
        if isinstance(segments, Frames):
            segments = adts_segments(segments, segment_s)
        self.segments = segments
        self.segment_s = sum(segments.durations) / len(segments.durations)  # mean
        self.n_content = len(segments.data)
        self.window = window
        self.faults = faults or {}
        self.playlist_faults = playlist_faults or {}
        self.ended_after = ended_after
        self.fetches: dict[int, int] = {}
        self.playlist_fetches = 0
        self._lock = threading.Lock()
        self._serve(_Handler)
        self.url = f"{self.base}/live.m3u8"
        self.master_url = f"{self.base}/master.m3u8"

    def duration(self, seq: int) -> float:
        return self.segments.durations[seq % self.n_content]

    def start_of(self, seq: int) -> float:
        loops, k = divmod(seq, self.n_content)
        return loops * sum(self.segments.durations) + sum(self.segments.durations[:k])

    def segment(self, seq: int) -> bytes:
        return self.segments.data[seq % self.n_content]

    def available(self) -> int:
        """Segments complete by now (the live edge)."""
        if self.ended_after is not None:
            return self.ended_after
        now, seq = self.clock(), 0
        while self.start_of(seq + 1) <= now:  # bounded by the clock
            seq += 1
        return seq

    def playlist(self) -> str:
        end = self.available()
        first = 0 if self.ended_after is not None else max(0, end - self.window)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3",
                 f"#EXT-X-TARGETDURATION:{max(1, round(self.segment_s))}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}"]  # fmt: skip
        for seq in range(first, end):
            lines += [f"#EXTINF:{self.duration(seq):.6f},", f"seg{seq}.{self.segments.ext}"]
        if self.ended_after is not None:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def handle(self, h: _Handler) -> None:
        path = h.path.split("?")[0]
        ext = f".{self.segments.ext}"
        if path == "/master.m3u8":
            body = (b"#EXTM3U\n"
                    b'#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.4d401f,mp4a.40.2"\n'
                    b"video.m3u8\n"
                    b'#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2"\n'
                    b"live.m3u8\n")  # fmt: skip
            h.send_body_headers("application/vnd.apple.mpegurl", len(body))
            h.wfile.write(body)
            return
        if path == "/live.m3u8":
            with self._lock:
                index = self.playlist_fetches
                self.playlist_fetches += 1
            fault = self.playlist_faults.get(index)
            if fault is not None and self._apply(h, fault):
                return
            body = self.playlist().encode()
            h.send_body_headers("application/vnd.apple.mpegurl", len(body))
            h.wfile.write(body)
            return
        if path.startswith("/seg") and path.endswith(ext):
            seq = int(path[4 : -len(ext)])
            with self._lock:
                attempt = self.fetches.get(seq, 0)
                self.fetches[seq] = attempt + 1
            gone = self.ended_after is None and seq < self.available() - self.window - 2
            if seq >= self.available() or gone:
                h.send_error(404)
                return
            fault = self.faults.get((seq, attempt))
            if fault is not None and self._apply(h, fault):
                return
            body = self.segment(seq)
            h.send_body_headers(self.segments.content_type, len(body))
            h.wfile.write(body)
            return
        h.send_error(404)

    def _apply(self, h: _Handler, fault: Fault) -> bool:
        """Apply ``fault``; True when the request is done with."""
        if fault.status is not None:
            h.send_error(fault.status)
            return True
        if fault.stall_s:
            self.stop.wait(fault.stall_s)  # the client's stall timeout fires first
            return True
        return fault.drop


@contextlib.contextmanager
def serving(server):
    try:
        yield server
    finally:
        server.close()
