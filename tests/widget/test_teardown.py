"""Widget teardown and bounded stops (issue 9: defects 1 and 5).

Before: a view that went away while the browser microphone recorded left the session live on
KeepAlive for ever; the widget's Stop and ``close()`` waited for a hanging connection's full
connect timeout on the kernel's thread.
"""

from __future__ import annotations

import gc
import threading
import time

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import ArraySource, LiveTranscriber
from livetx_widgets.ui import browser_link
from livetx_widgets.ui import widget as widget_module

CHUNK = 1600


def msg(w, content, buffers=()):
    w._on_front_end_msg(w, content, [memoryview(b) for b in buffers])


def feed(w, capture, chunks, first_seq=0):
    for i, pcm in enumerate(chunks):
        seq = first_seq + i
        msg(w, {"type": "audio", "capture": capture, "seq": seq, "offset": seq * CHUNK,
                "samples": CHUNK, "capturedAt": None, "last": False}, [pcm])  # fmt: skip


@pytest.fixture
def browser_widget(make_widget, h):
    def make(**kwargs):
        options = {"provider": "local", "source": "browser", "local_engine": "script",
                   "local_options": {"script": h.script}}  # fmt: skip
        options.update(kwargs)
        return make_widget(**options)

    return make


def test_a_view_that_goes_away_ends_its_capture_and_keeps_the_transcript(browser_widget, h):
    w = browser_widget()
    msg(w, {"type": "start", "capture": "v1-1"})
    feed(w, "v1-1", support.tone_chunks(50))
    msg(w, {"type": "view-gone", "capture": "v1-1"})  # widget.js: the view's cleanup
    assert w.wait(20)
    assert w.status == "stopped" and w.error == ""
    assert w.session.error is None
    assert w.transcript.text == h.script_text
    assert "closed" in w.notice
    assert h.livetx_threads() == []


def test_another_views_departure_does_not_stop_the_capture(browser_widget, h):
    w = browser_widget()
    msg(w, {"type": "start", "capture": "v1-1"})
    msg(w, {"type": "view-gone", "capture": "v2-1"})  # a second view of the same widget
    assert w.session.running
    w.stop(timeout=5)
    assert h.livetx_threads() == []


def test_a_page_that_falls_silent_ends_the_session(browser_widget, h, monkeypatch):
    monkeypatch.setattr(browser_link, "PAGE_GONE_S", 0.5)
    w = browser_widget()
    msg(w, {"type": "start", "capture": "v1-1"})
    feed(w, "v1-1", support.tone_chunks(30))  # then the tab closes without a word
    assert w.wait(20)
    assert w.session.error is None and w.status == "stopped"
    assert "no audio" in w.notice
    assert w.transcript.text.startswith("Hello there")
    assert h.livetx_threads() == []


def test_a_running_cell_holds_off_the_silence_check(browser_widget, h, monkeypatch):
    monkeypatch.setattr(browser_link, "PAGE_GONE_S", 0.3)
    cells = browser_link.CELLS
    w = browser_widget()
    msg(w, {"type": "start", "capture": "v1-1"})
    cells.pre()  # a cell runs: the page's messages wait in the channel
    try:
        time.sleep(0.8)  # longer than PAGE_GONE_S, on purpose: nothing may happen
        assert w.session.running
    finally:
        cells.post()
    feed(w, "v1-1", support.tone_chunks(5))  # the backlog arrives when the cell ends
    assert w.session.running
    assert w.wait(10)  # and silence after that, with the kernel idle, ends it
    assert w.session.error is None


def test_stop_button_and_close_are_bounded_while_connecting(make_widget, h, silent_peer):
    url, accepted = silent_peer
    w = make_widget(provider="deepgram", api_key=h.secret, url=url,
                    source=ArraySource(np.zeros(16000 * 5, dtype=np.int16)),
                    stop_timeout=1.0)  # fmt: skip
    w.start()
    assert h.wait_until(lambda: accepted)
    t0 = time.monotonic()
    msg(w, {"type": "stop"})  # the Stop button, on the kernel's thread
    assert time.monotonic() - t0 < 0.2 * support.TIMING
    assert w.wait(3)
    assert time.monotonic() - t0 < 2.5 * support.TIMING
    assert w.status == "error" and "before the connection" in w.error
    assert h.secret not in w.error

    w.start()
    assert h.wait_until(lambda: len(accepted) == 2)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 2.5 * support.TIMING  # was the 10 s connect timeout
    assert h.livetx_threads() == []


def test_widget_stop_is_bounded_by_its_timeout(make_widget, h, silent_peer):
    url, accepted = silent_peer
    w = make_widget(provider="deepgram", api_key=h.secret, url=url,
                    source=ArraySource(np.zeros(16000 * 5, dtype=np.int16)))  # fmt: skip
    w.start()
    assert h.wait_until(lambda: accepted)
    t0 = time.monotonic()
    w.stop(timeout=1)
    assert time.monotonic() - t0 < 2.0 * support.TIMING
    assert h.livetx_threads() == []


def test_display_start_close_cycles_leave_nothing_behind(no_keys, h, wav5):
    """100 times: a widget is shown (its state serialised), started and closed mid-session."""
    sockets = len(support.socket_inodes())
    threads = threading.active_count()
    for _ in range(100):
        w = LiveTranscriber(provider="local", source=wav5, realtime=True,
                            local_engine="script", local_options={"script": h.script},
                            stop_timeout=2.0)  # fmt: skip
        assert w._repr_mimebundle_()  # what display() sends
        w.start()
        w.close()
        assert w.session.running is False
    gc.collect()
    assert h.wait_until(lambda: h.livetx_threads() == [], 5 * h.TIMING), h.livetx_threads()
    assert threading.active_count() <= threads
    assert h.wait_until(lambda: len(support.socket_inodes()) <= sockets, 5 * h.TIMING)
    assert not widget_module._RUNNING


def test_the_collection_finalizer_stops_running_sessions(no_keys, h, wav5):
    """What runs when a widget is garbage-collected without close() (ipywidgets >= 8.1
    with weak references): its running sessions are asked to stop, without blocking."""
    w = LiveTranscriber(provider="local", source=wav5, realtime=True,
                        local_engine="script", local_options={"script": h.script})  # fmt: skip
    w.start()
    session = w.session
    t0 = time.monotonic()
    widget_module._end_sessions(w._sessions, 2.0)
    assert time.monotonic() - t0 < 0.2 * support.TIMING
    assert session.wait(5)
    assert session.state == "stopped"
    w.close()
    assert h.wait_until(lambda: h.livetx_threads() == [], 5 * h.TIMING)
