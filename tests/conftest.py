"""Fixtures every test area shares: where the shared recordings and protocol notes live, the
shared helpers (``tests/support.py``), a virtual microphone and a peer that never answers."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
SUPPORT_MODULE = "livetx_test_support"


def _load_support():
    """``tests/support.py`` as ``livetx_test_support`` in ``sys.modules``.

    Under ``--import-mode=importlib`` nothing below ``tests/`` is importable by its path, and
    a conftest cannot be imported at all. This conftest is imported before every other one and
    before any test module, so it loads the module once and they all ``import
    livetx_test_support as support``.
    """
    if SUPPORT_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            SUPPORT_MODULE, Path(__file__).with_name("support.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[SUPPORT_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[SUPPORT_MODULE]


_support = _load_support()


def pytest_configure(config: pytest.Config) -> None:
    # The fast lane (``-m "not slow and not ui"``) runs fewer Hypothesis examples:
    # support.examples(); the full suite runs them all.
    _support.FAST_LANE = "not slow" in (config.getoption("markexpr") or "")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared material not found at {SHARED}; set LIVETX_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def short_wav(shared_dir: Path) -> Path:
    """4.1 s, one speaker: "I do. I think that America do it very well." (approximate)."""
    return shared_dir / "audio" / "short-16k.wav"


@pytest.fixture(scope="session")
def dialogue_wav(shared_dir: Path) -> Path:
    """28.3 s, two voices with pauses between turns."""
    return shared_dir / "audio" / "dialogue-16k.wav"


# -- a real virtual microphone ----------------------------------------------------------------

READY_TIMEOUT_S = 15.0 * _support.TIMING


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


@pytest.fixture
def silent_peer():
    """A loopback TCP listener that accepts connections and never answers the WebSocket
    upgrade: ``(url, accepted_sockets)``. Everything is closed and joined at the end."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, name="test-silent-peer")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        done.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()
