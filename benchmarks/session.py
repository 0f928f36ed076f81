"""Benchmark TranscriptionSession against ``livetx serve``: stop latency, receive-path CPU,
audio pacing drift and memory over a long session.

Run: ``.venv/bin/python benchmarks/session.py [--quick] [--save]`` (``--save`` also writes
``benchmarks/results/session.txt``). Full run: ~12 minutes, most of it the 10-minute real-time
pacing run, which goes on in two child processes while the other sections run.

Every server is a separate ``livetx serve --engine script`` process, so its CPU and memory are
never counted as the client's. The sections, each method restated in the output:

1. **Stop latency**: ``session.stop()`` while a WAV streams in real time, against the fixed
   sleeps of the two reference scripts this product replaces (Deepgram: ``CloseStream``, sleep
   0.5 s, close, join; AssemblyAI: ``Terminate``, sleep 5 s, close, join), re-implemented with
   websocket-client's ``WebSocketApp`` as they are written and timed the same way.
2. **Receive-path CPU per message**: the text frames the server sends for a long script are
   captured once with a raw client, then replayed through the session's own receive method
   (``_serve_connection``: ``codec.decode``, which also puts times on the session's clock and
   namespaces keys, -> ``Transcript.apply`` -> listeners) in one thread timed with
   ``time.thread_time``, against ``json.loads`` of the same frames. A live session's
   receiver-thread CPU (websocket framing included) is shown beside it, against a plain
   websocket-client loop that only parses the same stream.
3. **Pacing drift**: a real-time ``WavFile`` read as the sender reads it, and the same through
   a full session, where the server's audio clock is observed through the partial result that
   each scripted word triggers.
4. **Memory over a long session**: RSS and the Python heap (tracemalloc) of a client that
   streams hours of audio (Deepgram protocol, as fast as the server takes it), each run in a
   fresh child process, against the deep size of the transcript it ends up holding.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import websocket  # noqa: E402
from figure import ServeProcess  # noqa: E402

from livetx_widgets import TranscriptionSession, WavFile  # noqa: E402
from livetx_widgets.audio.base import AudioSource  # noqa: E402
from livetx_widgets.providers import make_codec  # noqa: E402
from livetx_widgets.session.connection import Connection, Frame  # noqa: E402

RATE = 16000
BYTES_PER_S = RATE * 2
CHUNK_S = 0.05
KEY = "bench-key"  # the script server accepts any key
TARGETS = {"cpu_ratio": 3.0, "drift_ms": 10.0, "memory_mb": 50.0}

# -- shared material --------------------------------------------------------------------------
_VOCAB_TEXT = (
    "the of and to a in is it you that he was for on are with as they be at one have this from "
    "or had by word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these "
    "her long make thing see him two has look more day could go come did number sound no most "
    "people my over know water than call first who may down side been now find any new work "
    "part take get place made live where after back little only round man year came show every "
    "good me give our under name very through just form sentence great think say help low line "
    "differ turn cause much mean before move right boy old too same tell does set three want air "
    "well also play small end put home read hand port large spell add even land here must big "
    "high such follow act why ask men change went light kind off need house picture try us again "
    "animal point mother world near build self earth father head stand own page should country "
    "found answer school grow study still learn plant cover food sun four between state keep eye "
    "never last let thought city tree cross farm hard start might story saw far sea draw left "
    "late run while press close night real life few north open seem together next white children"
)
VOCAB = _VOCAB_TEXT.split()

# Script timing on a 50 ms grid (in ticks), so that every word ends on a chunk boundary and the
# server's audio clock reaches it exactly when that chunk arrives: ~150 words a minute.
TICK = 0.05
LEAD_TICKS, WORD_TICKS, SLOT_TICKS, PAUSE_TICKS = 6, 6, 7, 12


def make_script(seconds: float, seed: int = 1) -> dict:
    """A ``words`` script: sentences of 6-22 words, 0.3 s words in 0.35 s slots, a 0.6 s pause
    after each sentence (longer than the 0.5 s endpoint, so each sentence is one utterance)."""
    rng = random.Random(seed)
    words, t = [], LEAD_TICKS
    limit = round(seconds / TICK)
    while True:
        n = rng.randint(6, 22)
        if t + n * SLOT_TICKS > limit - 20:  # leave room for the last final
            break
        for k in range(n):
            text = rng.choice(VOCAB)
            text = text.capitalize() if k == 0 else text
            text += "." if k == n - 1 else ""
            words.append({"text": text, "start": round(t * TICK, 3),
                          "end": round((t + WORD_TICKS) * TICK, 3)})  # fmt: skip
            t += SLOT_TICKS
        t += PAUSE_TICKS
    return {"words": words}


def write_wav(path: Path, seconds: float) -> Path:
    """Quiet noise, written a second at a time (the script engine only counts bytes)."""
    rng = np.random.default_rng(0)
    block = (rng.normal(0, 600, RATE)).astype("<i2").tobytes()  # one second, reused
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        whole, rest = divmod(round(seconds * RATE), RATE)
        for _ in range(whole):
            w.writeframes(block)
        w.writeframes(block[: rest * 2])
    return path


def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def deep_size(root) -> int:
    """Bytes of ``root`` and everything it references, each object counted once (classes,
    modules and functions excluded)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def serve_script(script: Path, *, rate_limit: bool = True, workdir: Path) -> ServeProcess:
    """``livetx serve --engine script`` in a child process (owned: terminated and reaped)."""
    args = ["--engine", "script", "--script", str(script), "--log-level", "WARNING"]
    if not rate_limit:
        args.append("--no-rate-limit")
    return ServeProcess(args, log=workdir / f"server-{script.stem}.log")


class TimedSource(AudioSource):
    """Wraps a finite source and notes when the sender called ``read`` first (the pacing clock's
    start, taken just before the source takes it: a conservative origin) and when each chunk
    was handed out."""

    live = False

    def __init__(self, inner: AudioSource):
        super().__init__()
        self.inner = inner
        self.realtime = inner.realtime
        self.duration_s = inner.duration_s
        self.t0: float | None = None
        self.returns: list[float] = []  # monotonic time each chunk was returned
        self.sizes: list[int] = []

    def start(self) -> None:
        self.inner.start()

    def read(self, timeout: float | None = None) -> bytes | None:
        if self.t0 is None:
            self.t0 = time.monotonic()
        chunk = self.inner.read(timeout)
        if chunk:
            self.returns.append(time.monotonic())
            self.sizes.append(len(chunk))
        self.position_s = self.inner.position_s
        return chunk

    def stop(self) -> None:
        self.inner.stop()

    def lateness_ms(self) -> np.ndarray:
        """Each chunk's return time minus the moment its end was due on the audio clock."""
        ends = np.cumsum(self.sizes) / BYTES_PER_S
        return (np.array(self.returns) - (self.t0 + ends)) * 1000.0

    def stats(self) -> dict:
        return pacing_stats(self.lateness_ms(), self.t0)


def pacing_stats(late_ms: np.ndarray, t0: float) -> dict:
    intervals = np.diff(late_ms) if len(late_ms) > 1 else np.array([0.0])
    worst = int(np.argmax(late_ms))
    spikes = np.flatnonzero(late_ms >= TARGETS["drift_ms"])
    ends = (np.arange(len(late_ms)) + 1) * CHUNK_S  # nominal audio time of each chunk's end
    return {
        "chunks": len(late_ms),
        "max_ms": float(late_ms.max()),
        "max_at_s": float(ends[worst]),
        "min_ms": float(late_ms.min()),
        "final_ms": float(late_ms[-1]),
        # accumulated error, insensitive to a momentary stall: last 10 s vs first 10 s
        "trend_ms": float(np.median(late_ms[-200:]) - np.median(late_ms[:200])),
        "p99_ms": pct(late_ms, 99),
        "p50_ms": pct(late_ms, 50),
        "jitter_p99_ms": pct(np.abs(intervals), 99),  # |interval - 50 ms|
        "late_chunks": len(spikes),
        # CLOCK_MONOTONIC is system-wide: lets two processes' stalls be matched up.
        "spikes_mono": [float(t0 + ends[i] + late_ms[i] / 1000) for i in spikes[:500]],
    }


# -- 1. stop latency --------------------------------------------------------------------------
class PacedStream:
    """Stands in for the reference scripts' pyaudio ``stream``: ``read(800)`` blocks until the
    next 50 ms of audio is due, as a microphone read does (here from a real-time WavFile)."""

    def __init__(self, path: Path):
        self.src = WavFile(path, realtime=True, chunk_ms=50)
        self.src.start()

    def read(self, frames: int, exception_on_overflow: bool = False) -> bytes:
        chunk = self.src.read()
        if chunk is None:
            raise OSError("stream closed")
        return chunk

    def close(self) -> None:
        self.src.stop()


def reference_run(protocol: str, base_url: str, wav: Path, n_partials: int) -> dict:
    """One run of a reference script: stream, and once ``n_partials`` partials arrived, run its
    stop procedure exactly as written (timed from ``stop_event.set()`` to the end of the join).

    Differences from the scripts: no prints, no signal handler (the stop is called directly),
    state in locals instead of globals, and the pyaudio stream replaced by ``PacedStream``.
    """
    stream = PacedStream(wav)
    stop_event = threading.Event()
    trigger = threading.Event()
    state = {"partials": 0, "finals": 0, "summary": False, "closed_at": None}
    holder: dict = {}
    if protocol == "deepgram":
        params = ("model=nova-3&encoding=linear16&sample_rate=16000&channels=1&punctuate=true"
                  "&interim_results=true")  # fmt: skip
        endpoint = f"{base_url}/v1/listen?{params}"
        header = {"Authorization": f"Token {KEY}"}
    else:
        endpoint = f"{base_url}/v3/ws?sample_rate=16000&speech_model=u3-rt-pro"
        header = {"Authorization": KEY}

    def on_open(ws):
        def mic_loop():
            if protocol == "deepgram":  # the Deepgram script's loop: no error handling
                while not stop_event.is_set():
                    ws.send(stream.read(800, exception_on_overflow=False),
                            websocket.ABNF.OPCODE_BINARY)  # fmt: skip
            else:  # the AssemblyAI script's loop
                while not stop_event.is_set():
                    try:
                        audio_data = stream.read(800, exception_on_overflow=False)
                        ws.send(audio_data, websocket.ABNF.OPCODE_BINARY)
                    except Exception:
                        break

        holder["audio_thread"] = threading.Thread(target=mic_loop, daemon=True)
        holder["audio_thread"].start()

    def on_message(ws, msg):
        d = json.loads(msg)
        kind = d.get("type")
        if kind == "Results":
            _ = d["channel"]["alternatives"][0]["transcript"]
            state["finals" if d["is_final"] else "partials"] += 1
        elif kind == "Turn":
            _ = d.get("transcript", "")
            state["finals" if d.get("end_of_turn", False) else "partials"] += 1
        elif kind in ("Metadata", "Termination"):
            state["summary"] = True
        if state["partials"] >= n_partials:
            trigger.set()

    def on_error(ws, error):
        stop_event.set()

    def on_close(ws, *args):
        state["closed_at"] = time.perf_counter()
        stop_event.set()
        if protocol == "assemblyai":  # its on_close joins the audio thread
            t = holder.get("audio_thread")
            if t and t.is_alive():
                t.join(timeout=1.0)

    ws_app = websocket.WebSocketApp(endpoint, header=header, on_open=on_open,
                                    on_message=on_message, on_error=on_error,
                                    on_close=on_close)  # fmt: skip
    ws_thread = threading.Thread(target=ws_app.run_forever, daemon=True)
    ws_thread.start()
    if not trigger.wait(30.0):
        raise RuntimeError(f"reference {protocol}: no partials within 30 s")

    t0 = time.perf_counter()
    if protocol == "deepgram":  # graceful_shutdown()
        stop_event.set()
        if ws_app and ws_app.sock and ws_app.sock.connected:
            try:
                ws_app.send(json.dumps({"type": "CloseStream"}))
                time.sleep(0.5)  # Allow time for final metadata to come through
            except Exception:
                pass
        ws_app.close()
        if ws_thread and ws_thread.is_alive():
            ws_thread.join(timeout=2.0)
    else:  # the KeyboardInterrupt branch of run()
        stop_event.set()
        if ws_app and ws_app.sock and ws_app.sock.connected:
            try:
                ws_app.send(json.dumps({"type": "Terminate"}))
                time.sleep(5)
            except Exception:
                pass
        if ws_app:
            ws_app.close()
        ws_thread.join(timeout=2.0)
    elapsed = time.perf_counter() - t0

    # Not part of the reference (it leaves daemon threads behind): release and join here.
    stream.close()
    for t in (holder.get("audio_thread"), ws_thread):
        if t is not None:
            t.join(5.0)
    server_closed = state["closed_at"] is not None and state["closed_at"] < t0 + elapsed
    return {"stop_s": elapsed, "summary": state["summary"], "finals": state["finals"],
            "closed_before_return": server_closed}  # fmt: skip


def session_run(protocol: str, base_url: str, wav: Path, n_partials: int) -> dict:
    trigger = threading.Event()
    count = [0]

    def on_partial(_event):
        count[0] += 1
        if count[0] >= n_partials:
            trigger.set()

    s = TranscriptionSession(protocol, url=base_url, api_key=KEY,
                             source=WavFile(wav, realtime=True), on_partial=on_partial)  # fmt: skip
    s.start()
    try:
        if not trigger.wait(30.0):
            raise RuntimeError(f"session {protocol}: no partials within 30 s ({s.error})")
        t0 = time.perf_counter()
        s.stop()
        elapsed = time.perf_counter() - t0
    finally:
        s.stop(2.0)
    meta = s.metadata
    segments = s.transcript.segments
    return {"stop_s": elapsed, "summary": meta.terminal_message, "error": s.error,
            "finals": sum(seg.is_final for seg in segments),
            "unfinished": sum(not seg.is_final for seg in segments)}  # fmt: skip


def section_stop(work: Path, runs: int, out: list[str]) -> dict:
    script = work / "stop-script.json"
    script.write_text(json.dumps(make_script(120, seed=11)))
    wav = write_wav(work / "stop-60s.wav", 60)
    rng = random.Random(5)
    triggers = [rng.randint(3, 8) for _ in range(runs)]
    results: dict = {}
    with serve_script(script, rate_limit=True, workdir=work) as srv:
        for protocol in ("deepgram", "assemblyai"):
            for kind, fn in (("session", session_run), ("reference", reference_run)):
                rows = []
                for i, n in enumerate(triggers):
                    rows.append(fn(protocol, srv.url, wav, n))
                    log(f"stop {protocol} {kind} {i + 1}/{runs}: {rows[-1]['stop_s']:.4f} s")
                results[(protocol, kind)] = rows

    out.append("1. Stop latency: session.stop() vs the reference scripts' fixed-sleep stop")
    out.append(
        "   method: per run, stream a 60 s WAV in real time to `livetx serve --engine script`"
        " (own process, rate limit on),"
    )
    out.append(
        "   stop after the k-th partial (k = 3..8, same sequence for both), time.perf_counter()"
        " around session.stop() /"
    )
    out.append(
        "   around the reference stop (stop_event.set -> send CloseStream|Terminate -> sleep"
        " 0.5|5 s -> ws_app.close -> join);"
    )
    out.append(f"   {runs} runs each; p95 by linear interpolation.")
    out.append(
        f"   {'provider':<11}{'implementation':<30}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
        f"{'summary':>9}{'finals':>8}"
    )
    summary = {}
    for protocol in ("deepgram", "assemblyai"):
        p50s = {}
        for kind in ("session", "reference"):
            rows = results[(protocol, kind)]
            ms = [r["stop_s"] * 1000 for r in rows]
            p50s[kind] = pct(ms, 50)
            label = ("TranscriptionSession.stop()" if kind == "session" else
                     f"reference ({'0.5' if protocol == 'deepgram' else '5'} s sleep)")  # fmt: skip
            got = sum(bool(r["summary"]) for r in rows)
            finals = sum(r["finals"] for r in rows)
            out.append(
                f"   {protocol:<11}{label:<30}{p50s[kind]:>9.1f}{pct(ms, 95):>9.1f}"
                f"{max(ms):>9.1f}{got:>6}/{len(rows):<2}{finals:>8}"
            )
            if kind == "session":
                errors = [str(r["error"]) for r in rows if r["error"] is not None]
                unfinished = sum(r["unfinished"] for r in rows)
                if errors or unfinished:
                    out.append(f"   {'':<11}!! errors: {errors[:3]}; unfinished segments: "
                               f"{unfinished}")  # fmt: skip
        ratio = p50s["reference"] / p50s["session"]
        summary[protocol] = ratio
        out.append(f"   {protocol:<11}ratio reference/session (p50): {ratio:.0f}x")
    out.append(
        "   summary = the provider's closing message (Metadata / Termination) was received;"
        " finals = final results over all runs."
    )
    out.append(
        "   The script server answers at once, so the session's figure is its own overhead;"
        " against a real provider stop() waits"
    )
    out.append(
        "   as long as the provider takes to send its closing message (up to stop_timeout),"
        " while the reference sleeps a fixed"
    )
    out.append("   time whether or not that was enough.")
    return summary


# -- 2. receive-path CPU ----------------------------------------------------------------------
def capture_frames(protocol: str, base_url: str, wav: Path) -> list[str]:
    """Every text frame the server sends for ``wav`` (sent as fast as it takes it), captured
    with a plain client: the same bytes in the same 50 ms chunks as the session sends."""
    codec = make_codec(protocol)
    conn = Connection.open(codec, codec.connect_request(KEY, base_url), timeout=10.0)
    frames: list[str] = []

    def receive():
        for _ in range(10_000_000):  # bounded: ends at the close frame
            frame = conn.recv()
            if frame.closed:
                return
            frames.append(frame.text)

    rx = threading.Thread(target=receive, name="bench-capture")
    rx.start()
    src = WavFile(wav, realtime=False)
    src.start()
    try:
        for _ in range(10_000_000):
            chunk = src.read()
            if chunk is None:
                break
            conn.send_audio(chunk)
        for message in codec.close_messages():
            conn.send_text(message)
        rx.join(120.0)
    finally:
        src.stop()
        conn.close()
        rx.join(5.0)
    return frames


class ReplayConnection:
    """What ``_serve_connection`` needs of a connection, serving captured frames in order."""

    def __init__(self, codec, frames: list[str]):
        self.codec = codec
        self._frames = [Frame(text=f) for f in frames]
        self._i = 0

    def recv(self) -> Frame:
        if self._i < len(self._frames):
            self._i += 1
            return self._frames[self._i - 1]
        return Frame(closed=True, code=1000)

    def close(self) -> None:
        pass


def replay_cpu(protocol: str, frames: list[str], audio_bytes: int) -> tuple[float, dict]:
    """CPU seconds of one pass of the session's receive method over ``frames``."""
    counts = {"partial": 0, "final": 0, "event": 0}

    def counter(kind):
        def handler(_payload):
            counts[kind] += 1

        return handler

    s = TranscriptionSession(protocol, url="ws://127.0.0.1:9", api_key=KEY,
                             source=np.zeros(1600, dtype=np.int16),
                             on_partial=counter("partial"), on_final=counter("final"),
                             on_event=counter("event"))  # fmt: skip
    conn = ReplayConnection(session_codec(protocol), frames)
    # The state of a connected session that has sent the whole file (what the receiver finds
    # when results arrive): generation 1, its audio in the ledger, marked as sent, and its
    # closing messages sent on this connection (so the summary and close are the asked end).
    chunk = bytes(1600)
    with s._cv:
        s._conn, s._conn_gen, s._conn_offset = conn, 1, 0
        s._close_sent_gen = 1
        now = time.monotonic()
        for _ in range(audio_bytes // len(chunk)):
            s._ledger.append(chunk)
            s._ledger.mark_sent(now)
    gc.collect()
    t0 = time.thread_time()
    outcome = s._serve_connection(conn)
    cpu = time.thread_time() - t0
    if outcome != "done":
        raise RuntimeError(f"replay ended with {outcome!r}")
    counts["segments"] = len(s.transcript)
    return cpu, counts


def json_cpu(frames: list[str]) -> float:
    loads = json.loads
    gc.collect()
    t0 = time.thread_time()
    for f in frames:
        loads(f)
    return time.thread_time() - t0


def session_codec(protocol: str):
    """A codec set up as the session's ``_connect`` sets it for its first connection."""
    codec = make_codec(protocol)
    codec.time_offset = 0.0
    codec.key_prefix = "c1:"
    return codec


def decode_cpu(protocol: str, frames: list[str]) -> float:
    """CPU seconds of ``codec.decode`` alone over every frame (one piece of (a))."""
    codec = session_codec(protocol)
    gc.collect()
    t0 = time.thread_time()
    for f in frames:
        codec.decode(f)
    return time.thread_time() - t0


class _TimedSession(TranscriptionSession):
    """A session whose receiver thread reads its own CPU clock as its very last act.

    ``on_status`` runs on the control thread, so the receiver's CPU cannot be read from a status
    listener; the end mark is taken where the receiver thread's work ends instead."""

    def _receive_loop(self) -> None:
        try:
            super()._receive_loop()
        finally:
            self.receiver_cpu_end = time.thread_time()


def live_receiver_cpu(protocol: str, base_url: str, wav: Path) -> dict:
    """Receiver-thread CPU of a real session, read with ``time.thread_time()`` from inside the
    receiver thread itself: at its first event (connected: the handshake's events are
    dispatched right after the upgrade) and as its last act, so it covers websocket framing,
    decode, dispatch and the close; the plain baseline likewise starts once connected."""
    marks: dict = {}
    events = [0]

    def on_event(_e):
        if threading.current_thread().name == "livetx-receiver" and "live" not in marks:
            marks["live"] = time.thread_time()
        events[0] += 1

    s = _TimedSession(protocol, url=base_url, api_key=KEY,
                      source=WavFile(wav, realtime=False), on_event=on_event,
                      on_partial=lambda e: None, on_final=lambda seg: None)  # fmt: skip
    t0 = time.perf_counter()
    s.start()
    if not s.wait(float(WavFile(wav).duration_s) + 120):
        s.stop(2.0)
        raise RuntimeError(f"live {protocol} session did not end")
    s.stop()
    wall = time.perf_counter() - t0
    marks["end"] = getattr(s, "receiver_cpu_end", None)
    if s.error is not None or "live" not in marks or marks["end"] is None:
        raise RuntimeError(f"live {protocol} session: {s.error!r} {marks}")
    return {"cpu": marks["end"] - marks["live"], "events": events[0], "wall": wall,
            "segments": len(s.transcript)}  # fmt: skip


def plain_receiver_cpu(protocol: str, base_url: str, wav: Path) -> dict:
    """The baseline for (c): a plain websocket-client loop that only ``json.loads`` each text
    frame, receiving the same stream at the same pace (AssemblyAI: real time, as the session
    paces it; Deepgram: as fast as the server answers). Its thread CPU covers the same socket
    reads and framing as the session's receiver, so (c)/(d) is the live cost of everything the
    session does per message beyond parsing it."""
    codec = make_codec(protocol)
    request = codec.connect_request(KEY, base_url)
    ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
    ws.connect(request.url, header=[f"{k}: {v}" for k, v in request.headers.items()],
               timeout=10, suppress_origin=True)  # fmt: skip
    ws.settimeout(None)
    result = {"frames": 0}

    def receive():
        t0 = time.thread_time()
        for _ in range(10_000_000):  # bounded: ends at the close frame
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                json.loads(data)
                result["frames"] += 1
        result["cpu"] = time.thread_time() - t0

    rx = threading.Thread(target=receive, name="bench-plain-receiver")
    rx.start()
    src = WavFile(wav, realtime=protocol == "assemblyai")
    src.start()
    try:
        for _ in range(10_000_000):
            chunk = src.read()
            if chunk is None:
                break
            ws.send_binary(chunk)
        for message in codec.close_messages():
            ws.send(message)
        rx.join(120.0)
    finally:
        src.stop()
        with contextlib.suppress(Exception):
            ws.shutdown()
        rx.join(5.0)
    return result


def live_and_plain_together(protocol: str, base_url: str, wav: Path) -> tuple[dict, dict]:
    """(c) and (d) at the same time, each in its own threads (``--quick``: AssemblyAI's are
    paced to real time, so one after the other they took twice the file's length). Thread
    CPU clocks are per thread, so each figure still counts only its own receiver."""
    results: dict[str, dict] = {}
    failures: list[BaseException] = []

    def run(name, fn):
        try:
            results[name] = fn(protocol, base_url, wav)
        except BaseException as exc:  # re-raised below, in the caller's thread
            failures.append(exc)

    jobs = (("live", live_receiver_cpu), ("plain", plain_receiver_cpu))
    threads = [threading.Thread(target=run, args=job, name=f"bench-{job[0]}") for job in jobs]
    for t in threads:
        t.start()
    timeout = float(WavFile(wav).duration_s) + 180
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        raise RuntimeError("the concurrent live and plain receivers did not end")
    if failures:
        raise failures[0]
    return results["live"], results["plain"]


def section_cpu(work: Path, quick: bool, out: list[str]) -> dict:
    seconds = {"deepgram": 300 if quick else 1200, "assemblyai": 45 if quick else 120}
    reps = 3 if quick else 7
    out.append("2. Client CPU per received message: session receive path vs bare json.loads")
    out.append(
        "   method: `livetx serve --engine script --no-rate-limit` (own process) with a ~150"
        " words/min script; its text frames"
    )
    out.append(
        "   for a WAV sent as fast as it takes it are captured once by a plain client. (a)"
        " replays them through the session's"
    )
    out.append(
        "   own receive method TranscriptionSession._serve_connection (codec.decode with the"
        " connection's time_offset/key_prefix ->"
    )
    out.append(
        "   Transcript.apply -> partial/final/event listeners; ledger filled as after sending"
        " the file) in one thread, thread_time() around"
    )
    out.append(
        "   the call: the real code, minus only the socket read. (b) json.loads of the same"
        f" frames. Median of {reps} passes of >= 3000 frames each."
    )
    out.append(
        "   (c) a live session on the same WAV: receiver-thread CPU read with time.thread_time()"
        " inside the receiver (first"
    )
    out.append(
        "   event .. thread end): (a) plus websocket-client framing, socket reads and the close."
        " AssemblyAI is paced to real"
    )
    out.append(
        "   time by the session, hence its shorter file. (d) the same stream received at the"
        " same pace by a plain websocket-client"
    )
    out.append(
        "   loop that only json.loads each frame (its thread's CPU): the live baseline for (c)."
        " Live figures include the cost of"
    )
    out.append(
        "   waking a thread that slept between messages (cold caches), which the replay loop"
        " does not pay."
    )
    if quick:
        out.append(
            "   --quick: AssemblyAI's (c) and (d) run at the same time (each real time), not one"
            " after the other."
        )
    out.append(
        f"   {'provider':<11}{'audio s':>8}{'frames':>8}{'avg B':>7}{'(a) us/msg':>11}"
        f"{'(b) us/msg':>11}{'a/b':>6}{'(c) us/msg':>11}{'(d) us/msg':>11}{'c/d':>6}"
    )
    summary, parts = {}, {}
    for protocol in ("deepgram", "assemblyai"):
        script = work / f"cpu-{protocol}.json"
        script.write_text(json.dumps(make_script(seconds[protocol], seed=21)))
        wav = write_wav(work / f"cpu-{protocol}.wav", seconds[protocol])
        with serve_script(script, rate_limit=False, workdir=work) as srv:
            frames = capture_frames(protocol, srv.url, wav)
            if quick and protocol == "assemblyai":
                live, plain = live_and_plain_together(protocol, srv.url, wav)
            else:
                live = live_receiver_cpu(protocol, srv.url, wav)
                plain = plain_receiver_cpu(protocol, srv.url, wav)
        audio_bytes = seconds[protocol] * BYTES_PER_S
        a_runs, b_runs, d_runs, counts = [], [], [], {}
        inner = -(-3000 // len(frames))  # each pass covers at least 3000 frames
        for _ in range(reps):
            a_cpu = b_cpu = d_cpu = 0.0
            for _ in range(inner):
                cpu, counts = replay_cpu(protocol, frames, audio_bytes)
                a_cpu += cpu
                b_cpu += json_cpu(frames)
                d_cpu += decode_cpu(protocol, frames)
            a_runs.append(a_cpu / inner)
            b_runs.append(b_cpu / inner)
            d_runs.append(d_cpu / inner)
        n = len(frames)
        a = statistics.median(a_runs) / n * 1e6
        b = statistics.median(b_runs) / n * 1e6
        parts[protocol] = (statistics.median(d_runs) / n * 1e6, a, b)
        c = live["cpu"] / n * 1e6
        d = plain["cpu"] / plain["frames"] * 1e6
        avg = sum(len(f) for f in frames) / n
        summary[protocol] = a / b
        out.append(
            f"   {protocol:<11}{seconds[protocol]:>8}{n:>8}{avg:>7.0f}{a:>11.1f}{b:>11.1f}"
            f"{a / b:>6.1f}{c:>11.1f}{d:>11.1f}{c / d:>6.1f}"
        )
        out.append(
            f"   {'':<11}replay: {counts['partial']} partials, {counts['final']} finals, "
            f"{counts['event']} events, {counts['segments']} segments; live: {live['events']} "
            f"events, {live['segments']} segments in {live['wall']:.1f} s; plain: "
            f"{plain['frames']} frames"
        )
        # Deepgram's SessionStarted comes from the HTTP upgrade, not from a frame.
        handshake = 1 if protocol == "deepgram" else 0
        if counts["event"] + handshake != live["events"] or counts["segments"] != live["segments"]:
            out.append(f"   {'':<11}!! the live session's events differ from the replay's")
    out.append("   where (a) goes, measured alone the same way (us/msg):")
    for protocol, (decode, a, b) in parts.items():
        out.append(
            f"   {protocol:<11}codec.decode {decode:.1f} ({decode / b:.1f}x json.loads, json"
            f" included) of (a) {a:.1f}; the rest (Transcript.apply, listeners, locks, ledger)"
            f" ~{a - decode:.1f}"
        )
    verdicts = [f"{p} {r:.1f}x" for p, r in summary.items()]
    ok = all(r <= TARGETS["cpu_ratio"] for r in summary.values())
    out.append(
        f"   target (a)/(b) <= {TARGETS['cpu_ratio']:.0f}x: {', '.join(verdicts)} -> "
        f"{'met' if ok else 'MISSED'}"
    )
    return summary


# -- 3. pacing (child processes) -------------------------------------------------------------
def child_pacing_source(params: dict) -> dict:
    """Read a real-time WavFile as the sender does (``read(timeout=0.1)`` in a loop)."""
    work = Path(params["work"])
    wav = write_wav(work / "pacing-source.wav", params["seconds"])
    src = TimedSource(WavFile(wav, realtime=True))
    src.start()
    limit = time.monotonic() + params["seconds"] + 60
    try:
        while time.monotonic() < limit:
            if src.read(timeout=0.1) is None:
                break
    finally:
        src.stop()
    return src.stats()


def child_pacing_control(params: dict) -> dict:
    """The scheduler's own floor: no audio code, just wait for each 50 ms deadline computed
    from one start (``Event.wait``, as FiniteSource waits), and note how late each wake-up is."""
    wake = threading.Event()
    n = round(params["seconds"] / CHUNK_S)
    t0 = time.monotonic()
    late = np.empty(n)
    loads = []
    for i in range(n):
        if i % 1200 == 0:  # once a minute
            loads.append(os.getloadavg()[0])
        due = t0 + (i + 1) * CHUNK_S
        remaining = due - time.monotonic()
        if remaining > 0:
            wake.wait(remaining)
        late[i] = (time.monotonic() - due) * 1000.0
    return {**pacing_stats(late, t0), "loads": loads}


def child_pacing_session(params: dict) -> dict:
    """A full session on a real-time WavFile (Deepgram protocol). The sender's reads are timed
    as above; the server's audio clock is seen through partials: each scripted word ends on a
    chunk boundary, so its partial is sent when the chunk ending there reaches the server."""
    work = Path(params["work"])
    wav = Path(params["wav"])
    arrivals: list[tuple[float, float]] = []
    ended: dict = {}

    def on_partial(event):
        arrivals.append((time.monotonic(), event.end))

    def on_event(event):
        if type(event).__name__ == "SessionEnded":
            ended["at"] = time.monotonic()
            ended["audio_s"] = event.audio_duration_s

    src = TimedSource(WavFile(wav, realtime=True))
    s = TranscriptionSession("deepgram", url=params["url"], api_key=KEY, source=src,
                             on_partial=on_partial, on_event=on_event,
                             record_to=work / "pacing-recorded.wav")  # fmt: skip
    s.start()
    if not s.wait(params["seconds"] + 120):
        s.stop(2.0)
        return {"error": "session did not end"}
    s.stop()
    with wave.open(str(work / "pacing-recorded.wav"), "rb") as w:
        recorded_s = w.getnframes() / RATE
    late = np.array([(at - (src.t0 + round(end / TICK) * TICK)) * 1000.0 for at, end in arrivals])
    result = {"sender": src.stats(), "error": str(s.error or "")}
    if len(late):
        result["server"] = {"words": len(late), "max_ms": float(late.max()),
                            "min_ms": float(late.min()), "final_ms": float(late[-1]),
                            "p50_ms": pct(late, 50), "p99_ms": pct(late, 99)}  # fmt: skip
    if "at" in ended:
        result["end_ms"] = (ended["at"] - src.t0 - ended["audio_s"]) * 1000.0
        result["audio_s"] = ended["audio_s"]
    result["recorded_s"] = recorded_s
    return result


def start_child(section: str, params: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", section, json.dumps(params)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def finish_child(proc: subprocess.Popen, timeout: float) -> dict:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        return {"error": f"child timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"child exited {proc.returncode}: {stderr.strip()[-800:]}"}
    return json.loads(stdout.strip().splitlines()[-1])


def report_pacing(src: dict, ses: dict, ctl: dict, seconds: float, out: list[str]) -> dict:
    limit = TARGETS["drift_ms"]
    out.append(f"3. Audio pacing drift over {seconds / 60:.0f} min at real time")
    out.append(
        "   method: lateness = time a chunk was handed out - (first read() call + audio"
        " clock at the chunk's end), time.monotonic();"
    )
    out.append(
        "   final = the last chunk's lateness; trend = median lateness of the last 10 s - that"
        " of the first 10 s (accumulated"
    )
    out.append(
        "   error, blind to a momentary stall); jitter = |interval between chunks - 50 ms|."
        " Ran in child processes, concurrently"
    )
    out.append("   with sections 1, 2 and 4 (so under their load, as a session shares a machine).")
    verdict = {}
    if "error" in src:
        out.append(f"   (a) WavFile alone: FAILED: {src['error']}")
    else:
        out.append("   (a) WavFile(realtime=True) read(timeout=0.1) in a loop, as the sender does:")
        out.append(_pacing_line(src))
        verdict["(a)"] = src
    if "error" in ses and "sender" not in ses:
        out.append(f"   (b) full session: FAILED: {ses['error']}")
    else:
        out.append(
            "   (b) full session (Deepgram protocol, `livetx serve` in its own process):"
            " the sender thread's reads"
        )
        out.append(_pacing_line(ses["sender"]))
        srv = ses.get("server")
        if srv:
            out.append(
                "       server audio clock vs wall clock, via the partial each word triggers"
                " (arrival - due; includes the"
            )
            out.append(
                "       send, the server's processing and the way back):"
                f" {srv['words']} words, max {srv['max_ms']:.1f} ms,"
                f" p99 {srv['p99_ms']:.1f} ms, p50 {srv['p50_ms']:.1f} ms,"
                f" last {srv['final_ms']:.1f} ms, min {srv['min_ms']:.1f} ms"
            )
        if "end_ms" in ses:
            out.append(
                f"       closing summary arrived {ses['end_ms']:.1f} ms after the end of"
                f" {ses['audio_s']:.2f} s of audio (server's count); recording holds"
                f" {ses['recorded_s']:.2f} s"
            )
        if ses.get("error"):
            out.append(f"       !! session error: {ses['error']}")
        verdict["(b)"] = ses["sender"]
    if "error" in ctl:
        out.append(f"   (c) control: FAILED: {ctl['error']}")
    else:
        out.append(
            "   (c) control, no audio code: a loop waiting (Event.wait) for each 50 ms deadline"
            " from one start, in a third process:"
        )
        out.append(_pacing_line(ctl))
        loads = ctl.get("loads") or [float("nan")]
        out.append(
            f"       load average during the run (1-min, sampled each minute): {min(loads):.1f}"
            f" to {max(loads):.1f} on {os.cpu_count()} cores"
        )
        for name, st in verdict.items():
            if st["spikes_mono"]:
                both = coincident(st["spikes_mono"], ctl["spikes_mono"])
                out.append(
                    f"   {name}: {both} of its {len(st['spikes_mono'])} chunks >= {limit:.0f} ms"
                    " late coincide (within 100 ms) with a late wake-up of the control (c)"
                )
        worst = max((st["p99_ms"] for st in verdict.values()), default=0.0)
        if verdict and ctl["p99_ms"] >= 0.5 * worst and ctl["max_ms"] >= limit:
            out.append(
                f"   reading: the control, which runs no audio code, is about as late (p99"
                f" {ctl['p99_ms']:.1f} ms, max {ctl['max_ms']:.1f} ms): the late chunks are"
                " this machine's scheduling under"
            )
            out.append(
                "   load, which no pacing code can beat; the trend shows whether error accumulates."
            )
    checks = []
    for name, st in verdict.items():
        checks.append((f"{name} trend {st['trend_ms']:.2f} ms", abs(st["trend_ms"]) < limit))
        checks.append((f"{name} final {st['final_ms']:.1f} ms", abs(st["final_ms"]) < limit))
        checks.append((f"{name} max {st['max_ms']:.1f} ms", st["max_ms"] < limit))
    for text, passed in checks:
        out.append(f"   target < {limit:.0f} ms: {text} -> {'met' if passed else 'MISSED'}")
    return verdict


def _pacing_line(st: dict) -> str:
    return (
        f"       {st['chunks']} chunks: final {st['final_ms']:.2f} ms, trend"
        f" {st['trend_ms']:.2f} ms, max {st['max_ms']:.2f} ms (at {st['max_at_s']:.2f} s),"
        f" p99 {st['p99_ms']:.2f} ms, p50 {st['p50_ms']:.2f} ms, min {st['min_ms']:.2f} ms;"
        f" jitter p99 {st['jitter_p99_ms']:.2f} ms; {st['late_chunks']} chunks >="
        f" {TARGETS['drift_ms']:.0f} ms late"
    )


def coincident(spikes: list[float], others: list[float], window: float = 0.1) -> int:
    """How many of ``spikes`` have one of ``others`` within ``window`` seconds."""
    others_arr = np.array(sorted(others))
    if not len(others_arr):
        return 0
    count = 0
    for t in spikes:
        i = int(np.searchsorted(others_arr, t))
        near = others_arr[max(0, i - 1) : i + 1]
        count += bool(len(near)) and float(np.min(np.abs(near - t))) <= window
    return count


# -- 4. memory (child processes) -------------------------------------------------------------
def child_memory(params: dict) -> dict:
    """Stream ``seconds`` of audio (Deepgram protocol, as fast as the server takes it) and
    sample RSS (and, with ``trace``, tracemalloc) every ``every`` seconds of audio read."""
    import tracemalloc

    trace = params["trace"]
    every = params["every"]
    src = WavFile(params["wav"], realtime=False)
    s = TranscriptionSession("deepgram", url=params["url"], api_key=KEY, source=src,
                             on_partial=lambda e: None, on_final=lambda seg: None)  # fmt: skip
    gc.collect()
    if trace:
        tracemalloc.start()
    samples = []

    def sample(label: str, mark: float | None) -> None:
        row = {"label": label, "mark": mark, "audio_s": src.position_s, "rss": rss_mb(),
               "segments": len(s.transcript)}  # fmt: skip
        if trace:
            row["heap"] = tracemalloc.get_traced_memory()[0] / 2**20
            row["tm_self"] = tracemalloc.get_tracemalloc_memory() / 2**20
        samples.append(row)

    sample("before start", 0.0)
    t0 = time.perf_counter()
    s.start()
    mark = every
    limit = time.monotonic() + params["seconds"] + 600
    while not s.wait(0.02) and time.monotonic() < limit:
        if src.position_s >= mark:
            sample("streaming", mark)
            mark += every
    s.stop()
    wall = time.perf_counter() - t0
    sample("after stop", None)
    words = sum(len(seg.words) for seg in s.transcript.segments)
    transcript_mb = deep_size(s.transcript) / 2**20
    result = {"samples": samples, "wall": wall, "words": words,
              "transcript_mb": transcript_mb, "error": str(s.error or ""),
              "audio_s": s.metadata.audio_duration_s}  # fmt: skip
    if trace:
        tracemalloc.stop()
    return result


def section_memory(work: Path, quick: bool, out: list[str]) -> dict:
    seconds = 600 if quick else 7200
    every = 60 if quick else 600
    script = work / "memory-script.json"
    script.write_text(json.dumps(make_script(seconds, seed=31)))
    wav = write_wav(work / "memory.wav", seconds)
    runs = {}
    with serve_script(script, rate_limit=True, workdir=work) as srv:
        for trace in (False, True):
            params = {"url": srv.url, "wav": str(wav), "seconds": seconds, "every": every,
                      "trace": trace}  # fmt: skip
            runs[trace] = finish_child(start_child("memory", params), seconds + 900)
            log(f"memory run trace={trace}: {runs[trace].get('wall', 'failed')}")
    wav.unlink()
    out.append(f"4. Client memory over a simulated {seconds / 3600:.3g}-hour session")
    out.append(
        f"   method: a fresh child process streams {seconds / 60:.0f} min of audio (WavFile from"
        " disk, realtime=False, Deepgram protocol) to"
    )
    out.append(
        "   `livetx serve --engine script` (own process) with a ~150 words/min script;"
        f" /proc/self/status VmRSS sampled every {every / 60:.0f} min"
    )
    out.append(
        "   of audio read. Run A: RSS only. Run B: the same with tracemalloc (Python heap;"
        " its RSS would include tracemalloc's tables)."
    )
    out.append(
        "   transcript = deep size of the final Transcript object (sys.getsizeof over everything"
        " it references, each object once)."
    )
    out.append(
        "   growth = peak RSS of run A (any sample) - RSS before start(); beyond the transcript"
        " = growth - transcript."
    )
    plain, traced = runs[False], runs[True]
    for label, run in (("A", plain), ("B", traced)):
        if "samples" not in run:
            out.append(f"   run {label} FAILED: {run.get('error')}")
    if "samples" not in plain:
        return {}
    rows_b = traced.get("samples", [])
    by_mark = {(r["label"], r["mark"]): r for r in rows_b}  # same audio position in run B
    base = plain["samples"][0]["rss"]
    heap0 = rows_b[0]["heap"] if rows_b else 0.0
    out.append(
        f"   {'':<13}{'audio min':>10}{'segments':>10}{'RSS MB':>9}{'+RSS MB':>9}"
        f"{'heap MB (B)':>13}{'+heap MB':>10}"
    )
    for row in plain["samples"]:
        h = by_mark.get((row["label"], row["mark"]))
        h_txt = (f"{h['heap']:>13.1f}{h['heap'] - heap0:>10.1f}" if h
                 else f"{'-':>13}{'-':>10}")  # fmt: skip
        out.append(
            f"   {row['label']:<13}{row['audio_s'] / 60:>10.1f}{row['segments']:>10}"
            f"{row['rss']:>9.1f}{row['rss'] - base:>9.1f}{h_txt}"
        )
    growth = max(r["rss"] for r in plain["samples"]) - base
    beyond = growth - plain["transcript_mb"]
    streaming = [r["rss"] for r in plain["samples"] if r["label"] == "streaming"]
    out.append(
        f"   run A: {plain['audio_s']:.0f} s of audio in {plain['wall']:.1f} s; "
        f"{plain['words']} words, transcript deep size {plain['transcript_mb']:.2f} MB"
    )
    line = f"   peak RSS growth: {growth:.1f} MB; beyond the transcript: {beyond:.1f} MB"
    if len(streaming) > 1:
        line += (
            f" (from the first to the last streaming sample: {streaming[-1] - streaming[0]:.1f} MB)"
        )
    out.append(line)
    if rows_b:
        last = rows_b[-1]
        peak_heap = max(r["heap"] for r in rows_b) - heap0
        out.append(
            f"   run B: peak Python heap growth {peak_heap:.1f} MB, after stop "
            f"{last['heap'] - heap0:.1f} MB; transcript {traced['transcript_mb']:.2f} MB -> "
            f"beyond it after stop {last['heap'] - heap0 - traced['transcript_mb']:.1f} MB"
            f" (wall {traced['wall']:.1f} s)"
        )
    for label, run in (("A", plain), ("B", traced)):
        if run.get("error"):
            out.append(f"   !! run {label} session error: {run['error']}")
    ok = beyond < TARGETS["memory_mb"]
    out.append(
        f"   target < {TARGETS['memory_mb']:.0f} MB beyond the transcript: {beyond:.1f} MB -> "
        f"{'met' if ok else 'MISSED'}"
    )
    return {"growth": growth, "beyond": beyond}


# -- driver -----------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_lines() -> list[str]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "livetx_widgets"],
                           capture_output=True, text=True).stdout.split("\n")  # fmt: skip
    dirty = [line for line in dirty if line.strip()]
    if dirty:
        commit += f" + uncommitted changes to {len(dirty)} file(s) under livetx_widgets/"
    return [
        f"machine: {os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, websocket-client {websocket.__version__}",
        f"commit {commit or '?'}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; "
        f"load average at start {os.getloadavg()[0]:.2f} (other work shares this machine)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short version (~4 min)")
    ap.add_argument("--runs", type=int, default=None, help="stop-latency runs (default 20)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/session.txt")
    ap.add_argument(
        "--only",
        default="stop,cpu,pacing,memory",
        help="comma-separated sections to run (default: all)",
    )
    ap.add_argument("--child", nargs=2, metavar=("SECTION", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        section, params = args.child[0], json.loads(args.child[1])
        fn = {"pacing-source": child_pacing_source, "pacing-session": child_pacing_session,
              "pacing-control": child_pacing_control,
              "memory": child_memory}[section]  # fmt: skip
        print(json.dumps(fn(params)))
        return 0

    runs = args.runs or (5 if args.quick else 20)
    pacing_s = 60 if args.quick else 600
    out = [
        "TranscriptionSession benchmark" + (" (--quick)" if args.quick else ""),
        *machine_lines(),
        "",
    ]
    only = set(args.only.split(","))
    started = time.perf_counter()
    parts: dict[str, list[str]] = {}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livetx-bench-")))
        children = {}
        if "pacing" in only:  # starts first and runs in the background (child processes)
            pace_script = work / "pacing-script.json"
            pace_script.write_text(json.dumps(make_script(pacing_s, seed=41)))
            pace_wav = write_wav(work / "pacing-session.wav", pacing_s)
            pace_srv = stack.enter_context(serve_script(pace_script, rate_limit=True, workdir=work))
            common = {"work": str(work), "seconds": pacing_s}
            children["source"] = start_child("pacing-source", common)
            children["control"] = start_child("pacing-control", common)
            children["session"] = start_child(
                "pacing-session", {**common, "url": pace_srv.url, "wav": str(pace_wav)}
            )
            log(f"pacing children started ({pacing_s} s of audio each)")
        for name, fn in (("stop", lambda o: section_stop(work, runs, o)),
                         ("cpu", lambda o: section_cpu(work, args.quick, o)),
                         ("memory", lambda o: section_memory(work, args.quick, o))):  # fmt: skip
            if name in only:
                log(f"section {name}")
                parts[name] = []
                fn(parts[name])
        if children:
            log("waiting for the pacing children")
            src_res = finish_child(children["source"], pacing_s + 180)
            ses_res = finish_child(children["session"], pacing_s + 180)
            ctl_res = finish_child(children["control"], pacing_s + 180)
            parts["pacing"] = []
            report_pacing(src_res, ses_res, ctl_res, pacing_s, parts["pacing"])
    for name in ("stop", "cpu", "pacing", "memory"):
        if name in parts:
            out += [*parts[name], ""]
    out.append(
        f"total {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}"
    )
    text = "\n".join(out)
    print(text)
    if args.save:
        path = REPO / "benchmarks" / "results" / "session.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
