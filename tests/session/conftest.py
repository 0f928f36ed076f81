"""Session tests run real sessions over loopback against ``livetx serve`` (script engine)."""

from __future__ import annotations

import os
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from livetx_widgets.server import LocalServer

# A script with two utterances; times are on the audio clock of the stream.
SCRIPT = {
    "turns": [
        {"text": "Hello there, this is the first sentence.", "start": 0.3, "end": 2.2},
        {"text": "And here is the second one.", "start": 2.8, "end": 4.0},
    ]
}
SCRIPT_WORDS = " ".join(turn["text"] for turn in SCRIPT["turns"]).split()


def tone_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A quiet tone: the script engine ignores content, so any audio of the right length does."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.1 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


@pytest.fixture
def wav5(tmp_path: Path) -> Path:
    return tone_wav(tmp_path / "five.wav", 5.0)


@pytest.fixture
def server():
    with LocalServer(engine="script", script=SCRIPT, rate_limit=False) as srv:
        yield srv


class Helpers:
    """Small test helpers, handed out as the ``h`` fixture (importlib mode has no conftest
    imports)."""

    script = SCRIPT
    script_words = SCRIPT_WORDS
    tone_wav = staticmethod(tone_wav)

    @staticmethod
    def livetx_threads() -> list[threading.Thread]:
        names = ("livetx-sender", "livetx-receiver", "livetx-control")
        return [t for t in threading.enumerate() if t.name in names]

    @staticmethod
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    @staticmethod
    def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
        """Poll ``predicate`` (state owned by another thread or process) until it holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
