"""``livetx serve`` as a program: prints its URL, serves both protocols, exits 0 on SIGINT and
SIGTERM; flags reach the server; bad arguments give clear errors."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from livetx_widgets.cli import main

LIVETX = Path(sys.executable).with_name("livetx")


class Served:
    """A ``livetx serve`` subprocess whose stdout lines are read by a thread (bounded waits)."""

    def __init__(self, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen(
            [str(LIVETX), "serve", "--engine", "script", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def url(self, timeout: float) -> str:
        line = self.lines.get(timeout=timeout)
        found = re.fullmatch(r"listening on (ws://127\.0\.0\.1:\d+)\n", line)
        assert found, line
        return found[1]

    def stop(self, sig: int, timeout: float) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout)
            self.reader.join(timeout)
        return self.proc.returncode, err


class FakeSrv:
    def __init__(self, url: str):
        self.url = url


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_serves_and_exits_cleanly_on_signals(h, sig):
    served = Served()
    try:
        srv = FakeSrv(served.url(timeout=20))
        with h.open_ws(h.dg_url(srv, punctuate="true")) as ws:
            ws.send(h.silence(3.2))
            ws.send(json.dumps({"type": "CloseStream"}))
            messages, code, _ = h.drain(ws)
        assert code == 1000
        assert messages[0]["channel"]["alternatives"][0]["transcript"] == (
            "Hello from the livetx script engine."
        )
        with h.open_ws(h.aai_url(srv), scheme=None) as ws:
            assert h.recv_json(ws)["type"] == "Begin"
    finally:
        returncode, err = served.stop(sig, timeout=h.TIMEOUT)
    assert returncode == 0, err
    assert "Traceback" not in err


def test_flags_reach_the_server(tmp_path, h):
    script = tmp_path / "script.yaml"
    script.write_text("text: Flags work.\n")
    served = Served(
        "--script", str(script), "--close-after-frames", "3", "--close-code", "4001",
        "--close-reason", "bye", "--fault-connections", "1", "--idle-timeout", "0.3",
        env={"LIVETX_SERVE_API_KEY": "sekret"},
    )  # fmt: skip
    try:
        srv = FakeSrv(served.url(timeout=20))
        with h.open_ws(h.dg_url(srv), key="sekret") as ws:  # connection 1: faulty
            for chunk in h.chunks(h.silence(0.3), 100):
                ws.send(chunk)
            assert h.drain(ws)[1:] == (4001, "bye")
        with pytest.raises(InvalidStatus):  # the key from the environment is enforced
            h.open_ws(h.dg_url(srv), key="wrong")
        with h.open_ws(h.dg_url(srv, punctuate="true"), key="sekret") as ws:  # fault-free
            ws.send(h.silence(1.5))
            ws.send(b"")
            messages, _code, _ = h.drain(ws)
        assert messages[0]["channel"]["alternatives"][0]["transcript"] == "Flags work."
        with h.open_ws(h.dg_url(srv), key="sekret") as ws:  # --idle-timeout 0.3
            assert h.drain(ws)[1:] == (1011, "NET-0001")
    finally:
        returncode, err = served.stop(signal.SIGTERM, timeout=h.TIMEOUT)
    assert returncode == 0, err
    assert "sekret" not in err


def test_bad_arguments_give_clear_errors(capsys, tmp_path):
    assert main(["serve", "--engine", "script", "--script", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["serve", "--engine", "vosk"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["serve", "--close-after-frames", "many"])
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_bad_fault_values_are_reported(capsys):
    assert main(["serve", "--engine", "script", "--close-code", "1006"]) == 2
    assert "close_code" in capsys.readouterr().err
