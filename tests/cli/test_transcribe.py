"""``livetx transcribe`` against ``livetx serve`` (script engine), in-process and as a program."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets.cli import main
from livetx_widgets.server import LocalServer
from livetx_widgets.transcript import Transcript

SCRIPT = {
    "turns": [
        {"text": "First sentence here.", "start": 0.3, "end": 1.5},
        {"text": "And a second one.", "start": 2.0, "end": 3.2},
    ]
}
LIVETX = [sys.executable, "-m", "livetx_widgets.cli"]


@pytest.fixture
def server():
    with LocalServer(engine="script", script=SCRIPT, rate_limit=False) as srv:
        yield srv


@pytest.mark.parametrize(
    "provider",
    ["deepgram", pytest.param("assemblyai", marks=pytest.mark.slow)],  # paced: ~4 s
)
def test_prints_finals_as_plain_lines_when_not_a_tty(provider, server, short_wav, capsys):
    args = ["--provider", provider, "--url", server.url, "--file", str(short_wav)]
    code = main(["transcribe", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == ["[00:00.3] First sentence here.", "[00:02.0] And a second one."]
    assert f"provider={provider}" in err and "terminal_message=True" in err


def test_json_mode_prints_one_event_per_line(server, short_wav, capsys):
    code = main(["transcribe", "--provider", "deepgram", "--url", server.url,
                 "--file", str(short_wav), "--json"])  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    types = [r["type"] for r in records]
    assert "PartialTranscript" in types and types[-1] == "Metadata"
    finals = [r["text"] for r in records if r["type"] == "FinalTranscript" and r["text"]]
    assert finals == ["First sentence here.", "And a second one."]
    assert records[-1]["terminal_message"] is True


@pytest.mark.parametrize("suffix", [".json", ".srt", ".vtt", ".csv", ".txt"])
def test_out_saves_the_transcript(suffix, server, short_wav, tmp_path, capsys):
    out_file = tmp_path / f"t{suffix}"
    # Deepgram for every format: the export does not depend on the provider, and AssemblyAI's
    # pacing (4 s here) is the slow parametrization of the test above (the fault matrix's
    # ``-cli`` cells run AssemblyAI through ``livetx transcribe`` in the fast lane)
    code = main(["transcribe", "--provider", "deepgram", "--url", server.url,
                 "--file", str(short_wav), "--out", str(out_file)])  # fmt: skip
    assert code == 0
    text = out_file.read_text()
    assert "First sentence here." in text and "And a second one." in text
    if suffix == ".json":
        assert Transcript.from_json(text).text == "First sentence here. And a second one."


def test_options_are_passed_and_typed(server, short_wav, capsys):
    code = main(["transcribe", "--provider", "deepgram", "--url", server.url, "--file",
                 str(short_wav), "-o", "diarize=true", "-o", "keyterm=foo", "-o", "keyterm=bar",
                 "-o", "endpointing=300"])  # fmt: skip
    assert code == 0
    query = server.sessions[0].query
    assert query["diarize"] == ["true"]
    assert query["keyterm"] == ["foo", "bar"]
    assert query["endpointing"] == ["300"]


def test_exit_codes_tell_errors_apart(short_wav, tmp_path, monkeypatch, capsys):
    with LocalServer(engine="script", api_key="right", rate_limit=False) as srv:
        url = srv.url
        monkeypatch.setenv("DEEPGRAM_API_KEY", "wrong-key")
        assert main(["transcribe", "--provider", "deepgram", "--url", url,
                     "--file", str(short_wav)]) == 3  # fmt: skip
    _, err = capsys.readouterr()
    assert "wrong-key" not in err
    # The server is gone: nothing listens on that port any more.
    assert main(["transcribe", "--provider", "deepgram", "--url", url,
                 "--file", str(short_wav)]) == 4  # fmt: skip
    assert main(["transcribe", "--provider", "deepgram", "--url", url,
                 "--file", str(tmp_path / "missing.wav")]) == 2  # fmt: skip
    assert main(["transcribe", "--provider", "deepgram", "--url", url, "--file",
                 str(short_wav), "-o", "interim_result=true"]) == 2  # fmt: skip
    _, err = capsys.readouterr()
    assert "interim_results" in err  # the closest valid name
    with pytest.raises(SystemExit) as exc:
        main(["transcribe", "--provider", "nope"])
    assert exc.value.code == 2


def test_missing_microphone_is_exit_code_5(monkeypatch, capsys, tmp_path):
    # No PulseAudio daemon is reachable at this path: PortAudio finds no such input device.
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/none")
    code = main(["transcribe", "--provider", "local", "--mic", "--device", "no-such-mic"])
    _, err = capsys.readouterr()
    assert code == 5, err
    assert "audio input device" in err and 'source="browser"' in err


@pytest.mark.slow  # ~2.5 s of real-time audio
def test_ctrl_c_stops_gracefully_and_prints_everything(short_wav, tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    with LocalServer(engine="script", script=SCRIPT, rate_limit=False) as srv:
        proc = subprocess.Popen(
            [*LIVETX, "transcribe", "--provider", "deepgram", "--url", srv.url,
             "--file", str(short_wav), "--realtime"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            first = proc.stdout.readline()  # blocks until the first final (~1.5 s of audio)
            assert first.strip() == "[00:00.3] First sentence here."
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "-- session:" in err and "terminal_message=True" in err
    assert srv.sessions[0].control_types[-1] == "CloseStream"


def test_livetx_console_script_is_installed():
    exe = Path(sys.executable).parent / "livetx"
    started = time.monotonic()
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "transcribe" in out.stdout and "serve" in out.stdout
    assert time.monotonic() - started < 30 * support.TIMING


def test_on_a_tty_partials_rewrite_one_line_and_finals_stay(short_wav):
    """On a terminal, each partial rewrites the current line; a final replaces it for good."""
    import pty
    import select

    with LocalServer(engine="script", script=SCRIPT, rate_limit=False) as srv:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [*LIVETX, "transcribe", "--provider", "deepgram", "--url", srv.url,
             "--file", str(short_wav)],
            stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(follower)
        output = b""
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:  # bounded: ends at EOF or the deadline
                ready, _, _ = select.select([leader], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(leader, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            proc.wait(timeout=15)
        finally:
            os.close(leader)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0
    text = output.decode()
    assert "\r\x1b[KFirst sentence" in text  # a partial rewriting the line
    # What the terminal ends up showing, line by line (the pty turns "\n" into "\r\n").
    lines = [part.strip() for part in text.replace("\x1b[K", "").replace("\r", "\n").split("\n")]
    assert "[00:00.3] First sentence here." in lines
    assert "[00:02.0] And a second one." in lines


@pytest.mark.slow
def test_demo_transcribes_the_bundled_recording_offline(capsys):
    from livetx_widgets.server.wer import wer

    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert wer("I do. I think that America do it very well.", out.split("] ", 1)[-1]) < 0.35
    assert "provider=local" in err and "whisper tiny.en (offline)" in err
