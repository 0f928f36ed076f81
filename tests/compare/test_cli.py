"""``livetx compare`` in-process against LocalServer: the table, --json, --aligned, exit codes."""

from __future__ import annotations

import json
import wave

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets.cli import main
from livetx_widgets.server import LocalServer

TEXT = "Hello there, this is the first sentence. And here is the second one."


@pytest.fixture
def wav(tmp_path, turns_audio):
    return support.write_wav(tmp_path / "two.wav", turns_audio)


@pytest.fixture
def server():
    with LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False,
                     api_key="right-key") as srv:  # fmt: skip
        yield srv


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("DEEPGRAM_API_KEY", "right-key")
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "right-key")
    return monkeypatch


def _compare(*args: str) -> list[str]:
    return ["compare", *args, "--fast", "--stop-timeout", str(5 * support.TIMING)]


@pytest.mark.parametrize(
    "second",
    ["deepgram", pytest.param("assemblyai", marks=pytest.mark.slow)],  # paced: ~5 s
)
def test_json_summary_with_reference_and_aligned(server, wav, tmp_path, keys, capsys, second):
    ref = tmp_path / "ref.txt"
    ref.write_text("hello there this is the first sentence and here is the second one")
    code = main(_compare("--file", str(wav), "--providers", f"deepgram,{second},deepgram",
                         "--url", server.url, "--reference", str(ref), "--json",
                         "--aligned"))  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    rows = {r["provider"]: r for r in data["summary"]}
    assert list(rows) == (
        ["deepgram", "deepgram-2", "deepgram-3"] if second == "deepgram"
        else ["deepgram", "assemblyai", "deepgram-2"]
    )  # fmt: skip
    for row in rows.values():
        assert row["wer"] == 0.0 and row["finals"] == 2 and row["words"] == 13
        assert row["error"] == ""
    assert set(data["transcripts"].values()) == {TEXT}
    assert [r["deepgram"] for r in data["aligned"]] == [
        "Hello there, this is the first sentence.", "And here is the second one."
    ]  # fmt: skip
    assert data["speech"] == [[0.3, 2.2], [2.8, 4.0]]


def test_table_and_finals_as_they_come(server, wav, keys, capsys, tmp_path, turns_audio):
    record = tmp_path / "sent.wav"
    code = main(_compare("--file", str(wav), "--providers", "deepgram,deepgram",
                         "--url", server.url, "--aligned", "--record", str(record)))  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["provider", "model", "wer", "first_partial_s"]
    assert lines[1].split()[0] == "deepgram" and lines[2].split()[0] == "deepgram-2"
    assert "And here is the second one." in captured.out  # the aligned table
    assert "[deepgram] [00:02.2] And here is the second one." in captured.err
    # --record: one recording per provider, each exactly the file's audio.
    for label in ("deepgram", "deepgram-2"):
        with wave.open(str(tmp_path / f"sent-{label}.wav"), "rb") as w:
            sent = w.readframes(w.getnframes())
        assert sent[: turns_audio.nbytes] == turns_audio.tobytes()


def test_a_refused_key_exits_3_and_still_prints_the_others(server, wav, keys, capsys):
    keys.setenv("ASSEMBLYAI_API_KEY", "wrong-key")
    code = main(_compare("--file", str(wav), "--providers", "deepgram,assemblyai",
                         "--url", server.url, "--json"))  # fmt: skip
    captured = capsys.readouterr()
    assert code == 3
    rows = {r["provider"]: r for r in json.loads(captured.out)["summary"]}
    assert rows["deepgram"]["finals"] == 2 and rows["deepgram"]["error"] == ""
    assert rows["assemblyai"]["error"].startswith("AuthenticationError")
    assert "error: assemblyai:" in captured.err
    assert "wrong-key" not in captured.out + captured.err


def test_bad_arguments_exit_2(wav, tmp_path, keys, capsys):
    assert main(_compare("--file", str(wav), "--providers", "deepgramm")) == 2
    assert "did you mean 'deepgram'" in capsys.readouterr().err
    missing = tmp_path / "nope.txt"
    assert main(_compare("--file", str(wav), "--providers", "deepgram",
                         "--reference", str(missing))) == 2  # fmt: skip
    assert main(_compare("--file", str(tmp_path / "nope.wav"), "--providers", "deepgram")) == 2


def test_an_unreachable_server_exits_4(wav, keys, capsys):
    with LocalServer(engine="script") as srv:
        url = srv.url  # a port that was just free: nothing listens there once closed
    code = main(_compare("--file", str(wav), "--providers", "deepgram", "--url", url,
                         "--max-reconnects", "0", "--connect-timeout", "2"))  # fmt: skip
    assert code == 4
    assert "error: deepgram:" in capsys.readouterr().err
