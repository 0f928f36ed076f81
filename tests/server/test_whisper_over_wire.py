"""``LocalServer(engine="whisper")`` over real loopback WebSockets, with a raw client.

The short recording is streamed to both protocol front ends; the finals that come back over
the wire must say roughly what the README transcript says. The client here is websockets' sync
client, never the package's session code, so this checks the engine and the server alone.
"""

from __future__ import annotations

import json
import re
import time
import wave
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from livetx_widgets.server import LocalServer
from livetx_widgets.server.wer import wer

TIMEOUT = 60.0  # the whole exchange, model decoding included (a few seconds when idle)


def reference(shared_dir: Path, name: str) -> str:
    text = (shared_dir / "audio" / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^- `{re.escape(name)}`:\s*\"(.*?)\"", text, flags=re.S | re.M)
    assert match
    return " ".join(match.group(1).split())


def pcm_of(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.readframes(w.getnframes())


def exchange(address: str, pcm: bytes, chunk_ms: int, closing: dict) -> list[dict]:
    """Send all audio, then ``closing``; read until the server closes (bounded in time)."""
    step = 16000 * 2 * chunk_ms // 1000
    messages: list[dict] = []
    deadline = time.monotonic() + TIMEOUT
    with connect(
        address,
        additional_headers={"Authorization": "Token any-key"},
        open_timeout=10,
        close_timeout=10,
    ) as ws:
        pieces = [pcm[off : off + step] for off in range(0, len(pcm), step)]
        if len(pieces) > 1 and len(pieces[-1]) < 16000 * 2 * 50 // 1000:
            pieces[-2:] = [pieces[-2] + pieces[-1]]  # AssemblyAI takes 50-1000 ms per chunk
        for piece in pieces:
            ws.send(piece)
        ws.send(json.dumps(closing))
        for _ in range(10_000):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no close within {TIMEOUT} s; got {messages}"
            try:
                messages.append(json.loads(ws.recv(timeout=remaining)))
            except ConnectionClosed:
                return messages
    raise AssertionError("too many messages")


@pytest.fixture(scope="module")
def whisper_server():
    with LocalServer(engine="whisper", rate_limit=False) as srv:
        yield srv


@pytest.mark.slow
def test_deepgram_listen_returns_whisper_finals(whisper_server, short_wav, shared_dir):
    address = (
        f"{whisper_server.url}/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
        "&interim_results=true&punctuate=true"
    )
    messages = exchange(address, pcm_of(short_wav), 50, {"type": "CloseStream"})
    results = [m for m in messages if m.get("type") == "Results"]
    finals = [m for m in results if m["is_final"]]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals).strip()
    assert wer(reference(shared_dir, "short-16k.wav"), text) < 0.35, text
    assert any(not m["is_final"] for m in results), "interim results from whisper partials"
    assert any(m.get("type") == "Metadata" for m in messages)
    words = [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= 4.2 for w in words)


@pytest.mark.slow
def test_assemblyai_v3_returns_whisper_turns(whisper_server, short_wav, shared_dir):
    address = f"{whisper_server.url}/v3/ws?sample_rate=16000&encoding=pcm_s16le"
    messages = exchange(address, pcm_of(short_wav), 100, {"type": "Terminate"})
    assert messages and messages[0]["type"] == "Begin"
    turns = [m for m in messages if m.get("type") == "Turn" and m["end_of_turn"]]
    text = " ".join(m["transcript"] for m in turns).strip()
    assert wer(reference(shared_dir, "short-16k.wav"), text) < 0.35, text
    assert messages[-1]["type"] == "Termination"
