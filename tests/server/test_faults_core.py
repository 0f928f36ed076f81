"""In-session faults decided by the protocol cores, without sockets, on a clock the test
moves: each trigger fires at exactly its frame, final, second or end. The socket tests in
``test_faults.py`` keep what needs a real connection (TCP drop, stop reading filling the
client's buffers, response delays, upgrade refusals and hangs)."""

from __future__ import annotations

import json

import pytest

from livetx_widgets.server import Faults, Trigger
from livetx_widgets.server.core import Close, Drop, Send
from livetx_widgets.server.faults import (
    MALFORMED_FRAME,
    OVERSIZED_BYTES,
    UNKNOWN_MESSAGE_TYPE,
    oversized_frame,
)

PROTOCOLS = ["deepgram", "assemblyai"]
TERMINAL = {"deepgram": "Metadata", "assemblyai": "Termination"}
END = {"deepgram": {"type": "CloseStream"}, "assemblyai": {"type": "Terminate"}}


def session(h, protocol: str, **faults):
    """A core with ``faults``; AssemblyAI's Begin is already taken out."""
    driver = h.core(protocol, faults=Faults(**faults), options={"rate_limit": False})
    if protocol == "assemblyai":
        assert [m["type"] for m in driver.take()] == ["Begin"]
    return driver


def is_final(message: dict) -> bool:
    return bool(message.get("is_final") or message.get("end_of_turn"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_close_after_frames_fires_on_that_frame(h, protocol):
    s = session(h, protocol, close_after_frames=5, close_code=4001, close_reason="bye")
    for _ in range(4):
        s.audio(h.silence(0.1))
    assert s.closed is None
    s.audio(h.silence(0.1))
    assert s.closed == Close(4001, "bye")
    errors = h.of_type(s.messages, "Error")
    if protocol == "assemblyai":  # the real service sends an Error frame before error closes
        assert errors == [{"type": "Error", "error_code": 4001, "error": "bye"}]
        assert s.actions[-2] == Send(json.dumps(errors[0]), "Error")
    else:
        assert errors == []
    assert s.record.faults_fired == ("close",) and s.record.close_code == 4001


def test_close_without_the_error_frame(h):
    s = session(h, "assemblyai", close_after_frames=1, close_code=3005, close_error_frame=False)
    s.audio(h.silence(0.1))
    assert s.actions == [Close(3005, "")]


def test_a_1000_close_has_no_error_frame_on_assemblyai(h):
    s = session(h, "assemblyai", close_when=Trigger(frames=1), close_code=1000)
    s.audio(h.silence(0.1))
    assert s.actions == [Close(1000, "")]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_close_after_seconds_fires_at_that_second(h, protocol):
    s = session(h, protocol, close_after_s=2.5, close_code=1011, close_reason="NET-0000")
    assert s.core.next_deadline() == 2.5
    s.advance(2.49)
    assert s.closed is None
    s.advance(0.01)
    assert s.closed == Close(1011, "NET-0000")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_drop_after_frames_asks_for_an_abort_and_nothing_else(h, protocol):
    s = session(h, protocol, drop_after_frames=3)
    s.stream(0.3)
    assert s.actions[-1] == Drop() and s.dropped and s.closed is None
    count = len(s.actions)
    s.stream(2.0).text(END[protocol])  # recorded, never answered
    assert len(s.actions) == count
    assert s.record.dropped and s.record.close_code is None and s.record.audio_frames == 23


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_terminal_message_delayed_by_exactly_the_delay(h, protocol):
    s = session(h, protocol, terminal_delay_s=0.75)
    s.stream(2.0).advance(1.0).text(END[protocol])
    assert TERMINAL[protocol] not in s.kinds and s.closed is None
    assert s.core.next_deadline() == 1.75
    s.advance(0.74)
    assert s.closed is None
    s.advance(0.01)
    assert s.kinds[-1] == TERMINAL[protocol] and s.closed.code == 1000
    assert len([m for m in s.messages if is_final(m)]) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_terminal_message_never_sent_and_never_closed(h, protocol):
    s = session(h, protocol, never_terminal=True)
    s.stream(2.0).text(END[protocol]).advance(3600)
    assert TERMINAL[protocol] not in s.kinds and s.closed is None
    assert s.record.terminal_withheld and s.core.next_deadline() is None
    assert [m for m in s.messages if is_final(m)]  # the ending's results still went out


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_json_and_unknown_type_right_after_their_frames(h, protocol):
    s = session(h, protocol, malformed_after_frames=2, unknown_type_after_frames=3)
    s.audio(h.silence(0.1))
    assert s.texts == []
    s.audio(h.silence(0.1))
    # Right after frame 2 arrived, before that frame's own results (speech starts at 0.2 s).
    assert s.texts[0] == MALFORMED_FRAME
    assert all(json.loads(t)["type"] == "SpeechStarted" for t in s.texts[1:])
    s.audio(h.silence(0.1))
    assert json.loads(s.texts[-1]) == {"type": UNKNOWN_MESSAGE_TYPE, "detail": "fault injection"}
    s.stream(2.0).text(END[protocol])  # the session carries on normally
    assert s.closed.code == 1000 and s.kinds[-1] == TERMINAL[protocol]
    assert s.record.faults_fired == ("malformed", "unknown_type")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oversized_frame_is_one_valid_json_mebibyte(h, protocol):
    s = session(h, protocol, oversized_when=Trigger(frames=1)).audio(h.silence(0.1))
    (text,) = [t for t in s.texts if len(t) > 1000]
    assert text == oversized_frame() and len(text.encode()) == OVERSIZED_BYTES


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_finals_trigger_fires_right_after_the_first_final(h, protocol):
    s = session(h, protocol, drop_when=Trigger(finals=1))
    s.stream(4.0)
    assert isinstance(s.actions[-1], Drop)
    assert is_final(s.messages[-1])  # the final went out, then nothing
    assert len([m for m in s.messages if is_final(m)]) == 1
    assert s.record.faults_fired == ("drop",)


def test_an_empty_final_does_not_count_for_finals_triggers(h):
    s = session(h, "deepgram", close_when=Trigger(finals=1))
    s.text({"type": "Finalize"})  # answered with an empty final
    assert s.messages[-1]["is_final"] and s.closed is None
    s.stream(1.5)
    assert s.closed is not None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_idle_trigger_counts_from_the_last_audio_only(h, protocol):
    s = session(h, protocol, close_when=Trigger(idle_s=0.5), close_code=1011,
                close_reason="NET-0000")  # fmt: skip
    s.advance(3.0)  # no audio yet: the idle clock has not started
    assert s.closed is None and s.record.faults_fired == ()
    s.audio(h.silence(0.1)).advance(0.25).text({"type": "KeepAlive"})  # only audio counts
    assert s.core.next_deadline() == 3.5
    s.advance(0.125)
    assert s.closed is None
    s.advance(0.125)
    assert s.closed == Close(1011, "NET-0000")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_idle_trigger_does_not_fire_once_the_client_ended(h, protocol):
    s = session(h, protocol, close_when=Trigger(idle_s=0.6), terminal_delay_s=5.0)
    s.audio(h.silence(0.1)).text(END[protocol]).advance(1.0)
    assert s.record.faults_fired == ()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_end_trigger_replaces_the_normal_ending(h, protocol):
    s = session(h, protocol, close_when=Trigger(on_end=True), close_code=3005,
                close_reason="Session Cancelled: An error occurred")  # fmt: skip
    s.stream(2.0).text(END[protocol])
    assert s.closed.code == 3005 and TERMINAL[protocol] not in s.kinds
    assert s.record.faults_fired == ("close",)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_garbage_on_end_then_the_normal_ending(h, protocol):
    s = session(h, protocol, malformed_when=Trigger(on_end=True))
    s.stream(2.0)
    before = len(s.texts)
    s.text(END[protocol])
    assert s.texts[before] == MALFORMED_FRAME  # before the ending's own messages
    assert s.kinds[-1] == TERMINAL[protocol] and s.closed.code == 1000


@pytest.mark.parametrize(("protocol", "code", "reason"),
                         [("deepgram", 1011, "NET-0001"), ("assemblyai", 3005, "")])  # fmt: skip
def test_unrequested_terminal_then_close_without_an_error_frame(h, protocol, code, reason):
    s = session(h, protocol, unrequested_terminal_when=Trigger(finals=1), close_code=code,
                close_reason=reason)  # fmt: skip
    s.stream(4.0)
    assert s.closed == Close(code, reason)
    assert s.kinds[-1] == TERMINAL[protocol] and is_final(s.messages[-2])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stop_reading_stops_processing_and_answering(h, protocol):
    s = session(h, protocol, stop_reading_when=Trigger(frames=2))
    s.audio(h.silence(0.1))
    assert s.core.reading
    s.audio(h.silence(0.1))
    assert not s.core.reading and s.record.faults_fired == ("stop_reading",)
    assert not s.core.has_work and s.core.next_deadline() is None
    count = len(s.actions)
    s.core.receive_audio(h.silence(0.1), s.now)  # (the shell would not even read this)
    assert s.core.step(s.now) is None and s.core.take_actions() == []
    assert len(s.actions) == count


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_seconds_zero_fires_at_once_after_the_greeting(h, protocol):
    s = h.core(protocol, faults=Faults(unknown_type_when=Trigger(seconds=0)))
    assert s.core.next_deadline() == 0.0
    s.advance(0.0)
    expected = ["Begin"] if protocol == "assemblyai" else []
    assert s.kinds == [*expected, UNKNOWN_MESSAGE_TYPE]


def test_faults_that_fire_together_run_garbage_first(h):
    s = session(h, "deepgram", drop_when=Trigger(frames=1), malformed_when=Trigger(frames=1),
                close_when=Trigger(frames=1))  # fmt: skip
    s.audio(h.silence(0.1))
    assert s.actions == [Send(MALFORMED_FRAME, "(malformed)"), Close(1011, "")]
    assert s.record.faults_fired == ("malformed", "close")  # the drop found it closing
