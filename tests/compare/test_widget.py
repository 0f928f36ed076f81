"""CompareTranscriber without a kernel: what the front end would receive, over real sessions.

The widget's comm is ipywidgets' dummy comm; a recorder replaces its ``publish_msg`` (as in
``tests/widget``), so the tests read the state updates and custom messages as sent.
"""

from __future__ import annotations

import json
import threading
import time
import wave

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import AudioDeviceError, BrowserMicrophone, CompareTranscriber
from livetx_widgets.server import LocalServer
from livetx_widgets.server.faults import Faults, Trigger

SECRET = "sk-livetx-compare-0123456789abcdef"
TEXT = [t["text"] for t in support.TWO_TURNS["turns"]]


class Recorder:
    def __init__(self, widget) -> None:
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        widget.comm.publish_msg = self._publish  # type: ignore[method-assign]

    def _publish(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        with self._lock:
            self.messages.append(json.loads(json.dumps(data, default=str)))

    def custom(self, kind: str) -> list[dict]:
        with self._lock:
            return [
                m["content"]
                for m in self.messages
                if m.get("method") == "custom" and m["content"].get("type") == kind
            ]

    def text(self) -> str:
        with self._lock:
            return json.dumps(self.messages)


@pytest.fixture
def servers():
    with (
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False) as good,
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False,
                    faults=Faults(refuse_auth=True)) as bad,
    ):  # fmt: skip
        yield good, bad


def test_one_column_per_provider_and_the_failing_one_says_why(servers, turns_audio):
    good, bad = servers
    before = support.livetx_threads(exclude=support.SERVER_THREADS)
    w = CompareTranscriber(
        [("deepgram", {"url": good.url}), ("assemblyai", {"url": bad.url}),
         ("deepgram", {"url": good.url, "label": "second", "model": "nova-2"})],
        source=turns_audio, realtime=False, pace=False, api_key=SECRET,
    )  # fmt: skip
    rec = Recorder(w)
    try:
        assert [c["label"] for c in w.columns] == ["deepgram", "assemblyai", "second"]
        w.start()
        assert w.wait(20 * support.TIMING)
        columns = {c["label"]: c for c in w.columns}
        assert w.status == "stopped" and w.running is False
        assert columns["deepgram"]["status"] == "stopped" and columns["deepgram"]["n_finals"] == 2
        assert columns["second"]["model"] == "nova-2"
        assert columns["assemblyai"]["status"] == "error"
        assert columns["assemblyai"]["error"].startswith("API key refused")
        # Finals travel per column as messages with only new segments; each once.
        sent: dict[str, list[str]] = {}
        for msg in rec.custom("finals"):
            for label, segments in msg["columns"].items():
                sent.setdefault(label, []).extend(s["text"] for s in segments)
        assert sent == {"deepgram": TEXT, "second": TEXT}
        # A view that renders gets the last rows of every column.
        w._on_front_end_msg(w, {"type": "hello"}, [])
        (tail,) = rec.custom("tail")
        assert [s["text"] for s in tail["columns"]["second"]] == TEXT
        assert tail["columns"]["assemblyai"] == []
        summary = w.summary().set_index("provider")
        assert summary.loc["deepgram", "finals"] == 2
        assert summary.loc["assemblyai", "error"].startswith("AuthenticationError")
        assert list(w.aligned().columns) == ["start", "end", "deepgram", "assemblyai", "second"]
        assert SECRET not in rec.text() and SECRET not in repr(w)
    finally:
        w.close()
    assert support.livetx_threads(exclude=support.SERVER_THREADS) == before


def test_start_and_stop_from_the_front_end(servers, turns_audio):
    good, _ = servers
    w = CompareTranscriber([("deepgram", {"url": good.url}), ("assemblyai", {"url": good.url})],
                           source=turns_audio, api_key="k")  # fmt: skip
    Recorder(w)
    try:
        w._on_front_end_msg(w, {"type": "start"}, [])
        assert w.running
        assert support.wait_until(
            lambda: all(c["status"] == "live" for c in w.columns), 10 * support.TIMING
        )
        # Live is connected; stop once both servers have heard some audio (a loaded machine
        # can take longer than that to send the first chunk).
        assert support.wait_until(
            lambda: len(good.sessions) == 2 and all(r.audio_bytes for r in good.sessions),
            10 * support.TIMING,
        )
        t0 = time.monotonic()
        w._on_front_end_msg(w, {"type": "stop"}, [])  # returns at once; the flusher sees the end
        assert time.monotonic() - t0 < 0.5 * support.TIMING
        assert w.wait(10 * support.TIMING)
        assert w.status == "stopped"
        assert {c["status"] for c in w.columns} == {"stopped"}
        # Real time: the stop came before the file's end, and both providers got as far.
        audio_s = {r.audio_bytes for r in good.sessions}
        assert len(audio_s) == 1 and 0 < audio_s.pop() < turns_audio.nbytes
    finally:
        w.close()


def test_the_same_configuration_errors_as_the_session(turns_audio):
    with pytest.raises(TypeError, match=r"'modle' \(did you mean 'model'\?\)"):
        CompareTranscriber(["deepgram"], source=turns_audio, modle="x")
    with pytest.raises(TypeError, match=r"'max_row' \(did you mean 'max_rows'\?\)"):
        CompareTranscriber(["deepgram"], source=turns_audio, max_row=3)
    with pytest.raises(TypeError, match=r"providers\[0\] \(deepgram\).*'lable'"):
        CompareTranscriber([("deepgram", {"lable": "x"})], source=turns_audio)
    from livetx_widgets.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"providers=\[\.\.\.\]"):
        CompareTranscriber(provider="deepgram", source="browser")


def test_play_and_click_to_play_give_the_exact_span(servers, turns_audio):
    good, _ = servers
    w = CompareTranscriber([("deepgram", {"url": good.url}), ("assemblyai", {"url": good.url})],
                           source=turns_audio, realtime=False, pace=False, api_key="k")  # fmt: skip
    rec = Recorder(w)
    published: list[tuple[dict, list]] = []
    w.comm.publish_msg = lambda _t, data=None, metadata=None, buffers=None, **k: published.append(
        (data, buffers or [])
    )  # keep the binary buffers too
    try:
        w.start()
        assert w.wait(20 * support.TIMING)
        segment = w.transcripts["assemblyai"][1]
        exact = turns_audio[round(segment.start * 16000) : round(segment.end * 16000)]
        clip = w.play("assemblyai", 1)
        assert clip.data[44:] == exact.tobytes()  # a WAV of exactly those samples
        assert w.play(start=1.0, end=1.5).data[44:] == turns_audio[16000:24000].tobytes()
        w._on_front_end_msg(w, {"type": "play", "label": "assemblyai", "id": 1, "run": w.run,
                                "view": "v1", "req": 7}, [])  # fmt: skip
        (data, buffers) = next((d, b) for d, b in published
                               if d.get("content", {}).get("type") == "clip")  # fmt: skip
        reply = data["content"]
        assert (reply["view"], reply["req"], reply["label"], reply["id"]) == (
            "v1",
            7,
            "assemblyai",
            1,
        )
        assert bytes(buffers[0])[44:] == exact.tobytes()
        assert reply["start"] == round(segment.start, 3) and reply["end"] == round(segment.end, 3)
        w._on_front_end_msg(w, {"type": "play", "label": "nope", "id": 0, "run": w.run,
                                "view": "v1", "req": 8}, [])  # fmt: skip
        errors = [d["content"] for d, _ in published
                  if d.get("content", {}).get("req") == 8]  # fmt: skip
        assert errors and errors[0]["error"].startswith("Cannot play this segment")
    finally:
        w.close()
    assert rec is not None


def test_a_closed_widget_that_ran_is_garbage_collected(servers, turns_audio):
    """The collection finalizer holds the runs weakly: the runs hold the widget's listeners,
    so a strong reference there kept every widget that ever started alive."""
    import gc
    import weakref

    good, _bad = servers
    w = CompareTranscriber(["deepgram", "assemblyai"], source=turns_audio, realtime=False,
                           pace=False, api_key=SECRET, url=good.url)  # fmt: skip
    w.start()
    assert w.wait(20 * support.TIMING)
    w.close()
    ref = weakref.ref(w)
    del w
    gc.collect()
    assert ref() is None


def test_a_lagging_provider_says_so_in_its_column_and_is_cut_off(servers):
    """AssemblyAI paced at real time, Deepgram as fast as it goes, 40 s of audio: the paced
    column first says how far behind it is, then shows why it was stopped; the other column
    finishes normally. (The lag grows at the fast side's speed, tens of seconds per second:
    a 30 s bound leaves many 50 ms widget frames in which "s behind" shows; with 5 s and 12 s
    of audio a loaded run could go from shown-lag to cut-off within one frame.)"""
    good, _ = servers
    w = CompareTranscriber(
        [("deepgram", {"url": good.url}), ("assemblyai", {"url": good.url, "pace": True})],
        source=support.tone(40.0), realtime=False, pace=False, api_key="k", max_lag_s=30,
    )  # fmt: skip
    rec = Recorder(w)
    try:
        w.start()
        assert w.wait(30 * support.TIMING)
        columns = {c["label"]: c for c in w.columns}
        assert columns["deepgram"]["status"] == "stopped" and columns["deepgram"]["error"] == ""
        assert "fell more than 30 s behind" in columns["assemblyai"]["error"]
        shown = [
            c["status_text"]
            for m in rec.messages
            if m.get("method") == "update"
            for c in m.get("state", {}).get("columns", [])
            if c["label"] == "assemblyai"
        ]
        assert any("s behind)" in text for text in shown), shown
    finally:
        w.close()


# -- the browser's microphone: one page capture teed to every provider --------------------------
MESSAGE = "Microphone permission was denied. Allow the microphone for this page."


def _browser_widget(providers, **config):
    w = CompareTranscriber(providers, source="browser", api_key=SECRET, **config)
    return w, Recorder(w), support.Page(w)


def test_the_browser_microphone_feeds_every_provider_the_same_audio(servers, tmp_path):
    good, _ = servers
    before = support.livetx_threads(exclude=support.SERVER_THREADS)
    w, rec, page = _browser_widget([
        ("deepgram", {"url": good.url, "record_to": tmp_path / "dg.wav"}),
        # pace=False: AssemblyAI's pacing (5 s of real time) is not what this is about
        ("assemblyai", {"url": good.url, "record_to": tmp_path / "aai.wav", "pace": False}),
    ])  # fmt: skip
    try:
        assert w.source_kind == "browser" and w.source_label == "Browser microphone"
        page.start()
        assert rec.custom("start-result") == [{"type": "start-result", "capture": page.capture,
                                               "ok": True}]  # fmt: skip
        mic = w.compare.source
        assert isinstance(mic, BrowserMicrophone)
        chunks = support.tone_chunks(50)  # 5 s, a burst as after a busy cell
        for seq, pcm in enumerate(chunks):
            page.chunk(seq, pcm)
        # The flusher acknowledges the highest chunk received, as LiveTranscriber's does.
        assert support.wait_until(lambda: w.capture_stats.get("last_seq") == 49,
                                  10 * support.TIMING)  # fmt: skip
        assert w.capture_stats["capture"] == page.capture
        page.stop()  # the page sent its last chunk first: everything queued is transcribed
        assert w.wait(30 * support.TIMING)
        assert w.status == "stopped" and w.error == "" and not w.running
        assert {label: t.text for label, t in w.transcripts.items()} == {
            "deepgram": " ".join(TEXT), "assemblyai": " ".join(TEXT)
        }
        sent = np.frombuffer(b"".join(chunks), "<i2")
        for name in ("dg", "aai"):  # byte-identical audio to every provider
            with wave.open(str(tmp_path / f"{name}.wav"), "rb") as f:
                recorded = np.frombuffer(f.readframes(f.getnframes()), "<i2")
            assert np.array_equal(recorded[: sent.size], sent), name
            assert not recorded[sent.size :].any()
        for meta in w.compare.metadata.values():
            assert meta.audio_sent_s == pytest.approx(5.0, abs=0.06)
            assert meta.raw["source"]["chunks"] == 50 and meta.raw["source"]["gaps"] == 0
        assert rec.custom("capture-stop") == []
    finally:
        w.close()
    assert support.livetx_threads(exclude=support.SERVER_THREADS) == before


def test_a_denied_browser_microphone_shows_and_starts_nothing(servers):
    """The page asks to start only once the microphone is granted; denied, it says why."""
    good, _ = servers
    w, _rec, page = _browser_widget([("deepgram", {"url": good.url}), "assemblyai"],
                                    url=good.url)  # fmt: skip
    try:
        page.capture_error(MESSAGE)
        assert w.compare is None and not w.running and good.sessions == []
        assert w.status == "error" and w.error == f"Audio input problem: {MESSAGE}"
        # Granted the next time: the error goes, the run starts.
        page2 = support.Page(w, "view1-2")
        page2.start()
        assert w.running and w.error == "" and w.compare is not None
        w.stop(5 * support.TIMING)
    finally:
        w.close()


def test_a_capture_that_breaks_while_running_ends_every_provider(servers):
    good, _ = servers
    w, rec, page = _browser_widget([("deepgram", {"url": good.url}), ("assemblyai",
                                    {"url": good.url})])  # fmt: skip
    try:
        w.start()  # from code: the page is asked to capture; its first capture is bound
        assert [m["type"] for m in rec.custom("capture")] == ["capture"]
        page.chunk(0, support.tone_chunks(1)[0])
        page.capture_error(MESSAGE)
        assert w.wait(20 * support.TIMING)
        assert all(isinstance(e, AudioDeviceError) for e in w.compare.errors.values())
        assert {c["error"] for c in w.columns} == {f"Audio input problem: {MESSAGE}"}
    finally:
        w.close()


def test_stop_from_code_transcribes_what_the_page_delivered(servers):
    good, _ = servers
    # pace=False: AssemblyAI's pacing (5 s of real time) is not what this test is about
    w, _rec, page = _browser_widget([("deepgram", {"url": good.url}), ("assemblyai",
                                     {"url": good.url, "pace": False})])  # fmt: skip
    try:
        page.start()
        for seq, pcm in enumerate(support.tone_chunks(50)):
            page.chunk(seq, pcm)
        transcripts = w.stop()
        assert {label: t.text for label, t in transcripts.items()} == {
            "deepgram": " ".join(TEXT), "assemblyai": " ".join(TEXT)
        }
        assert w.status == "stopped" and not w.running
        page.chunk(50, support.tone_chunks(1)[0])  # after Stop: no run takes it
        assert w.compare.source.stats()["chunks"] == 50
    finally:
        w.close()


def test_a_provider_that_fails_mid_way_does_not_stop_the_capture(servers):
    good, _ = servers
    with LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False,
                     faults=Faults(close_when=Trigger(frames=5))) as flaky:  # fmt: skip
        w, rec, page = _browser_widget([
            ("deepgram", {"url": good.url}),
            ("assemblyai", {"url": flaky.url, "max_reconnects": 0}),
        ])  # fmt: skip
        try:
            page.start()
            chunks = support.tone_chunks(50)
            for seq in range(20):
                page.chunk(seq, chunks[seq])
            assert support.wait_until(lambda: w.compare.state_of("assemblyai") == "error",
                                      10 * support.TIMING)  # fmt: skip
            assert w.running  # the capture goes on for the other provider
            for seq in range(20, 50):
                page.chunk(seq, chunks[seq])
            assert support.wait_until(lambda: w.capture_stats.get("last_seq") == 49,
                                      10 * support.TIMING)  # fmt: skip
            page.stop()
            assert w.wait(30 * support.TIMING)
            assert rec.custom("capture-stop") == []
            assert w.transcripts["deepgram"].text == " ".join(TEXT)
            assert w.compare.metadata["deepgram"].audio_sent_s == pytest.approx(5.0, abs=0.06)
            columns = {c["label"]: c for c in w.columns}
            assert columns["assemblyai"]["status"] == "error" and columns["assemblyai"]["error"]
            assert columns["deepgram"]["error"] == ""
        finally:
            w.close()


def test_the_compare_module_carries_the_capture_and_the_shared_view_code():
    """capture.js and common.js (the same rows, clip player and browser microphone as
    LiveTranscriber's view) come before compare.js, each piece once in each module."""
    from livetx_widgets import LiveTranscriber

    w = CompareTranscriber(["local"], source="browser")
    single = LiveTranscriber(provider="local", source="browser")
    try:
        for esm in (w._esm, single._esm):
            esm = esm if isinstance(esm, str) else esm.read_text()
            for name in ("export async function startCapture", "function livetxMic(",
                         "function livetxRows(", "function livetxClipPlayer(", "function h("):
                assert esm.count(name) == 1, name
            assert esm.index("function livetxMic(") < esm.index("function render(")
    finally:
        w.close()
        single.close()
