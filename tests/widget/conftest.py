"""Widget tests without a kernel: the widget's comm is a ``DummyComm``; a recorder replaces its
``publish_msg`` so tests see exactly what a front end would receive (JSON, as sent).

Sessions are real: ``provider="local", local_engine="script"`` starts an in-process
``livetx serve`` with the deterministic script engine on a loopback port.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets import LiveTranscriber

# Two sentences, final at ~2.7 s and ~4.3 s of audio, with speakers.
SCRIPT = support.TWO_TURNS
SCRIPT_TEXT = " ".join(turn["text"] for turn in SCRIPT["turns"])
SECRET = "sk-livetx-test-0123456789abcdef"


class Recorder:
    """Everything the kernel sends to the front end for one widget, serialized as sent."""

    def __init__(self, widget: LiveTranscriber) -> None:
        self.messages: list[tuple[float, str, dict]] = []  # (time, json text, data)
        self._lock = threading.Lock()
        widget.comm.publish_msg = self._publish  # type: ignore[method-assign]

    def _publish(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        text = json.dumps(data, default=str)
        with self._lock:
            self.messages.append((time.monotonic(), text, data))

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def all_text(self) -> str:
        with self._lock:
            return "\n".join(text for _, text, _ in self.messages)

    def updates(self) -> list[tuple[float, str, dict]]:
        with self._lock:
            return [m for m in self.messages if m[2].get("method") == "update"]

    def custom(self, kind: str) -> list[dict]:
        with self._lock:
            return [
                m[2]["content"]
                for m in self.messages
                if m[2].get("method") == "custom" and m[2]["content"].get("type") == kind
            ]


class Helpers:
    """The shared helpers (``tests/support.py``) with this area's script and recorder."""

    script = SCRIPT
    script_text = SCRIPT_TEXT
    secret = SECRET
    TIMING = support.TIMING
    Recorder = Recorder
    tone_wav = staticmethod(support.tone_wav)
    livetx_threads = staticmethod(support.livetx_threads)

    @staticmethod
    def wait_until(
        predicate, timeout: float = 10.0 * support.TIMING, interval: float = 0.01
    ) -> bool:
        """``support.wait_until`` with this area's longer default (a widget flushes late)."""
        return support.wait_until(predicate, timeout, interval)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers


@pytest.fixture
def no_keys(monkeypatch):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)


@pytest.fixture
def wav5(tmp_path: Path) -> Path:
    return support.tone_wav(tmp_path / "five.wav", 5.0)


@pytest.fixture
def make_widget(no_keys):
    """Build widgets (with a recorder attached as ``w.rec``); close them all at the end."""
    made: list[LiveTranscriber] = []

    def make(**kwargs) -> LiveTranscriber:
        widget = LiveTranscriber(**kwargs)
        widget.rec = Recorder(widget)
        made.append(widget)
        return widget

    yield make
    for widget in made:
        widget.close()


@pytest.fixture
def script_widget(make_widget, wav5):
    """A widget on the offline script engine that plays a 5 s file as fast as possible."""

    def make(**kwargs) -> LiveTranscriber:
        options = {
            "provider": "local",
            "source": wav5,
            "realtime": False,
            "local_engine": "script",
            "local_options": {"script": SCRIPT},
            "options": {"diarize": True},  # speaker labels
        }
        options.update(kwargs)
        return make_widget(**options)

    return make
