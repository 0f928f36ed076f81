"""``notebooks/compare.ipynb`` top to bottom in a real kernel, against two ``livetx serve``
instances (LocalServer) that play different engines or engine settings behind the Deepgram
and the AssemblyAI protocols: two scripts (fast, exact), and script against Whisper (slow)."""

from __future__ import annotations

import copy
import json

import pytest

from livetx_widgets.server import LocalServer

pytestmark = pytest.mark.slow  # a Jupyter kernel per test



@pytest.fixture
def scripts(dialogue_script) -> tuple[dict, dict, str]:
    """The dialogue's script, one that mishears two words ("hear" -> "here"), the text."""
    exact = json.loads(dialogue_script.read_text())
    misheard = copy.deepcopy(exact)
    misheard["turns"][0]["text"] = misheard["turns"][2]["text"] = "Do you here me?"
    return exact, misheard, " ".join(t["text"] for t in exact["turns"])


SUMMARY = """
import json as _json, threading as _threading, ipykernel as _ipk
print("LIVETX-RESULT " + _json.dumps({
    "ipykernel": _ipk.__version__,
    "status": cmp.status,
    "error": cmp.error,
    "labels": cmp.labels,
    "columns": cmp.columns,
    "summary": _json.loads(summary.to_json(orient="records")),
    "aligned": _json.loads(aligned.to_json(orient="records")),
    "texts": {k: t.text for k, t in cmp.transcripts.items()},
    "clip_bytes": len(clip.data),
    "clip_expected": 44 + 2 * (round(float(first["end"]) * 16000)
                               - round(float(first["start"]) * 16000)),
    "threads": [t.name for t in _threading.enumerate() if t.name.startswith("livetx-")],
}, default=str))
"""


def _env(tmp_path, dialogue_wav, a: LocalServer, b: LocalServer, labels,
         text: str) -> dict[str, str]:  # fmt: skip
    reference = tmp_path / "reference.txt"
    reference.write_text(text)
    return {
        "LIVETX_AUDIO": str(dialogue_wav),
        "LIVETX_REFERENCE": str(reference),
        "LIVETX_REALTIME": "0",
        "LIVETX_DEEPGRAM_URL": a.url,
        "LIVETX_DEEPGRAM_LABEL": labels[0],
        "LIVETX_ASSEMBLYAI_URL": b.url,
        "LIVETX_ASSEMBLYAI_LABEL": labels[1],
        "LIVETX_NO_LOCAL": "1",
    }


def _check_common(result, labels) -> dict:
    s = result.summary
    assert s["status"] == "stopped" and s["error"] == ""
    assert s["threads"] == []  # every session and the flusher were joined
    assert s["labels"] == labels
    assert [c["status"] for c in s["columns"]] == ["stopped", "stopped"]
    rows = {r["provider"]: r for r in s["summary"]}
    assert list(rows) == labels
    for row in rows.values():
        assert row["error"] == "" and row["finals"] >= 1
        assert row["first_partial_s"] is not None and row["final_p50_s"] is not None
    # The plot and the playback cell produced output; the clip is exactly that span.
    plot = result.outputs("import matplotlib")
    assert any("image/png" in o.get("data", {}) for o in plot)
    player = result.outputs("first = aligned.iloc[0]")
    assert any("<audio" in o.get("data", {}).get("text/html", "") for o in player)
    assert s["clip_bytes"] == s["clip_expected"]
    return rows


@pytest.mark.parametrize("kernel", ["7", "6"], indirect=True)
def test_compare_notebook_with_two_scripts(run_notebook, kernel, dialogue_wav, tmp_path,
                                           scripts):  # fmt: skip
    _major, name = kernel
    exact, misheard, text = scripts
    labels = ["exact script", "misheard script"]
    with (
        LocalServer(engine="script", script=exact, rate_limit=False) as a,
        LocalServer(engine="script", script=misheard, rate_limit=False) as b,
    ):
        env = _env(tmp_path, dialogue_wav, a, b, labels, text)
        result = run_notebook("compare", name, env, summary=SUMMARY)
        assert [r.protocol for r in a.sessions + b.sessions] == ["deepgram", "assemblyai"]
    rows = _check_common(result, labels)
    assert rows["exact script"]["wer"] == 0.0
    assert rows["misheard script"]["wer"] == pytest.approx(2 / 20)  # 2 of the 20 words
    assert rows["exact script"]["finals"] == rows["misheard script"]["finals"] == 5
    aligned = result.summary["aligned"]
    assert [r["exact script"] for r in aligned] == [t["text"] for t in exact["turns"]]
    assert aligned[0]["misheard script"] == "Do you here me?"
    # The saved widget state is small: no transcript in it (finals travel as messages).
    saved = json.loads(result.saved.read_text())
    assert "We laugh less heartily" not in json.dumps(saved["metadata"])


SHORT_TEXT = "I do. I think that America do it very well."  # the short recording


@pytest.mark.parametrize("kernel", ["7"], indirect=True)
def test_compare_notebook_script_against_whisper(run_notebook, kernel, short_wav, tmp_path):
    _major, name = kernel
    labels = ["script", "whisper tiny.en"]
    with (
        LocalServer(engine="script", rate_limit=False,
                    script={"turns": [{"text": SHORT_TEXT, "start": 0.5, "end": 3.6}]}) as a,
        LocalServer(engine="whisper", rate_limit=False) as b,
    ):
        env = _env(tmp_path, short_wav, a, b, labels, SHORT_TEXT)
        result = run_notebook("compare", name, env, summary=SUMMARY, timeout=300)
    rows = _check_common(result, labels)
    assert rows["script"]["wer"] == 0.0
    assert 0.0 <= rows["whisper tiny.en"]["wer"] < 0.5  # a real recognizer on real speech
    text = result.summary["texts"]["whisper tiny.en"].lower()
    assert "america" in text and "very well" in text
