"""Helpers for the server tests: a raw WebSocket client (websockets' sync client, never the
package's own session code), a ``CoreDriver`` that runs a protocol core without sockets, audio
makers and a standard script with known timings.

Tests reach the helpers through the ``h`` fixture (this module), because test modules cannot
import a conftest under ``--import-mode=importlib``.

Every wait is bounded by ``TIMEOUT`` (a single network round trip or a short protocol timer
must finish well within it); shortened protocol timers use ``SHORT``.
"""

from __future__ import annotations

import json
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from livetx_widgets.server import (
    Faults,
    LocalServer,
    ScriptEngine,
    ServerOptions,
    assemblyai_protocol,
    deepgram_protocol,
)
from livetx_widgets.server.app import CORES
from livetx_widgets.server.context import ConnectionContext
from livetx_widgets.server.core import Close, Drop, Send
from livetx_widgets.server.engine import Engine
from livetx_widgets.server.records import SessionLog, SessionRecord

#: Upper bound of any single wait in these tests (seconds, scaled by the timing unit).
TIMEOUT = 5.0 * support.TIMING
#: Shortened protocol timers (Deepgram idle timeout, fault timers) in these tests.
SHORT = 0.3
RATE = 16000

#: Two utterances, 1.5 s apart. With the default 0.5 s endpoint, "Hello world." is final once
#: the audio clock reaches 1.4 s and "Second turn." at 3.5 s.
SCRIPT = {
    "words": [
        {"text": "Hello", "start": 0.2, "end": 0.5, "confidence": 0.9},
        {"text": "world.", "start": 0.5, "end": 0.9, "confidence": 0.8},
        {"text": "Second", "start": 2.4, "end": 2.7, "speaker": 1},
        {"text": "turn.", "start": 2.7, "end": 3.0, "speaker": 1},
    ]
}


def silence(seconds: float, rate: int = RATE) -> bytes:
    """s16le mono zeros (the script engine only counts bytes)."""
    return b"\0\0" * round(seconds * rate)


def chunks(pcm: bytes, ms: int = 50, rate: int = RATE, width: int = 2) -> list[bytes]:
    size = rate * width * ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


#: Shared helpers, reachable as ``h.wait_until``, ``h.livetx_threads``... (``tests/support.py``).
wait_until = support.wait_until
livetx_threads = support.livetx_threads
TIMING = support.TIMING


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.readframes(w.getnframes())


def url(srv: LocalServer, path: str, **params) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return f"{srv.url}{path}" + (f"?{query}" if query else "")


def dg_url(srv: LocalServer, **params) -> str:
    defaults = {"model": "nova-3", "encoding": "linear16", "sample_rate": RATE}
    return url(srv, "/v1/listen", **{**defaults, **params})


def aai_url(srv: LocalServer, **params) -> str:
    defaults = {"sample_rate": RATE, "speech_model": "u3-rt-pro"}
    return url(srv, "/v3/ws", **{**defaults, **params})


def open_ws(address: str, key: str | None = "test-key", scheme: str | None = "Token",
            **kwargs) -> ClientConnection:  # fmt: skip
    """Connect with ``Authorization: <scheme> <key>`` (``scheme=None``: the raw key)."""
    headers = dict(kwargs.pop("additional_headers", {}))
    if key is not None:
        headers["Authorization"] = f"{scheme} {key}" if scheme else key
    return connect(address, additional_headers=headers, open_timeout=TIMEOUT,
                   close_timeout=TIMEOUT, **kwargs)  # fmt: skip


def send_all(ws: ClientConnection, frames) -> int:
    """Send frames until done or until the server has closed; return how many were sent."""
    sent = 0
    for frame in frames:
        try:
            ws.send(frame)
        except ConnectionClosed:
            break
        sent += 1
    return sent


def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def drain(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[list[dict], int | None, str]:
    """Read until the server closes: ``(messages, close code, close reason)``. The code is
    ``None`` when the connection ended without a close frame from the server."""
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            messages.append(json.loads(ws.recv(timeout=remaining)))
        except ConnectionClosed as exc:
            received = exc.rcvd
            return (
                messages,
                (received.code if received else None),
                (received.reason if received else ""),
            )
        except TimeoutError:
            break
    raise AssertionError(f"server did not close within {timeout} s; got {messages}")


def until(ws: ClientConnection, predicate: Callable[[dict], bool],
          timeout: float = TIMEOUT) -> list[dict]:  # fmt: skip
    """Read messages up to and including the first one matching ``predicate``."""
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        message = recv_json(ws, max(0.0, deadline - time.monotonic()))
        messages.append(message)
        if predicate(message):
            return messages
    raise AssertionError("too many messages")


def of_type(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m.get("type") == kind]


def assert_still_open(ws: ClientConnection, wait: float = SHORT) -> None:
    """Nothing arrives within ``wait`` seconds and the connection is not closed."""
    with pytest.raises(TimeoutError):
        ws.recv(timeout=wait)


# ------------------------------------------------------------------ cores, no sockets
#: The wall clock a ``CoreDriver`` session starts at (2025-01-01T00:00:00Z).
UNIX_START = 1_735_689_600.0
DG_DEFAULTS = {"model": "nova-3", "encoding": "linear16", "sample_rate": str(RATE)}
AAI_DEFAULTS = {"sample_rate": str(RATE), "speech_model": "u3-rt-pro"}


class CoreDriver:
    """One protocol core driven the way ``SessionShell`` drives it, without sockets or threads.

    Engine calls run inline; the clock is ``now`` and moves only through ``advance`` (which
    ticks at every deadline on the way, in order) or ``stream(..., paced=True)``. ``actions``
    holds everything the core asked for, in order; ``messages`` the JSON of its ``Send``s.
    """

    def __init__(self, protocol: str, *, engine: Engine | None = None, script=SCRIPT,
                 faults: Faults | None = None, authorized: bool = True, auth_error: str = "",
                 headers: dict | None = None, options: dict | None = None,
                 **params) -> None:  # fmt: skip
        defaults = DG_DEFAULTS if protocol == "deepgram" else AAI_DEFAULTS
        query = {**defaults, **params}
        pairs = [(k, str(v)) for k, v in query.items() if v is not None]
        module = deepgram_protocol if protocol == "deepgram" else assemblyai_protocol
        self.log = SessionLog()
        self.ctx = ConnectionContext(
            index=1,
            protocol=protocol,
            log=self.log,
            pos=self.log.open(index=1, protocol=protocol, path="", query={}, headers={}),
            engine=engine or ScriptEngine(script),
            executor=None,  # engine calls run inline here
            options=ServerOptions(**(options or {})),
            faults=faults or Faults(),
            params=module.parse_query(pairs),
            request_id="req-1",
            authorized=authorized,
            auth_error=auth_error,
            headers=headers or {},
        )
        self.core = CORES[protocol](self.ctx)
        self.now = 0.0
        self.actions: list = []
        self.core.start(self.now, UNIX_START)
        self._run()

    # inputs
    def audio(self, data: bytes) -> CoreDriver:
        self.core.receive_audio(data, self.now)
        return self._run()

    def text(self, message) -> CoreDriver:
        text = message if isinstance(message, str) else json.dumps(message)
        self.core.receive_text(text, self.now)
        return self._run()

    def stream(self, seconds: float, chunk_ms: int = 100, *, paced: bool = False) -> CoreDriver:
        """``seconds`` of silence in ``chunk_ms`` frames; ``paced``: at real time."""
        for chunk in chunks(silence(seconds), chunk_ms):
            self.audio(chunk)
            if paced:
                self.advance(chunk_ms / 1000)
        return self

    def advance(self, seconds: float) -> CoreDriver:
        """Let ``seconds`` pass, ticking at each deadline that falls within them."""
        target = self.now + seconds
        for _ in range(1000):  # each pass consumes one deadline
            due = self.core.next_deadline()
            if due is None or due > target:
                break
            self.now = max(self.now, due)
            self.core.tick(self.now)
            self._run()
        self.now = target
        return self

    def _run(self) -> CoreDriver:
        call = self.core.step(self.now)
        for _ in range(100_000):  # each pass is one engine call
            self.actions += self.core.take_actions()
            if call is None:
                return self
            call = self.core.step(self.now, call.run())
        raise AssertionError("the core never ran out of engine calls")

    # outputs
    @property
    def texts(self) -> list[str]:
        return [a.text for a in self.actions if isinstance(a, Send)]

    @property
    def messages(self) -> list[dict]:
        """The JSON messages sent (frames that do not parse are left out)."""
        out = []
        for text in self.texts:
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return out

    @property
    def kinds(self) -> list[str]:
        return [m.get("type") for m in self.messages]

    @property
    def closed(self) -> Close | None:
        """The close the core asked for (``None`` if none)."""
        closes = [a for a in self.actions if isinstance(a, Close)]
        assert len(closes) <= 1, closes
        return closes[0] if closes else None

    @property
    def dropped(self) -> bool:
        return any(isinstance(a, Drop) for a in self.actions)

    @property
    def record(self) -> SessionRecord:
        return self.log.snapshot()[0]

    def take(self) -> list[dict]:
        """The messages sent since the last ``take`` (and forget them)."""
        messages = self.messages
        self.actions = [a for a in self.actions if not isinstance(a, Send)]
        return messages


def core(protocol: str, **kwargs) -> CoreDriver:
    return CoreDriver(protocol, **kwargs)


@pytest.fixture
def server_factory():
    """``server_factory(**LocalServer kwargs)`` starts a server that is closed after the test."""
    servers: list[LocalServer] = []

    def make(**kwargs) -> LocalServer:
        kwargs.setdefault("script", SCRIPT)
        srv = LocalServer(**kwargs).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


@pytest.fixture
def server(server_factory) -> LocalServer:
    """The script engine with ``SCRIPT``, any key accepted, a short Deepgram idle timeout."""
    return server_factory(idle_timeout_s=TIMEOUT)


@pytest.fixture
def h():
    """This module: ``h.dg_url(...)``, ``h.drain(ws)``, ``h.SCRIPT``, ``h.TIMEOUT``..."""
    return sys.modules[__name__]
