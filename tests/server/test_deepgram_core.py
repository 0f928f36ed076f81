"""The Deepgram ``/v1/listen`` core without sockets: audio, text frames and time in, messages
and closes out (``h.core("deepgram", ...)``). The socket tests in ``test_deepgram.py`` prove
the upgrade and the asyncio shell; everything the protocol decides is tested here."""

from __future__ import annotations

import hashlib
import io
import wave

import numpy as np
import pytest

from livetx_widgets.server import Engine, ScriptEngine
from livetx_widgets.server.core import Close


def transcripts(messages: list[dict]) -> list[str]:
    return [m["channel"]["alternatives"][0]["transcript"] for m in messages
            if m["type"] == "Results"]  # fmt: skip


# ------------------------------------------------------------------------- results
def test_full_session_interims_finals_vad_utterance_end_and_metadata(h):
    dg = h.core("deepgram", interim_results="true", vad_events="true", utterance_end_ms=1000,
                punctuate="true", diarize="true")  # fmt: skip
    audio = h.silence(5.0)
    for chunk in h.chunks(audio, 100):
        dg.audio(chunk)
    dg.text({"type": "CloseStream"})
    assert dg.closed == Close(1000, "")
    messages = dg.messages
    assert dg.kinds == [
        "SpeechStarted", "Results", "Results", "Results", "UtteranceEnd",
        "SpeechStarted", "Results", "Results", "Results", "UtteranceEnd", "Metadata",
    ]  # fmt: skip
    results = h.of_type(messages, "Results")
    for r in results:
        assert {"is_final", "speech_final", "from_finalize"} <= r.keys()
        assert r["channel_index"] == [0, 1] and r["metadata"]["request_id"] == "req-1"
        assert not r["from_finalize"]
    assert [(r["is_final"], r["speech_final"]) for r in results] == [
        (False, False), (False, False), (True, True), (False, False), (False, False),
        (True, True),
    ]  # fmt: skip
    assert transcripts(messages) == [
        "Hello", "Hello world.", "Hello world.", "Second", "Second turn.", "Second turn.",
    ]  # fmt: skip
    first_final, second_final = results[2], results[5]
    assert (first_final["start"], first_final["duration"]) == (0.0, 0.9)
    assert (second_final["start"], second_final["duration"]) == (0.9, 2.1)  # segments tile
    assert first_final["channel"]["alternatives"][0]["words"] == [
        {"word": "hello", "start": 0.2, "end": 0.5, "confidence": 0.9, "speaker": 0,
         "punctuated_word": "Hello"},
        {"word": "world", "start": 0.5, "end": 0.9, "confidence": 0.8, "speaker": 0,
         "punctuated_word": "world."},
    ]  # fmt: skip
    assert second_final["channel"]["alternatives"][0]["words"][0]["speaker"] == 1
    assert h.of_type(messages, "SpeechStarted")[0] == {
        "type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.2
    }  # fmt: skip
    assert h.of_type(messages, "UtteranceEnd")[0] == {
        "type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 0.9
    }  # fmt: skip
    meta = messages[-1]
    assert meta["request_id"] == "req-1" and meta["transaction_key"] == "deprecated"
    assert meta["duration"] == 5.0 and meta["channels"] == 1
    assert meta["sha256"] == hashlib.sha256(audio).hexdigest()
    assert meta["created"] == "2025-01-01T00:00:00.000Z"  # the start's wall clock, passed in
    record = dg.record
    assert record.audio_frames == 50 and record.audio_bytes == len(audio)
    assert record.control_types == ("CloseStream",)
    assert (record.close_code, record.close_reason) == (1000, "")


def test_without_interim_results_only_finals_and_without_punctuate_raw_words(h):
    dg = h.core("deepgram").stream(4.0).text({"type": "CloseStream"})
    results = h.of_type(dg.messages, "Results")
    assert all(r["is_final"] for r in results)
    assert transcripts(results) == ["hello world", "second turn"]
    assert "punctuated_word" not in results[0]["channel"]["alternatives"][0]["words"][0]
    assert "SpeechStarted" not in dg.kinds and "UtteranceEnd" not in dg.kinds


def test_endpointing_false_never_marks_speech_final(h):
    dg = h.core("deepgram", endpointing="false").stream(4.0).audio(b"")
    finals = h.of_type(dg.messages, "Results")
    assert len(finals) == 2 and not any(r["speech_final"] for r in finals)


def test_finalize_flushes_with_from_finalize_then_answers_an_empty_final(h):
    dg = h.core("deepgram", interim_results="true").stream(0.6)  # "Hello" heard, not "world."
    dg.take()
    dg.text({"type": "Finalize"})
    (final,) = dg.take()
    assert final["from_finalize"] and final["speech_final"] and final["is_final"]
    assert transcripts([final]) == ["hello"]
    dg.text({"type": "Finalize", "channel": 0})  # nothing buffered now
    (empty,) = dg.take()
    assert empty["from_finalize"] and empty["is_final"]
    assert empty["channel"]["alternatives"][0] == {"transcript": "", "confidence": 1.0,
                                                   "words": []}  # fmt: skip
    assert empty["start"] == final["start"] + final["duration"]
    dg.text({"type": "CloseStream"})
    assert dg.kinds[-1] == "Metadata" and dg.closed.code == 1000


def test_finalize_before_any_audio_is_answered(h):
    (result,) = h.core("deepgram").text({"type": "Finalize"}).messages
    assert result["from_finalize"] and result["duration"] == 0.0


def test_zero_length_frame_is_a_legacy_close_stream(h):
    dg = h.core("deepgram").stream(2.0).audio(b"")
    assert dg.kinds == ["Results", "Metadata"] and dg.messages[1]["duration"] == 2.0
    assert dg.closed.code == 1000


def test_close_stream_finalizes_the_open_utterance(h):
    dg = h.core("deepgram").stream(2.8).text({"type": "CloseStream"})  # "Second" still open
    assert transcripts(dg.messages) == ["hello world", "second"]
    assert not dg.messages[1]["speech_final"]


def test_input_after_close_stream_is_recorded_only(h):
    dg = h.core("deepgram").text({"type": "CloseStream"})
    before = len(dg.actions)
    dg.audio(h.silence(2.0)).text({"type": "Finalize"}).text("garbage")
    assert len(dg.actions) == before
    assert dg.record.audio_frames == 1 and dg.record.control_types[1:] == ("Finalize", None)


# ------------------------------------------------------------------------ timeouts
def test_idle_client_is_closed_with_net_0001_exactly_at_the_timeout(h):
    dg = h.core("deepgram", options={"idle_timeout_s": 10.0})
    assert dg.core.next_deadline() == 10.0
    dg.advance(9.999)
    assert dg.closed is None
    dg.advance(0.001)
    assert (dg.messages, dg.closed) == ([], Close(1011, "NET-0001"))
    assert dg.core.next_deadline() is None  # nothing more to time


def test_any_client_frame_restarts_the_idle_clock(h):
    dg = h.core("deepgram", options={"idle_timeout_s": 1.0})
    for _ in range(6):  # six idle timeouts' worth of time, a frame every 0.9 s
        dg.advance(0.9).text({"type": "KeepAlive"})
    dg.advance(0.9).audio(h.silence(0.1))
    assert dg.closed is None and dg.messages == []  # KeepAlive gets no reply
    dg.advance(1.0)
    assert dg.closed == Close(1011, "NET-0001")


# -------------------------------------------------------------------- bad messages
@pytest.mark.parametrize(
    "text", ['{"type": "Flush"}', "not json at all", "[1, 2]", '{"kind": "KeepAlive"}',
             '{"type": "Finalize", "channel": 3}', '{"type": "Configure", "keyterms": "x"}',
             '{"type": "Finalize", "channel": true}']
)  # fmt: skip
def test_bad_text_gets_schema_error_and_the_session_stays_open(h, text):
    dg = h.core("deepgram").text(text)
    (error,) = dg.take()
    assert error["type"] == "Error" and error["variant"] == "SchemaError"
    assert error["message"] == text and error["description"]
    dg.stream(2.0).text({"type": "CloseStream"})
    assert dg.kinds == ["Results", "Metadata"] and dg.closed.code == 1000


def test_configure_is_acknowledged_and_kept(h):
    dg = h.core("deepgram", keyterm="alpha")
    dg.text({"type": "Configure", "keyterms": ["Deepgram", "customer service"]})
    dg.text({"type": "Configure"})  # no keyterms: the current ones are reported
    replies = dg.messages
    assert [r["type"] for r in replies] == ["ConfigureSuccess"] * 2
    assert replies[1]["keyterms"] == ["Deepgram", "customer service"]
    assert replies[0]["request_id"] == "req-1"


# ------------------------------------------------------------------- audio formats
def test_multichannel_gives_results_per_channel(h):
    stereo = np.zeros((2 * 16000 * 2), dtype="<i2").tobytes()  # 2 s, 2 channels
    dg = h.core("deepgram", channels=2, multichannel="true")
    for chunk in h.chunks(stereo, 100, width=4):
        dg.audio(chunk)
    dg.text({"type": "Finalize", "channel": 1}).text({"type": "CloseStream"})
    results = h.of_type(dg.messages, "Results")
    assert sorted(r["channel_index"][0] for r in results) == [0, 1, 1]
    assert all(r["channel_index"][1] == 2 for r in results)
    from_finalize = [r for r in results if r["from_finalize"]]
    assert len(from_finalize) == 1 and from_finalize[0]["channel_index"] == [1, 2]
    assert dg.messages[-1]["channels"] == 2 and dg.messages[-1]["duration"] == 2.0


def test_mulaw_audio_runs_on_its_own_clock(h):
    dg = h.core("deepgram", encoding="mulaw", sample_rate=8000)
    dg.audio(b"\xff" * 8000 * 2).audio(b"")  # 2 s of mu-law silence at 8 kHz
    assert dg.messages[-1]["duration"] == 2.0 and dg.kinds.count("Results") == 1


def test_wav_file_without_encoding_is_read_from_its_header(h):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 2)
    data = buffer.getvalue()
    dg = h.core("deepgram", encoding=None, sample_rate=None)
    for i in range(0, len(data), 4000):
        dg.audio(data[i : i + 4000])
    dg.audio(b"")
    assert dg.messages[-1]["duration"] == 2.0 and dg.kinds.count("Results") == 1


def test_raw_audio_without_encoding_is_undecodable(h):
    dg = h.core("deepgram", encoding=None, sample_rate=None).audio(h.silence(0.1))
    assert (dg.messages, dg.closed) == ([], Close(1008, "DATA-0000"))
    dg.audio(h.silence(0.1))  # recorded, not processed
    assert dg.record.audio_frames == 2 and len(dg.actions) == 1


def without_identity(messages: list[dict]) -> list[dict]:
    for m in messages:
        m.pop("created", None)
    return messages


def test_same_audio_in_any_framing_gives_the_same_messages(h):
    params = {"interim_results": "true", "vad_events": "true", "utterance_end_ms": 1000}
    audio = h.silence(4.0)

    def run(frames: list[bytes]) -> list[dict]:
        dg = h.core("deepgram", **params)
        for frame in frames:
            dg.audio(frame)
        return without_identity(dg.text({"type": "CloseStream"}).messages)

    one_frame = run([audio])
    assert [m["type"] for m in one_frame].count("UtteranceEnd") == 2
    assert run(h.chunks(audio, 20)) == one_frame
    assert run(h.chunks(audio, 330)) == one_frame


def test_frames_queued_while_the_engine_is_busy_are_joined_into_one_job(h):
    """While an engine call runs, the receiver keeps queueing; the next job takes them all,
    and the messages are the same as when each frame was processed on its own."""
    params = {"interim_results": "true", "vad_events": "true", "utterance_end_ms": 1000}
    calm = h.core("deepgram", **params).stream(4.0).text({"type": "CloseStream"})
    busy = h.core("deepgram", **params)
    core, frames = busy.core, h.chunks(h.silence(4.0), 100)
    core.receive_audio(frames[0], 0.0)
    call = core.step(0.0)  # the engine is now "busy" with frame 0 (open_stream)
    for frame in frames[1:]:
        core.receive_audio(frame, 0.0)
    core.receive_text('{"type": "CloseStream"}', 0.0)
    assert core.backlog == len(frames)  # 39 audio frames and the CloseStream
    while call is not None:
        call = core.step(0.0, call.run())
    assert core.backlog == 0
    busy.actions += core.take_actions()
    assert without_identity(busy.messages) == without_identity(calm.messages)


class CountingEngine(Engine):
    """A script engine that counts ``feed`` calls (to see how audio reached the engine)."""

    def __init__(self):
        self.inner, self.feeds = ScriptEngine(), []

    def open_stream(self, sample_rate, *, language=None):
        stream = self.inner.open_stream(sample_rate, language=language)
        original = stream.feed

        def feed(pcm):
            self.feeds.append(len(pcm))
            return original(pcm)

        stream.feed = feed
        return stream


def test_at_most_64_queued_frames_make_one_engine_feed(h):
    engine = CountingEngine()
    dg = h.core("deepgram", engine=engine)
    core = dg.core
    for _ in range(100):
        core.receive_audio(h.silence(0.01), 0.0)
    call = core.step(0.0)
    while call is not None:
        call = core.step(0.0, call.run())
    assert engine.feeds == [64 * 320, 36 * 320]
