"""Audio test helpers: a WAV writer for synthetic files and a real PulseAudio virtual microphone.

``pulse_mic`` starts a private PulseAudio daemon whose null sink ``vmic`` is the default
source (its monitor): whatever ``pulse_mic.play(wav)`` plays into the sink is what pyaudio's
``pulse``/``default`` inputs record. It is self-contained so that it can move up to
``tests/conftest.py`` when the session tests need a microphone too.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

# -- synthetic WAV files ----------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def quantize(samples: np.ndarray, width: int) -> np.ndarray:
    """Float -1..1 to the integers a ``width``-byte PCM WAV stores (8-bit is unsigned)."""
    bits = 8 * width
    scale = 2 ** (bits - 1)
    q = np.clip(np.rint(samples.astype(np.float64) * scale), -scale, scale - 1).astype(np.int64)
    return q + 128 if width == 1 else q


def dequantize(q: np.ndarray, width: int) -> np.ndarray:
    """What a correct reader decodes from ``quantize`` output, as float64."""
    scale = 2 ** (8 * width - 1)
    return ((q - 128) if width == 1 else q) / scale


def pcm_bytes(q: np.ndarray, width: int) -> bytes:
    """Little-endian PCM bytes of quantized samples, written byte by byte (independent of the
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


@pytest.fixture
def wav_writer():
    """The WAV helpers above, for test modules (importlib mode cannot import conftest)."""

    class Writers:
        pass

    w = Writers()
    w.tone = tone
    w.pcm = write_pcm_wav
    w.raw = write_raw_wav
    w.quantize = quantize
    w.pcm_bytes = pcm_bytes
    return w


# -- a real virtual microphone ----------------------------------------------------------------

READY_TIMEOUT_S = 15.0


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = (
            f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils "
            f"libasound2-plugins portaudio19-dev); the microphone tests need it"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@dataclass
class PulseMic:
    """A running private PulseAudio daemon with a null sink ``vmic`` as the default source."""

    runtime_dir: Path
    daemon: subprocess.Popen
    paplay: str
    sink: str = "vmic"
    players: list[subprocess.Popen] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.daemon.pid

    def play(self, wav_path: Path | str) -> subprocess.Popen:
        """Start playing a file into the sink (the test's "speaker"); reaped at teardown."""
        p = subprocess.Popen(
            [self.paplay, "-d", self.sink, str(wav_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.players.append(p)
        return p

    def kill(self) -> None:
        """Kill the daemon now (a device vanishing mid-stream)."""
        if self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait(timeout=10)

    def log(self) -> str:
        return (self.runtime_dir / "daemon.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def pulse_mic(tmp_path_factory):
    """Start a private PulseAudio daemon (a virtual microphone) for one test; always stop it."""
    pulseaudio, pactl, paplay = _need("pulseaudio"), _need("pactl"), _need("paplay")
    runtime = tmp_path_factory.mktemp("pulse")
    saved = {k: os.environ.get(k) for k in ("PULSE_RUNTIME_PATH", "PULSE_SERVER")}
    os.environ["PULSE_RUNTIME_PATH"] = str(runtime)
    os.environ["PULSE_SERVER"] = f"unix:{runtime}/native"
    log = open(runtime / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
    daemon = subprocess.Popen(
        [
            pulseaudio,
            "--daemonize=no",  # a child we own: its pid is ours to kill and reap
            "--exit-idle-time=-1",
            "-n",
            "--load=module-native-protocol-unix",
            "--load=module-null-sink sink_name=vmic",
            "--load=module-always-sink",
            "--log-target=stderr",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=os.environ.copy(),
    )
    mic = PulseMic(runtime_dir=runtime, daemon=daemon, paplay=paplay)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # bounded by READY_TIMEOUT_S
            if daemon.poll() is not None:
                pytest.fail(f"pulseaudio exited with {daemon.returncode}:\n{mic.log()}")
            ok = subprocess.run(
                [pactl, "info"], capture_output=True, timeout=5, check=False
            ).returncode
            if ok == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"pulseaudio not ready after {READY_TIMEOUT_S} s:\n{mic.log()}")
            time.sleep(0.05)  # polling a daemon's socket: there is no event to wait on
        subprocess.run(
            [pactl, "set-default-source", "vmic.monitor"],
            check=True,
            capture_output=True,
            timeout=5,
        )
        yield mic
    finally:
        for p in mic.players:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
