"""The browser microphone, kernel side: the page's messages (start with a capture id, numbered
audio chunks with binary buffers, stop, capture errors) fed to the widget exactly as ipywidgets
hands them over (``buffers`` are memoryviews), with a real session on the offline script
engine. The page itself is tested in a real browser in ``tests/ui/``.
"""

from __future__ import annotations

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets import AudioDeviceError, BrowserMicrophone
from livetx_widgets.errors import ConfigurationError

Page = support.Page  # sends what widget.js sends, through the widget's message handler


@pytest.fixture
def browser_widget(make_widget, h):
    def make(**kwargs):
        options = {
            "provider": "local", "source": "browser", "local_engine": "script",
            "local_options": {"script": h.script},
        }  # fmt: skip
        options.update(kwargs)
        return make_widget(**options)

    return make


def test_chunks_from_the_page_are_transcribed_and_acknowledged(browser_widget, h):
    w = browser_widget()
    assert w.source_kind == "browser" and w.notice == ""
    page = Page(w)
    page.start()
    assert w.rec.custom("start-result") == [{"type": "start-result", "capture": page.capture,
                                             "ok": True}]  # fmt: skip
    assert isinstance(w.session.source, BrowserMicrophone)
    for seq, pcm in enumerate(support.tone_chunks(50)):  # 5 s, as fast as messages can go (a burst)
        page.chunk(seq, pcm)
    # The flusher acknowledges the highest chunk received.
    assert h.wait_until(lambda: w.capture_stats.get("last_seq") == 49, 10 * h.TIMING)
    assert w.capture_stats["capture"] == page.capture
    page.stop()
    assert w.wait(30)
    assert w.status == "stopped" and w.error == ""
    assert w.transcript.text == h.script_text  # both finals: nothing was lost at Stop
    meta = w.metadata
    assert meta.audio_sent_s == pytest.approx(5.0, abs=0.06)
    stats = meta.raw["source"]
    assert stats["chunks"] == 50 and stats["gaps"] == 0 and stats["duplicates"] == 0
    assert stats["received_s"] == 5.0 and meta.error is None
    assert h.livetx_threads() == []


def test_a_lost_chunk_becomes_silence_and_a_repeat_is_dropped(browser_widget, h):
    w = browser_widget()
    page = Page(w)
    page.start()
    chunks = support.tone_chunks(50)
    for seq, pcm in enumerate(chunks):
        if seq in (20, 21, 22):
            continue  # lost on the way
        page.chunk(seq, pcm)
        if seq == 30:
            page.chunk(30, pcm)  # delivered twice
    page.stop()
    assert w.wait(30)
    stats = w.metadata.raw["source"]
    assert stats["gaps"] == 1 and stats["gap_s"] == pytest.approx(0.3)
    assert stats["duplicates"] == 1 and stats["too_late"] == 0
    # The clock is kept: 4.7 s of audio arrived, 5.0 s went to the provider.
    assert w.metadata.audio_sent_s == pytest.approx(5.0, abs=0.06)
    assert w.transcript.text == h.script_text
    assert w.capture_stats["gap_s"] == pytest.approx(0.3)


def test_chunks_handled_out_of_order_are_put_back_in_order(browser_widget, h):
    """What ipykernel 7.4 does after a busy cell: the burst's newest chunks first."""
    w = browser_widget()
    page = Page(w)
    page.start()
    chunks = support.tone_chunks(50)
    order = [*range(0, 20), *range(35, 50), *range(20, 35)]
    for seq in order:
        page.chunk(seq, chunks[seq])
    page.stop()
    assert w.wait(30)
    stats = w.metadata.raw["source"]
    assert stats["gaps"] == 0 and stats["reordered"] == 15 and stats["duplicates"] == 0
    assert w.transcript.text == h.script_text


def test_audio_of_another_capture_is_refused(browser_widget, h):
    w = browser_widget()
    page = Page(w, "viewA-1")
    page.start()
    other = Page(w, "viewB-1")
    other.chunk(0, support.tone_chunks(1)[0])
    assert w.rec.custom("capture-stop") == [{"type": "capture-stop", "capture": "viewB-1"}]
    assert w.session.source.stats()["chunks"] == 0
    page.chunk(0, support.tone_chunks(1)[0])
    assert w.session.source.stats()["chunks"] == 1
    w.stop(5)


def test_start_from_code_asks_the_page_and_binds_the_first_capture(browser_widget, h):
    w = browser_widget()
    w.start()
    assert [m["type"] for m in w.rec.custom("capture")] == ["capture"]
    first, second = Page(w, "v1-1"), Page(w, "v2-1")  # the widget shown twice
    first.chunk(0, support.tone_chunks(1)[0])
    second.chunk(0, support.tone_chunks(1)[0])
    assert [m["capture"] for m in w.rec.custom("capture-stop")] == ["v2-1"]
    assert w.session.source.stats()["chunks"] == 1
    w.stop(5)


def test_stop_from_code_transcribes_what_is_queued(browser_widget, h):
    w = browser_widget()
    page = Page(w)
    page.start()
    for seq, pcm in enumerate(support.tone_chunks(50)):
        page.chunk(seq, pcm)
    transcript = w.stop()
    assert transcript.text == h.script_text
    assert w.status == "stopped" and not w.running
    assert w.metadata.audio_sent_s == pytest.approx(5.0, abs=0.06)


def test_a_capture_error_ends_the_session_in_plain_words(browser_widget, h):
    w = browser_widget()
    page = Page(w)
    page.start()
    page.chunk(0, support.tone_chunks(1)[0])
    message = "Microphone permission was denied. Allow the microphone for this page."
    page.msg({"type": "capture-error", "capture": page.capture, "kind": "denied",
              "message": message})  # fmt: skip
    assert w.wait(30)
    assert isinstance(w.session.error, AudioDeviceError)
    assert w.status == "error"
    assert w.error == f"Audio input problem: {message}"


def test_start_that_fails_says_so_to_the_page(browser_widget, monkeypatch):
    w = browser_widget(provider="deepgram")  # no key anywhere
    assert w.needs_key
    page = Page(w)
    page.start()
    assert w.rec.custom("start-result")[-1]["ok"] is False
    assert "No API key for deepgram" in w.error


def test_malformed_audio_messages_are_ignored(browser_widget):
    w = browser_widget()
    page = Page(w)
    page.start()
    pcm = support.tone_chunks(1)[0]
    page.msg({"type": "audio", "capture": page.capture, "seq": "x"}, [pcm])
    page.msg({"type": "audio", "capture": page.capture, "seq": -1}, [pcm])
    page.msg({"type": "audio", "capture": page.capture, "seq": 0}, [])
    page.msg({"type": "audio", "capture": page.capture, "seq": 0}, [bytes(64000)])  # too big
    assert w.session.source.stats()["chunks"] == 0
    page.msg({"type": "audio", "capture": page.capture, "seq": 0, "offset": "?"}, [pcm])
    assert w.session.source.stats()["chunks"] == 1  # offset unknown: assumed contiguous
    w.stop(5)


def test_a_browser_microphone_object_is_the_browser_source(make_widget):
    mic = BrowserMicrophone(max_backlog_s=30)
    w = make_widget(provider="local", source=mic, local_engine="script",
                    local_options={"script": {"text": "hi"}})  # fmt: skip
    assert w.source_kind == "browser"
    Page(w).start()
    assert w.session.source is mic
    w.stop(5)


def test_receive_checks_its_arguments():
    mic = BrowserMicrophone()
    with pytest.raises(ConfigurationError):
        mic.receive(b"\0\0", seq=-1)


def test_the_front_end_module_carries_the_capture_code(make_widget):
    w = make_widget(provider="local", source="browser")
    esm = w._esm if isinstance(w._esm, str) else w._esm.read_text()
    assert "export async function startCapture" in esm and "export default { render }" in esm
    assert esm.index("startCapture") < esm.index("function render")


def test_the_built_front_end_module_is_current():
    from livetx_widgets.ui import assets

    assert assets.BUILT.read_text() == assets.build(), "run: python livetx_widgets/ui/assets.py"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ipykernel.comm.Comm, on purpose
def test_messages_stay_on_the_front_ends_subshell():
    """ipykernel 7 routes a comm's incoming messages to the subshell of its last outgoing one
    (the flusher's: the main shell, blocked by a running cell); the widget keeps the front
    end's choice instead."""
    comm_mod = pytest.importorskip("ipykernel.comm")
    from livetx_widgets.ui.widget import _keep_front_end_route

    comm = comm_mod.Comm(target_name="livetx-test", primary=True)  # no kernel: nothing sent
    if not hasattr(comm, "_reply_subshell_for"):
        pytest.skip("this ipykernel routes no comm messages to subshells")
    comm._reply_subshell_id = None  # the last outgoing message came from the main shell
    assert comm._reply_subshell_for({}, "front-end-subshell") is None  # what ipykernel does
    _keep_front_end_route(comm)
    assert comm._reply_subshell_for({}, "front-end-subshell") == "front-end-subshell"
    _keep_front_end_route(None)  # a closed widget has no comm


def batch(page: Page, first: int, chunks: list[bytes]) -> None:
    """What the page sends for audio its send window kept (common.js): consecutive chunks in
    one message, the first one's seq and offset, each one's samples and capture time."""
    page.msg(
        {
            "type": "audio", "capture": page.capture, "seq": first,
            "offset": first * support.PAGE_CHUNK, "samples": sum(len(c) // 2 for c in chunks),
            "capturedAt": page.t0 + 100 * (first + len(chunks)), "last": False,
            "chunks": [[len(c) // 2, page.t0 + 100 * (first + i + 1)]
                       for i, c in enumerate(chunks)],
        },
        [b"".join(chunks)],
    )  # fmt: skip


def test_batched_chunks_are_split_back_at_their_places_and_times(browser_widget, h):
    """After a busy cell the page sends what it kept ten chunks to a message: each is the
    numbered chunk it was (counted, acknowledged, at its capture time), nothing is lost."""
    w = browser_widget()
    page = Page(w)
    page.start()
    chunks = support.tone_chunks(50)
    for seq in range(10):
        page.chunk(seq, chunks[seq])
    batch(page, 10, chunks[10:20])
    batch(page, 20, chunks[20:27])  # the window kept 7: a shorter batch
    for seq in range(27, 50):
        page.chunk(seq, chunks[seq])
    assert h.wait_until(lambda: w.capture_stats.get("last_seq") == 49, 10 * h.TIMING)
    source = w.session.source
    # Chunk 14 ends at 1.5 s of the stream and was captured at t0 + 1.5 s.
    assert source.captured_at(1.5) == pytest.approx(page.t0 / 1000 + 1.5, abs=1e-3)
    assert source.captured_at(2.65) == pytest.approx(page.t0 / 1000 + 2.65, abs=1e-3)
    page.stop()
    assert w.wait(30)
    assert w.transcript.text == h.script_text
    stats = w.metadata.raw["source"]
    assert stats["chunks"] == 50 and stats["gaps"] == 0 and stats["duplicates"] == 0
    assert stats["received_s"] == 5.0
    assert w.metadata.audio_sent_s == pytest.approx(5.0, abs=0.06)


def test_a_lost_batch_is_silence_of_its_length(browser_widget, h):
    w = browser_widget()
    page = Page(w)
    page.start()
    chunks = support.tone_chunks(40)
    batch(page, 0, chunks[0:10])
    batch(page, 20, chunks[20:30])  # 10..19 never come
    batch(page, 30, chunks[30:40])
    page.stop()
    assert w.wait(30)
    stats = w.metadata.raw["source"]
    assert stats["chunks"] == 30 and stats["gaps"] == 1
    assert stats["gap_s"] == pytest.approx(1.0)
    assert w.metadata.audio_sent_s == pytest.approx(4.0, abs=0.06)


def test_malformed_batches_are_ignored(browser_widget):
    w = browser_widget()
    page = Page(w)
    page.start()
    pcm = b"".join(support.tone_chunks(2))
    base = {"type": "audio", "capture": page.capture, "seq": 0, "offset": 0, "samples": 3200}
    for chunks in (
        None, "x", [], [[1600]], [[1600, 0], [1600]], [[1600, 0], [1599, 0]],  # sum is off
        [[3200, 0], [0, 0]], [[True, 0], [3199, 0]], [[-1600, 0], [4800, 0]],
        [["1600", 0], [1600, 0]], [[160, 0]] * 11 + [[1440, 0]],  # more than ten chunks
    ):
        page.msg({**base, "chunks": chunks}, [pcm])
    page.msg({**base, "seq": 2**53 - 1, "chunks": [[1600, 0], [1600, 0]]}, [pcm])  # seq too big
    assert w.session.source.stats()["chunks"] == 0
    # Capture times that are not numbers are unknown, the audio is still taken.
    page.msg({**base, "chunks": [[1600, "?"], [1600, float("nan")]]}, [pcm])
    assert w.session.source.stats()["chunks"] == 2
    w.stop(5)
