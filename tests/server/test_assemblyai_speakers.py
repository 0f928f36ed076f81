"""``livetx serve`` AssemblyAI with speaker_labels and scripted pending speakers, over a real
loopback socket: PENDING words while streaming, one SpeakerRevision at the end (before
Termination), and the client codec plus the transcript turning that into the right speakers.
"""

from __future__ import annotations

import json

import pytest

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.providers import AssemblyAICodec
from livetx_widgets.server import load_script
from livetx_widgets.server.script_engine import ScriptEngine
from livetx_widgets.transcript import Transcript

# Turn 0: "Hello" settled as speaker 0, "world." pending (really 0). Turn 1: both words
# pending (really speaker 1), so its label is UNKNOWN until the revision.
SCRIPT = {
    "words": [
        {"text": "Hello", "start": 0.2, "end": 0.5, "speaker": 0},
        {"text": "world.", "start": 0.5, "end": 0.9, "speaker": 0, "pending": True},
        {"text": "Second", "start": 2.4, "end": 2.7, "speaker": 1, "pending": True},
        {"text": "turn.", "start": 2.7, "end": 3.0, "speaker": 1, "pending": True},
    ]
}


@pytest.fixture
def fast(server_factory):
    return server_factory(rate_limit=False, script=SCRIPT)


def _session(h, srv, **params) -> list[dict]:
    """Begin, 4 s of audio, Terminate: every message the server sent."""
    with h.open_ws(h.aai_url(srv, **params), scheme=None) as ws:
        assert h.recv_json(ws)["type"] == "Begin"
        for chunk in h.chunks(h.silence(4.0), 100):
            ws.send(chunk)
        ws.send(json.dumps({"type": "Terminate"}))
        messages, code, _reason = h.drain(ws)
    assert code == 1000
    return messages


def test_script_marks_pending_words_in_results():
    script = load_script(SCRIPT)
    assert script.pending == ((False, True), (True, True))
    stream = ScriptEngine(SCRIPT).open_stream(16000)
    results = stream.feed(b"\0\0" * 16000 * 4)
    finals = [r for r in results if r.kind == "final"]
    assert [r.extra for r in finals] == [
        {"pending_speakers": (False, True)},
        {"pending_speakers": (True, True)},
    ]
    partials = [r for r in results if r.kind == "partial"]
    assert partials[0].extra == {}  # "Hello" alone: nothing pending
    assert load_script(
        {"turns": [{"text": "a b", "start": 0, "end": 1, "pending": True}]}
    ).pending == ((True, True),)
    assert load_script({"text": "No speakers here."}).pending == ()


def test_pending_must_be_a_boolean():
    with pytest.raises(ConfigurationError, match="pending"):
        load_script({"words": [{"text": "a", "start": 0, "end": 1, "pending": "yes"}]})


def test_pending_words_then_a_late_revision(fast, h):
    messages = _session(h, fast, speaker_labels="true")
    kinds = [m["type"] for m in messages]
    assert kinds[-2:] == ["SpeakerRevision", "Termination"]
    finals = [m for m in h.of_type(messages, "Turn") if m["end_of_turn"]]
    assert [[w["speaker"] for w in t["words"]] for t in finals] == [
        ["A", "PENDING"],
        ["PENDING", "PENDING"],
    ]
    assert [t["speaker_label"] for t in finals] == ["A", "UNKNOWN"]
    assert messages[-2] == {
        "type": "SpeakerRevision",
        "revisions": [
            {"turn_order": 0, "speaker_label": "A",
             "words": [{"text": "world.", "speaker": "A", "start": 500, "end": 900}]},
            {"turn_order": 1, "speaker_label": "B",
             "words": [{"text": "Second", "speaker": "B", "start": 2400, "end": 2700},
                       {"text": "turn.", "speaker": "B", "start": 2700, "end": 3000}]},
        ],
    }  # fmt: skip


def test_without_speaker_labels_nothing_is_pending(fast, h):
    messages = _session(h, fast)
    assert "SpeakerRevision" not in [m["type"] for m in messages]
    assert all("speaker" not in w for t in h.of_type(messages, "Turn") for w in t["words"])


def test_client_codec_and_transcript_end_with_the_revised_speakers(fast, h):
    codec = AssemblyAICodec(speaker_labels=True)
    codec.key_prefix = "c1:"
    t = Transcript(provider="assemblyai")
    changed = []
    for message in _session(h, fast, speaker_labels="true"):
        for event in codec.decode(json.dumps(message)):
            result = t.apply(event)
            if isinstance(result, list):
                changed.extend(result)
    assert [s.segment_id for s in changed] == [0, 1]
    assert t.to_dataframe()["speaker"].tolist() == ["A", "B"]
    assert t.words_dataframe()["speaker"].tolist() == ["A", "A", "B", "B"]
    assert [w.speaker for s in t.segments for w in s.words] == ["A", "A", "B", "B"]
    assert t.to_srt().count("Speaker B: Second turn.") == 1
    assert "PENDING" not in t.to_json() and "UNKNOWN" not in t.to_json()
