"""Helpers every test area shares: bounded polling, the timing unit, leak checks, tone files.

Conftests, test modules and the fault harness ``import livetx_test_support as support``:
``tests/conftest.py`` registers this file under that name before any of them is imported
(under ``--import-mode=importlib`` nothing below ``tests/`` is importable by its path).

Timing: every wall-clock bound a test asserts or waits for is a multiple of ``TIMING``
(``LIVETX_TIMING_UNIT``, default 1), so a slow or loaded CI machine scales all of them at once
instead of each test growing its own margin (websockets' ``tests/utils.py`` does the same).
Lower bounds (a paced source took *at least* its audio's duration) are not scaled: a slow
machine only makes them easier to meet.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

#: The timing unit: multiply every generous wall-clock bound by it.
TIMING = float(os.environ.get("LIVETX_TIMING_UNIT", "1"))
#: True in the fast lane (a run whose ``-m`` leaves the ``slow`` tests out); set by
#: tests/conftest.py's ``pytest_configure``, before any test module is imported.
FAST_LANE = False


def examples(full: int) -> int:
    """Hypothesis examples for a property test: ``full`` in a run that includes the slow tests
    (the full suite, CI), a fifth of it (at least 20) in the fast lane, which must stay under
    its time budget; the properties and their strategies are the same in both."""
    return max(20, full // 5) if FAST_LANE else full


#: The prefix of every thread the package starts (sender, receiver, control, server, flusher...).
THREAD_PREFIX = "livetx-"
RATE = 16000


def wait_until(predicate: Callable[[], object], timeout: float = 5.0 * TIMING,
               interval: float = 0.02) -> bool:  # fmt: skip
    """Poll ``predicate`` (state another thread or process owns) until it holds.

    ``timeout`` is in seconds: pass a multiple of ``TIMING``. Returns the predicate's last
    verdict, so ``assert wait_until(...)`` fails when it never held. Bounded by the timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def livetx_threads(*, besides: Iterable[threading.Thread] = (),
                   exclude: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    """Sorted names of the package's live threads (every one is named ``livetx-*``).

    ``besides``: threads that were there before (a snapshot of ``threading.enumerate()``), not
    counted. ``exclude``: name prefixes not counted, for threads a fixture owns for the whole
    test (a server the test talks to: ``livetx-server``, its ``livetx-engine`` workers).
    """
    before = set(besides)
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.name.startswith(THREAD_PREFIX) and t.is_alive() and t not in before
        and not t.name.startswith(exclude)
    )  # fmt: skip


#: The threads of a running ``LocalServer``: its event loop and its engine workers.
SERVER_THREADS = ("livetx-server", "livetx-engine")


def open_fds() -> int:
    """How many file descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def socket_inodes() -> set[str]:
    """The sockets this process holds open (``socket:[inode]`` of each fd)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd of the listing itself, or one closed since
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return found


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    """A float32 sine in -1..1."""
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    """A quiet 220 Hz tone as int16: the script engine only counts audio, so any sound does."""
    return quantize(sine(220.0, rate, seconds, amp=0.1), 2).astype("<i2")


def tone_chunks(n_chunks: int, samples: int = 1600) -> list[bytes]:
    """``n_chunks`` chunks of a tone as s16le bytes, ``samples`` each (the page's 100 ms)."""
    pcm = tone(n_chunks * samples / RATE).tobytes()
    size = 2 * samples
    return [pcm[i * size : (i + 1) * size] for i in range(n_chunks)]


def quantize(samples: np.ndarray, width: int) -> np.ndarray:
    """Float -1..1 to the integers a ``width``-byte PCM WAV stores (8-bit is unsigned)."""
    scale = 2 ** (8 * width - 1)
    q = np.clip(np.rint(samples.astype(np.float64) * scale), -scale, scale - 1).astype(np.int64)
    return q + 128 if width == 1 else q


def dequantize(q: np.ndarray, width: int) -> np.ndarray:
    """What a correct reader decodes from ``quantize`` output, as float64."""
    scale = 2 ** (8 * width - 1)
    return ((q - 128) if width == 1 else q) / scale


def pcm_bytes(q: np.ndarray, width: int) -> bytes:
    """Little-endian PCM bytes of quantized samples, written byte by byte (independent of any
    reader's numpy decoding)."""
    flat = q.reshape(-1).astype(np.int64) % (1 << (8 * width))  # two's complement
    out = np.zeros((len(flat), width), np.uint8)
    for i in range(width):
        out[:, i] = (flat >> (8 * i)) & 0xFF
    return out.tobytes()


def write_pcm_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> np.ndarray:
    """Write float ``samples`` (1-D or ``(n, channels)``) with the stdlib ``wave`` module.

    Returns the float64 ``(n, channels)`` values a correct reader must decode.
    """
    s = samples.reshape(len(samples), -1)
    q = quantize(s, width)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(s.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm_bytes(q, width))
    return dequantize(q, width)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """16-bit mono int16 ``samples`` as a WAV file."""
    write_pcm_wav(path, np.asarray(samples, dtype=np.int16) / 32768.0, rate, 2)
    return path


def tone_wav(path: Path, seconds: float, rate: int = RATE) -> Path:
    """A WAV file of a quiet tone lasting ``seconds``."""
    return write_wav(path, tone(seconds, rate), rate)


def write_raw_wav(
    path: Path,
    data: bytes,
    *,
    rate: int,
    channels: int,
    bits: int,
    tag: int = 1,
    extensible: bool = False,
    data_size: int | None = None,
    extra_chunk: bool = False,
) -> None:
    """Write a WAV header by hand: float (tag 3), WAVE_FORMAT_EXTENSIBLE, odd chunks, sizes."""
    block = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:  # an odd-sized chunk before data exercises the pad byte
        body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    size = len(data) if data_size is None else data_size
    body += b"data" + struct.pack("<I", size) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def words_of(script: dict) -> list[str]:
    """The words of a ``{"turns": [{"text": ...}]}`` script, in order."""
    return " ".join(turn["text"] for turn in script["turns"]).split()


#: Two sentences on the audio clock, with speakers: final at ~2.7 s and ~4.3 s of audio.
TWO_TURNS = {
    "turns": [
        {"text": "Hello there, this is the first sentence.", "start": 0.3, "end": 2.2,
         "speaker": 0},
        {"text": "And here is the second one.", "start": 2.8, "end": 4.0, "speaker": 1},
    ]
}  # fmt: skip


#: Samples in the page's 100 ms browser-microphone chunks.
PAGE_CHUNK = 1600


class Page:
    """Sends what a widget's page sends for the browser microphone (``static/capture.js`` as
    widget.js and compare.js drive it), through the widget's message handler, with buffers as
    ipywidgets hands them over (memoryviews)."""

    def __init__(self, widget, capture: str = "view1-1") -> None:
        self.w = widget
        self.capture = capture
        self.t0 = time.time() * 1000

    def msg(self, content: dict, buffers=()) -> None:
        self.w._on_front_end_msg(self.w, content, [memoryview(b) for b in buffers])

    def start(self) -> None:
        self.msg({"type": "start", "capture": self.capture})

    def chunk(self, seq: int, pcm: bytes, *, offset: int | None = None, capture=None) -> None:
        self.msg(
            {
                "type": "audio", "capture": capture or self.capture, "seq": seq,
                "offset": seq * PAGE_CHUNK if offset is None else offset,
                "samples": len(pcm) // 2, "capturedAt": self.t0 + 100 * (seq + 1),
                "last": False,
            },
            [pcm],
        )  # fmt: skip

    def capture_error(self, message: str, kind: str = "denied") -> None:
        self.msg({"type": "capture-error", "capture": self.capture, "kind": kind,
                  "message": message})  # fmt: skip

    def stop(self) -> None:
        self.msg({"type": "stop"})
