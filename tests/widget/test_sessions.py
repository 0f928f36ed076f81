"""Real sessions driven through the widget: results, start/stop cycles, errors in plain words."""

from __future__ import annotations

import pytest

from livetx_widgets import AudioDeviceError, ConnectError, ConnectionLostError, QueueSource
from livetx_widgets.errors import AuthenticationError, ConfigurationError
from livetx_widgets.server import Faults, LocalServer


def test_file_session_fills_transcript_traits_and_messages(script_widget, h):
    w = script_widget()
    w.start()
    assert w.wait(30)
    assert w.status == "stopped" and not w.running and w.error == ""
    assert w.transcript.text == h.script_text
    df = w.to_dataframe()
    assert list(df["text"]) == [t["text"] for t in h.script["turns"]]
    assert list(df["speaker"].astype(str)) == ["0", "1"]
    assert w.n_finals == 2 and w.n_partials > 0
    assert w.progress == 1.0 and w.time_left == 0.0
    assert w.session_id and w.session_id == w.metadata.session_id
    assert w.partial == ""
    # The front end got both finals, as segment dicts, once each, in order.
    sent = [s for m in w.rec.custom("finals") for s in m["segments"]]
    assert [s["text"] for s in sent] == list(df["text"])
    assert [s["id"] for s in sent] == [0, 1]
    assert all(m["run"] == 1 and m["total"] <= 2 for m in w.rec.custom("finals"))
    # The status went through connecting and ended stopped.
    states = [m[2]["state"].get("status") for m in w.rec.updates()]
    assert states[0] == "connecting" and [s for s in states if s][-1] == "stopped"
    assert h.livetx_threads() == []


def test_start_again_starts_a_fresh_session(script_widget, h):
    w = script_widget()
    w.start()
    first = w.session
    assert w.wait(30)
    w.start()
    second = w.session
    assert second is not first and w.run == 2
    assert w.wait(30)
    assert w.sessions == [first, second]
    assert len(first.transcript) == 2 and len(second.transcript) == 2  # not accumulated
    assert w.transcript is second.transcript
    assert {m["run"] for m in w.rec.custom("finals")} == {1, 2}


def test_start_stop_cycles_leave_no_thread(script_widget, h):
    for _ in range(3):
        w = script_widget(source=QueueSource())  # live: runs until stopped
        w.start()
        assert h.wait_until(lambda w=w: w.status == "live")
        assert "livetx-widget-flusher" in h.livetx_threads()
        w.stop(timeout=5)
        assert w.status == "stopped" and not w.running
        assert h.livetx_threads() == []


def test_stop_and_pause_messages_from_the_front_end(script_widget, h):
    w = script_widget(source=QueueSource())
    w._on_front_end_msg(w, {"type": "start"}, [])
    assert h.wait_until(lambda: w.status == "live")
    w._on_front_end_msg(w, {"type": "pause"}, [])
    assert h.wait_until(lambda: w.status == "paused")
    w._on_front_end_msg(w, {"type": "resume"}, [])
    assert h.wait_until(lambda: w.status == "live")
    w._on_front_end_msg(w, {"type": "stop"}, [])  # returns at once; the flusher sees the end
    assert w.wait(10)
    assert w.status == "stopped" and h.livetx_threads() == []


def test_start_while_running_does_nothing(script_widget, h):
    w = script_widget(source=QueueSource())
    w.start()
    session = w.session
    w.start()
    assert w.session is session and w.run == 1
    w.stop(timeout=5)


def test_no_device_is_shown_and_raised_from_code(make_widget, h):
    w = make_widget(provider="local", source="kernel", device="no-such-microphone-xyz")
    with pytest.raises(AudioDeviceError):
        w.start()
    assert w.status == "error" and not w.running
    assert w.error.startswith("Audio input problem: ")
    assert isinstance(w.session.error, AudioDeviceError)
    assert w.last_error is w.session.error
    assert h.livetx_threads() == []


def test_start_button_shows_the_error_without_raising(make_widget, h):
    w = make_widget(provider="local", source="kernel", device="no-such-microphone-xyz")
    w._on_front_end_msg(w, {"type": "start"}, [])  # what the Start button sends
    assert w.status == "error" and "Audio input problem" in w.error


def test_missing_file_is_shown(make_widget, tmp_path):
    w = make_widget(provider="local", source="file", file=tmp_path / "nope.wav")
    with pytest.raises(ConfigurationError):
        w.start()
    assert w.error.startswith("Cannot start: ") and "nope.wav" in w.error
    assert isinstance(w.last_error, ConfigurationError)


def test_refused_key_is_shown_and_kept(make_widget, wav5, h):
    with LocalServer(engine="script", script=h.script, api_key="right", rate_limit=False) as srv:
        w = make_widget(provider="deepgram", url=srv.url, api_key="wrong", source=wav5,
                        realtime=False)  # fmt: skip
        w.start()  # connecting happens in the background: no exception here
        assert w.wait(15)
    assert w.status == "error"
    assert w.error.startswith("API key refused: ")
    assert "wrong" not in w.error
    assert isinstance(w.session.error, AuthenticationError)


def test_unreachable_server_is_shown(make_widget, wav5, h):
    with LocalServer(engine="script") as srv:
        url = srv.url  # a port that was just released: nothing listens there now
    w = make_widget(provider="deepgram", url=url, api_key="k", source=wav5, realtime=False)
    w.start()
    assert w.wait(30)
    assert w.status == "error" and w.error.startswith("Could not connect")
    assert isinstance(w.session.error, ConnectError)


@pytest.mark.slow  # ~11 s of reconnect back-off
def test_connection_lost_for_good_keeps_the_transcript(make_widget, tmp_path, h):
    wav = h.tone_wav(tmp_path / "ten.wav", 10.0)
    faults = Faults(drop_after_frames=70)  # 3.5 s into each connection (after sentence 1)
    srv = LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False)
    srv.start()
    try:
        # Real-time pacing: the first final (at 2.7 s of audio) is sent 0.8 s before the drop.
        # As fast as possible, the drop can abort the socket before that final is flushed.
        w = make_widget(provider="deepgram", url=srv.url, api_key="k", source=wav,
                        realtime=True)  # fmt: skip
        w.start()
        assert h.wait_until(lambda: len(w.transcript) >= 1, timeout=15 * h.TIMING)
        srv.wait_for(lambda records: any(r.done for r in records), timeout=15)
    finally:
        srv.close()  # no server any more: every reconnect attempt is refused
    assert w.wait(40)
    assert w.status == "error" and w.error.startswith("Connection lost: ")
    assert isinstance(w.session.error, ConnectionLostError)
    assert w.transcript.segments[0].text == h.script["turns"][0]["text"]
    assert w.to_dataframe()["text"].iloc[0] == h.script["turns"][0]["text"]
    assert h.livetx_threads() == []
