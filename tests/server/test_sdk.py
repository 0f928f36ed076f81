"""The official Python SDKs (deepgram-sdk 7.x, assemblyai 1.8.x), pointed at the local server
through their base-URL options, sync and async, streaming the shared short recording."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

# The SDKs use deprecated websockets APIs themselves; that is not ours to fix.
pytestmark = [pytest.mark.sdk, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

deepgram = pytest.importorskip("deepgram")
aai = pytest.importorskip("assemblyai.streaming.v3")

from deepgram import AsyncDeepgramClient, DeepgramClient, DeepgramClientEnvironment  # noqa: E402
from deepgram.core.events import EventType  # noqa: E402

#: Scripted for short-16k.wav (4.1 s): the second turn is final at 3.5 s and its 1 s
#: UtteranceEnd falls at 4.0 s, both before the audio ends.
SCRIPT = {
    "turns": [
        {"text": "I do.", "start": 0.3, "end": 0.9},
        {"text": "I think that America do it very well.", "start": 1.5, "end": 3.0},
    ]
}
FINALS = ["I do.", "I think that America do it very well."]
DG_OPTIONS = dict(
    model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True,
    vad_events=True, utterance_end_ms=1000, punctuate=True,
)  # fmt: skip


def environment(url: str) -> DeepgramClientEnvironment:
    http = url.replace("ws://", "http://")
    return DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)


def check_deepgram_messages(messages: list) -> None:
    kinds = [type(m).__name__ for m in messages]
    results = [m for m in messages if type(m).__name__ == "ListenV1Results"]
    finals = [r for r in results if r.is_final and not r.from_finalize]
    assert [r.channel.alternatives[0].transcript for r in finals] == FINALS
    assert all(r.speech_final for r in finals)
    assert any(not r.is_final for r in results)  # interim results arrived
    assert [r.from_finalize for r in results].count(True) == 1  # the answer to Finalize
    assert finals[1].channel.alternatives[0].words[0].punctuated_word == "I"
    assert kinds.count("ListenV1SpeechStarted") == 2
    assert "ListenV1UtteranceEnd" in kinds
    assert kinds[-1] == "ListenV1Metadata"
    assert messages[-1].duration == pytest.approx(4.1, abs=0.05)


def test_deepgram_sdk_sync(server_factory, h, short_wav):
    srv = server_factory(script=SCRIPT, api_key="dg-key")
    pcm = h.wav_pcm(short_wav)
    messages: list = []
    errors: list = []
    client = DeepgramClient(api_key="dg-key", environment=environment(srv.url))
    with client.listen.v1.connect(**DG_OPTIONS) as conn:
        conn.on(EventType.MESSAGE, messages.append)
        conn.on(EventType.ERROR, errors.append)
        listener = threading.Thread(target=conn.start_listening)
        listener.start()
        for chunk in h.chunks(pcm, 100):
            conn.send_media(chunk)
        conn.send_keep_alive()
        conn.send_finalize()
        conn.send_close_stream()
        listener.join(h.TIMEOUT)
    assert not listener.is_alive()
    assert errors == []
    check_deepgram_messages(messages)
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert (record.auth, record.close_code) == ("token", 1000)
    assert record.control_types == ("KeepAlive", "Finalize", "CloseStream")
    assert record.query["interim_results"] == ["true"]
    assert record.headers["User-Agent"].startswith("deepgram-sdk/")


def test_deepgram_sdk_async(server_factory, h, short_wav):
    srv = server_factory(script=SCRIPT)
    pcm = h.wav_pcm(short_wav)
    messages: list = []

    async def run() -> None:
        client = AsyncDeepgramClient(api_key="any", environment=environment(srv.url))
        async with client.listen.v1.connect(**DG_OPTIONS) as conn:

            async def on_message(message):
                messages.append(message)

            conn.on(EventType.MESSAGE, on_message)
            listener = asyncio.create_task(conn.start_listening())
            for chunk in h.chunks(pcm, 100):
                await conn.send_media(chunk)
            await conn.send_finalize()
            await conn.send_close_stream()
            await asyncio.wait_for(listener, h.TIMEOUT)

    asyncio.run(run())
    check_deepgram_messages(messages)


def test_deepgram_sdk_sees_the_401(server_factory, h):
    from deepgram.core.api_error import ApiError
    from websockets.exceptions import InvalidStatus

    srv = server_factory(api_key="dg-key")
    client = DeepgramClient(api_key="wrong", environment=environment(srv.url))
    with pytest.raises((ApiError, InvalidStatus)) as info:  # noqa: SIM117
        with client.listen.v1.connect(model="nova-3"):
            pass
    error = info.value
    status = error.status_code if isinstance(error, ApiError) else error.response.status_code
    assert status == 401


def stream_paced(send, pcm: bytes, h, chunk_ms: int = 50) -> None:
    """Send ``chunk_ms`` chunks at real time (the last one padded to full length)."""
    chunks = h.chunks(pcm, chunk_ms)
    chunks[-1] = chunks[-1].ljust(len(chunks[0]), b"\0")
    t0 = time.monotonic()
    for i, chunk in enumerate(chunks):
        delay = t0 + i * chunk_ms / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(chunk)


@pytest.mark.slow  # ~4 s of real-time audio
def test_assemblyai_sdk_sync_paced_at_real_time_with_the_rate_check_on(server_factory, h,
                                                                      short_wav):  # fmt: skip
    srv = server_factory(script=SCRIPT, api_key="aai-key")  # rate_limit=True (default)
    pcm = h.wav_pcm(short_wav)
    events: dict[str, list] = {"Begin": [], "Turn": [], "Termination": [], "SpeechStarted": []}
    errors: list = []
    client = aai.RealTimeTranscriber(
        aai.RealTimeTranscriberOptions(api_key="aai-key", api_host=srv.url)
    )
    for name, bucket in events.items():
        client.on(getattr(aai.RealTimeEvents, name), lambda _c, e, b=bucket: b.append(e))
    client.on(aai.RealTimeEvents.Error, lambda _c, e: errors.append(e))
    client.connect(aai.RealTimeParameters(
        sample_rate=16000, speech_model="u3-rt-pro", format_turns=True,
        keyterms_prompt=["America", "very well"], speaker_labels=False,
    ))  # fmt: skip
    try:
        client.set_params(aai.RealTimeSessionParameters(max_turn_silence=2000))
        stream_paced(client.stream, pcm, h)
        client.keep_alive()
    finally:
        client.disconnect(terminate=True)
    assert errors == []
    assert len(events["Begin"]) == 1 and events["Begin"][0].id
    finals = [t for t in events["Turn"] if t.end_of_turn]
    assert [t.transcript for t in finals] == FINALS
    assert [t.turn_order for t in finals] == [0, 1]
    assert all(w.word_is_final for t in finals for w in t.words)
    assert any(not t.end_of_turn for t in events["Turn"])
    assert [s.timestamp for s in events["SpeechStarted"]] == [300, 1500]
    assert events["Termination"][0].audio_duration_seconds == 4
    record = srv.wait_idle(h.TIMEOUT)[0]
    assert record.auth == "header" and record.close_code == 1000
    assert record.query["format_turns"] == ["True"]  # Python's spelling, accepted
    assert record.query["keyterms_prompt"] == ['["America", "very well"]']
    assert record.control_types == ("UpdateConfiguration", "KeepAlive", "Terminate")


def test_assemblyai_sdk_async(server_factory, h, short_wav):
    srv = server_factory(script=SCRIPT, rate_limit=False)
    pcm = h.wav_pcm(short_wav)
    chunks = h.chunks(pcm, 100)
    chunks[-1] = chunks[-1].ljust(1600, b"\0")  # at least 50 ms
    turns: list = []
    terminations: list = []
    errors: list = []

    async def run() -> None:
        client = aai.AsyncRealTimeTranscriber(
            aai.RealTimeTranscriberOptions(api_key="any", api_host=srv.url)
        )
        client.on(aai.RealTimeEvents.Turn, lambda _c, e: turns.append(e))
        client.on(aai.RealTimeEvents.Termination, lambda _c, e: terminations.append(e))
        client.on(aai.RealTimeEvents.Error, lambda _c, e: errors.append(e))
        await client.connect(aai.RealTimeParameters(sample_rate=16000, speech_model="u3-rt-pro"))
        await client.stream(chunks)
        await client.force_endpoint()
        await client.disconnect(terminate=True)

    asyncio.run(asyncio.wait_for(run(), 2 * h.TIMEOUT))
    assert errors == []
    assert [t.transcript for t in turns if t.end_of_turn] == FINALS
    assert len(terminations) == 1
    assert srv.wait_idle(h.TIMEOUT)[0].control_types == ("ForceEndpoint", "Terminate")


def test_assemblyai_sdk_reports_the_auth_error(server_factory, h):
    srv = server_factory(api_key="aai-key")
    errors: list = []
    client = aai.RealTimeTranscriber(aai.RealTimeTranscriberOptions(api_key="no", api_host=srv.url))
    client.on(aai.RealTimeEvents.Error, lambda _c, e: errors.append(e))
    client.connect(aai.RealTimeParameters(sample_rate=16000, speech_model="u3-rt-pro"))
    client.disconnect()
    assert len(errors) == 1
    assert errors[0].code == 1008 and "Invalid API key" in str(errors[0])


def test_assemblyai_sdk_sees_3007_when_streaming_too_fast(server_factory, h, short_wav):
    srv = server_factory(script=SCRIPT)  # rate check on
    errors: list = []
    client = aai.RealTimeTranscriber(aai.RealTimeTranscriberOptions(api_key="k", api_host=srv.url))
    client.on(aai.RealTimeEvents.Error, lambda _c, e: errors.append(e))
    client.connect(aai.RealTimeParameters(sample_rate=16000, speech_model="u3-rt-pro"))
    client.stream(h.chunks(h.wav_pcm(short_wav)[: 32000 * 3], 100))  # 3 s at once
    srv.wait_for(lambda rs: rs and rs[0].done, h.TIMEOUT)
    # The SDK reports the Error frame from its own reader thread, which may still be busy
    # when the server is done: wait for it (bounded) before disconnecting.
    deadline = time.monotonic() + h.TIMEOUT
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    assert [e.code for e in errors] == [3007]
    assert "Audio Transmission Rate Exceeded" in str(errors[0])
