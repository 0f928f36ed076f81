"""Both notebooks, top to bottom, in a real kernel (ipykernel 7 and 6), against the offline
engine: the deterministic script engine (fast, exact assertions) and Whisper (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livetx_widgets.server import LocalServer

pytestmark = pytest.mark.slow  # a Jupyter kernel per test, 1.5-4 s each

BOTH_KERNELS = pytest.mark.parametrize("kernel", ["7", "6"], indirect=True)
SCRIPT_TEXTS = [
    "Do you hear me?",
    "Yes.",
    "Do you hear me?",
    "Yes.",
    "We laugh less heartily, so we have still that resource.",
]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _widget_states(saved) -> list[dict]:
    data = json.loads(saved.read_text())
    states = data["metadata"]["widgets"][WIDGET_STATE]["state"]
    return [s["state"] for s in states.values() if s["model_name"] == "AnyModel"]


def _check_common(result, major: str) -> None:
    summary = result.summary
    assert summary["ipykernel"].split(".")[0] == major
    assert summary["status"] == "stopped" and summary["error"] == ""
    assert summary["threads"] == []  # every session and flusher thread was joined
    # Nothing printed from a worker thread landed in the cell that started the session.
    assert result.outputs("w.start()") == [] or all(
        o["output_type"] != "stream" for o in result.outputs("w.start()")
    )


@BOTH_KERNELS
def test_quickstart_with_the_script_engine(run_notebook, kernel, script_env):
    major, name = kernel
    result = run_notebook("quickstart", name, script_env)
    _check_common(result, major)
    summary = result.summary
    assert [r["text"] for r in summary["rows"]] == SCRIPT_TEXTS
    assert summary["text"] == " ".join(SCRIPT_TEXTS)
    assert {"start", "end", "text", "confidence", "speaker", "session_id"} <= set(
        summary["columns"]
    )
    # The DataFrame cell showed the table; the widget state saved in the notebook is small
    # (no transcript in it) and says how the session ended.
    table = result.outputs("df = w.to_dataframe()")[0]["data"]
    assert "text/html" in table and "We laugh less heartily" in table["text/html"]
    (state,) = _widget_states(result.saved)
    assert state["status"] == "stopped" and state["n_finals"] == 5
    assert "We laugh" not in json.dumps(state)  # finals travel as messages, not state


@BOTH_KERNELS
def test_analysis_with_the_script_engine(run_notebook, kernel, script_env, tmp_path):
    major, name = kernel
    extra = """_livetx_extra = {
    "turns": turns[["speaker", "words"]].astype(str).to_dict("records"),
    "talk_time": {str(k): float(v) for k, v in talk_time.items()},
    "wpm_total": float(wpm["wpm"].sum()),
    "overall_wpm": overall_wpm,
    "window": window,
}"""
    result = run_notebook("analysis", name, script_env, after={"lanes = sorted": extra})
    _check_common(result, major)
    summary, extra_values = result.summary, result.summary["extra"]
    assert [r["text"] for r in summary["rows"]] == SCRIPT_TEXTS
    assert [r["speaker"] for r in summary["rows"]] == ["0", "1", "0", "1", "0"]
    # Speaker turns: five alternating turns; speaker 0 speaks the long sentence.
    assert [t["speaker"] for t in extra_values["turns"]] == ["0", "1", "0", "1", "0"]
    assert [int(t["words"]) for t in extra_values["turns"]] == [4, 1, 4, 1, 10]
    assert extra_values["talk_time"]["0"] > extra_values["talk_time"]["1"] > 0
    # Words per minute: 20 words in 10 s of speech; the windows count every word once.
    assert extra_values["overall_wpm"] == pytest.approx(20 * 60 / 10.0)
    assert extra_values["wpm_total"] * extra_values["window"] / 60 == pytest.approx(20)
    # The timeline plot was drawn.
    plot = result.outputs("lanes = sorted")
    assert any("image/png" in o.get("data", {}) for o in plot)
    # Subtitles were written.
    out = tmp_path / "out"
    srt = (out / "transcript.srt").read_text()
    vtt = (out / "transcript.vtt").read_text()
    assert srt.count(" --> ") == 5 and "We laugh less heartily" in srt
    assert vtt.startswith("WEBVTT") and "<v Speaker 1>Yes." in vtt


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["7"], indirect=True)
@pytest.mark.parametrize("notebook", ["quickstart", "analysis"])
def test_notebooks_with_the_whisper_engine(run_notebook, kernel, notebook, short_wav, tmp_path):
    major, name = kernel
    env = {
        "LIVETX_PROVIDER": "local",
        "LIVETX_ENGINE": "whisper",
        "LIVETX_AUDIO": str(short_wav),
        "LIVETX_REALTIME": "0",
        "LIVETX_OUT": str(tmp_path / "out"),
    }
    result = run_notebook(notebook, name, env, timeout=300)
    _check_common(result, major)
    text = result.summary["text"].lower()
    assert "america" in text and "very well" in text  # "I do. I think that America do it..."
    assert result.summary["n_finals"] >= 1


@pytest.mark.parametrize("via", ["environment", "password field"])
def test_saved_notebook_holds_no_key(run_notebook, kernels, script_env, tmp_path, via,
                                     monkeypatch):  # fmt: skip
    secret = "dg-secret-key-livetx-5f2e9a7c0b"
    script = json.loads(Path(script_env["LIVETX_SCRIPT"]).read_text())
    with LocalServer(engine="script", script=script, api_key=secret, rate_limit=False) as srv:
        env = {**script_env, "LIVETX_PROVIDER": "deepgram", "LIVETX_URL": srv.url}
        after = {}
        if via == "environment":
            env["DEEPGRAM_API_KEY"] = secret
        else:
            monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
            # What the widget's password field sends; the key is read from an environment
            # variable that the cell then removes, so the cell's source holds no key either.
            env["LIVETX_TEST_KEY"] = secret
            after["w = LiveTranscriber("] = (
                "import os as _os\n"
                "w._on_front_end_msg(w, {'type': 'key', 'value': _os.environ.pop("
                "'LIVETX_TEST_KEY')}, [])"
            )
        result = run_notebook("quickstart", kernels["7"], env, after=after)
        assert [r.authorized for r in srv.sessions] == [True]  # the key was really used
    assert result.summary["text"] == " ".join(SCRIPT_TEXTS)
    saved = result.saved.read_text()
    assert secret not in saved
    assert secret[:12] not in saved
    (state,) = _widget_states(result.saved)
    assert state["needs_key"] is False and state["provider"] == "deepgram"
