"""The real offline engine behind both wire protocols (the engine itself is tested in
test_whisper_engine.py; here only that the server drives it correctly)."""

from __future__ import annotations

import json

import pytest

from livetx_widgets.server import LocalServer

pytestmark = pytest.mark.slow

pytest.importorskip("faster_whisper")


@pytest.fixture(scope="module")
def whisper_server():
    with LocalServer(engine="whisper", rate_limit=False) as srv:
        yield srv


def words_of(text: str) -> list[str]:
    return [w.strip(".,?!").lower() for w in text.split()]


def test_deepgram_protocol_with_whisper(whisper_server, h, short_wav):
    address = h.dg_url(whisper_server, interim_results="true", punctuate="true")
    with h.open_ws(address) as ws:
        for chunk in h.chunks(h.wav_pcm(short_wav), 100):
            ws.send(chunk)
        ws.send(json.dumps({"type": "CloseStream"}))
        messages, code, _ = h.drain(ws, timeout=30)
    assert code == 1000 and messages[-1]["type"] == "Metadata"
    finals = [m for m in h.of_type(messages, "Results") if m["is_final"]]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)
    assert {"think", "america", "well"} <= set(words_of(text)), text
    for m in finals:  # word times stay inside the segment, in seconds
        for w in m["channel"]["alternatives"][0]["words"]:
            assert 0 <= w["start"] <= w["end"] <= 4.2


def test_assemblyai_protocol_with_whisper(whisper_server, h, short_wav):
    with h.open_ws(h.aai_url(whisper_server), scheme=None) as ws:
        assert h.recv_json(ws)["type"] == "Begin"
        pcm = h.wav_pcm(short_wav)
        chunks = h.chunks(pcm, 100)
        chunks[-1] = chunks[-1].ljust(1600, b"\0")
        for chunk in chunks:
            ws.send(chunk)
        ws.send(json.dumps({"type": "Terminate"}))
        messages, code, _ = h.drain(ws, timeout=30)
    assert code == 1000 and messages[-1]["type"] == "Termination"
    finals = [m for m in messages if m.get("end_of_turn")]
    text = " ".join(m["transcript"] for m in finals)
    assert {"think", "america", "well"} <= set(words_of(text)), text
    assert all(isinstance(w["start"], int) for m in finals for w in m["words"])
