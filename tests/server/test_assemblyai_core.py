"""The AssemblyAI ``/v3/ws`` core without sockets: audio, text frames and time in, messages
and closes out (``h.core("assemblyai", ...)``). The socket tests in ``test_assemblyai.py``
prove the upgrade and the asyncio shell; everything the protocol decides is tested here, on a
clock the test moves (so the rate check and the inactivity timeout are exact)."""

from __future__ import annotations

import json

import pytest

from livetx_widgets.server.core import Close

FAST = {"rate_limit": False}


def aai(h, options=FAST, **kwargs):
    return h.core("assemblyai", options=options, **kwargs)


def terminate(session):
    return session.text({"type": "Terminate"})


# ------------------------------------------------------------------------ opening
def test_begin_carries_id_expiry_and_configuration(h):
    session = aai(h, headers={"assemblyai-version": "2025-05-12"})
    (begin,) = session.messages
    assert list(begin) == ["type", "id", "expires_at", "configuration"]
    assert begin["id"] == "req-1"
    assert begin["expires_at"] == int(h.UNIX_START) + 3 * 3600  # the start's wall clock
    config = begin["configuration"]
    assert (config["model"], config["api_version"], config["mode"]) == (
        "u3-rt-pro", "2025-05-12", "balanced"
    )  # fmt: skip


@pytest.mark.parametrize(
    "error",
    ["Unauthorized Connection: Invalid API key",
     "Unauthorized Connection: Missing Authorization header"],
)  # fmt: skip
def test_unauthorized_is_an_error_frame_then_1008_and_nothing_else(h, error):
    session = aai(h, authorized=False, auth_error=error)
    assert session.messages == [{"type": "Error", "error_code": 1008, "error": error}]
    assert session.closed == Close(1008, "See Error message for details")
    session.stream(1.0)
    assert len(session.actions) == 2 and session.record.audio_frames == 10


def test_booleans_any_case_and_json_lists_are_read(h):
    params = {
        "speaker_labels": "True", "language_detection": "TRUE", "format_turns": "False",
        "keyterms_prompt": json.dumps(["foo", "bar baz"]), "language_codes": '["de"]',
        "min_turn_silence": 160, "max_turn_silence": 1280, "unknown_thing": "ignored",
    }  # fmt: skip
    session = aai(h, **params)
    assert session.messages[0]["configuration"]["speaker_labels"] is True
    session.stream(1.5)
    final = [m for m in session.messages if m.get("end_of_turn")][-1]
    assert final["speaker_label"] == "UNKNOWN"  # the script's first words have no speaker
    assert all(w["speaker"] == "UNKNOWN" for w in final["words"])
    assert (final["language_code"], final["language_confidence"]) == ("de", 1.0)


# -------------------------------------------------------------------------- turns
def test_turns_follow_u3_semantics_and_terminate_ends_the_session(h):
    session = aai(h, speaker_labels="true")
    session.take()  # Begin
    session.stream(4.0)
    session.advance(1.4)  # the clock the Termination reports
    terminate(session)
    assert session.closed == Close(1000, "Session Ended")
    messages = session.messages
    assert session.kinds == [
        "SpeechStarted", "Turn", "Turn", "Turn", "SpeechStarted", "Turn", "Turn", "Turn",
        "Termination",
    ]  # fmt: skip
    turns = h.of_type(messages, "Turn")
    for turn in turns:
        assert list(turn)[-1] == "type"  # observed key order: type last
        final = turn["end_of_turn"]
        assert turn["turn_is_formatted"] is final
        assert turn["end_of_turn_confidence"] == (1 if final else 0)
        assert turn["utterance"] == (turn["transcript"] if final else "")
        assert all(w["word_is_final"] is final for w in turn["words"])
    assert [(t["turn_order"], t["end_of_turn"], t["transcript"]) for t in turns] == [
        (0, False, "Hello"), (0, False, "Hello world"), (0, True, "Hello world."),
        (1, False, "Second"), (1, False, "Second turn"), (1, True, "Second turn."),
    ]  # fmt: skip
    assert turns[2]["words"] == [
        {"start": 200, "end": 500, "text": "Hello", "confidence": 0.9, "word_is_final": True,
         "speaker": "UNKNOWN"},
        {"start": 500, "end": 900, "text": "world.", "confidence": 0.8, "word_is_final": True,
         "speaker": "UNKNOWN"},
    ]  # fmt: skip
    assert turns[5]["speaker_label"] == "B"  # script speaker 1
    assert [s["timestamp"] for s in h.of_type(messages, "SpeechStarted")] == [200, 2400]
    assert messages[-1] == {"type": "Termination", "audio_duration_seconds": 4,
                            "session_duration_seconds": 1}  # fmt: skip


def test_terminate_flushes_the_turn_in_flight(h):
    session = terminate(aai(h).stream(0.6))
    assert [m["transcript"] for m in session.messages if m.get("end_of_turn")] == ["Hello"]
    assert session.kinds[-1] == "Termination" and session.closed.code == 1000


def test_universal_streaming_model_sends_no_speech_started(h):
    session = terminate(aai(h, speech_model="universal-streaming-english").stream(2.0))
    assert session.messages[0]["configuration"]["mode"] is None
    assert "SpeechStarted" not in session.kinds and session.kinds.count("Turn") == 3


def test_force_endpoint_ends_the_turn_now_and_the_rest_is_a_new_turn(h):
    session = aai(h).stream(0.6)
    session.take()
    session.text({"type": "ForceEndpoint"})
    (forced,) = session.take()
    assert (forced["turn_order"], forced["transcript"], forced["end_of_turn"]) == (0, "Hello", True)
    session.stream(1.0)
    later = session.take()
    assert later[0] == {"type": "SpeechStarted", "timestamp": 500, "confidence": 1.0}
    assert (later[-1]["turn_order"], later[-1]["transcript"]) == (1, "world.")
    session.text({"type": "ForceEndpoint"})  # nothing open: nothing to say
    assert session.take() == [] and session.closed is None


def test_update_configuration_is_applied_without_reply(h):
    update = {"type": "UpdateConfiguration", "keyterms_prompt": ["cardiology", "Dr. Patel"],
              "max_turn_silence": 5000, "min_turn_silence": 200, "something_new": 1}  # fmt: skip
    session = aai(h)
    session.take()
    session.text(update)
    assert session.take() == [] and session.closed is None
    settings = session.core.settings
    assert settings["keyterms_prompt"] == ["cardiology", "Dr. Patel"]
    assert settings["max_turn_silence"] == 5000 and "something_new" not in settings
    assert session.record.controls[0] == update


def test_keepalive_is_accepted_silently(h):
    session = aai(h)
    session.take()
    assert session.text({"type": "KeepAlive"}).take() == [] and session.closed is None


# ----------------------------------------------------------------------- 3006/3007
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "Invalid JSON: not json"),
        ('{"type": "Flush"}', "Invalid Message Type: Flush"),
        ('["Terminate"]', 'Invalid Message: ["Terminate"]'),
        ('{"kind": "Terminate"}', 'Invalid Message: {"kind": "Terminate"}'),
        (
            '{"type": "UpdateConfiguration", "max_turn_silence": "5000"}',
            "Invalid Message: max_turn_silence has the wrong type (str)",
        ),
        ('{"type": "UpdateConfiguration", "keyterms_prompt": "x"}', "Invalid Message:"),
        ('{"type": "UpdateConfiguration", "keyterms_prompt": [1]}', "Invalid Message:"),
        ('{"type": "UpdateConfiguration", "min_turn_silence": true}', "Invalid Message:"),
    ],
)
def test_bad_client_json_closes_with_3006(h, text, error):
    session = aai(h)
    session.take()
    (message,) = session.text(text).messages
    assert message["type"] == "Error" and message["error_code"] == 3006
    assert message["error"].startswith(error)
    assert session.closed == Close(3006, message["error"])


def test_long_error_text_gets_the_generic_close_reason(h):
    session = aai(h).text("x" * 200)
    assert session.messages[-1]["error"] == "Invalid JSON: " + "x" * 200
    assert session.closed == Close(3006, "See Error message for details")


@pytest.mark.parametrize("ms", [20, 49, 1001, 1200])
def test_chunks_outside_50_to_1000_ms_close_with_3007(h, ms):
    session = aai(h).audio(h.silence(0.1)).audio(h.silence(ms / 1000))
    expected = f"Input duration violation: {ms} ms. Expected between 50 and 1000 ms"
    assert session.messages[-1] == {"type": "Error", "error_code": 3007, "error": expected}
    assert session.closed == Close(3007, expected)


def test_chunk_limits_themselves_are_fine(h):
    session = terminate(aai(h).audio(h.silence(0.05)).audio(h.silence(1.0)))
    assert session.closed.code == 1000


def test_mulaw_chunk_duration_is_one_byte_per_sample(h):
    session = aai(h, encoding="pcm_mulaw", sample_rate=8000)
    for _ in range(10):
        session.audio(b"\xff" * 800)  # 100 ms at 8 kHz
    terminate(session)
    assert session.closed.code == 1000 and session.messages[-1]["audio_duration_seconds"] == 1
    assert h.of_type(session.messages, "Turn")[-1]["transcript"] == "Hello world."


def test_audio_ahead_of_real_time_by_more_than_the_burst_closes_with_3007(h):
    session = aai(h, options={"rate_burst_s": 0.5})
    for _ in range(20):  # 125 ms frames every 62.5 ms (2x real time; exact binary times)
        session.audio(h.silence(0.125)).advance(0.0625)
        if session.closed:
            break
    # Frame n (from 1) holds n/8 s of audio at (n - 1)/16 s: over 0.5 s ahead from n = 8.
    assert session.record.audio_frames == 8
    text = "Audio Transmission Rate Exceeded: Received 1.0 sec. audio in 0.4 sec"
    assert session.messages[-1] == {"type": "Error", "error_code": 3007, "error": text}
    assert session.closed == Close(3007, text)


def test_audio_at_real_time_passes_the_rate_check(h):
    # Each frame arrives at the start of its 100 ms: one frame ahead, within a 0.15 s burst.
    session = aai(h, options={"rate_burst_s": 0.15}).stream(3.0, paced=True)
    terminate(session)
    assert session.closed == Close(1000, "Session Ended")
    assert session.messages[-1] == {"type": "Termination", "audio_duration_seconds": 3,
                                    "session_duration_seconds": 3}  # fmt: skip


def test_rate_limit_off_accepts_any_speed(h):
    session = terminate(aai(h, options={"rate_limit": False}).stream(10.0))
    assert session.closed.code == 1000


# ------------------------------------------------------------------ inactivity
def test_inactivity_timeout_ends_with_termination(h):
    session = aai(h, options={"rate_limit": False, "inactivity_unit_s": 0.1},
                  inactivity_timeout=5).stream(0.6)  # fmt: skip
    assert session.core.next_deadline() == 0.5
    session.advance(0.49)
    assert session.closed is None
    session.advance(0.01)
    assert session.closed == Close(1000, "Session Ended")
    assert session.kinds[-1] == "Termination"
    assert [m["transcript"] for m in session.messages if m.get("end_of_turn")] == ["Hello"]


def test_keepalive_resets_the_inactivity_timer(h):
    session = aai(h, options={"inactivity_unit_s": 0.1}, inactivity_timeout=5)
    for _ in range(6):
        session.advance(0.4).text({"type": "KeepAlive"})
    assert session.closed is None
    terminate(session)
    assert session.kinds == ["Begin", "Termination"] and session.closed.code == 1000


def test_inactivity_close_code_is_configurable(h):
    session = aai(h, options={"inactivity_unit_s": 0.1, "inactivity_close_code": 3005},
                  inactivity_timeout=5).advance(0.5)  # fmt: skip
    error = "Session Cancelled: Inactivity timeout exceeded"
    assert session.messages[-1] == {"type": "Error", "error_code": 3005, "error": error}
    assert session.closed.code == 3005


def test_no_inactivity_timeout_unless_asked(h):
    session = aai(h, options={"idle_timeout_s": 0.1})  # the Deepgram timer does not apply
    assert session.core.next_deadline() is None
    session.advance(3600.0)
    assert session.closed is None


def test_an_engine_failure_is_3005(h):
    session = aai(h)
    session.core.fail(RuntimeError("engine bug"), 0.0)
    session.actions += session.core.take_actions()
    assert session.messages[-1]["error_code"] == 3005
    assert session.closed == Close(3005, "Session Cancelled: An error occurred")
    assert session.record.error == "RuntimeError: engine bug"
