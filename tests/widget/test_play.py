"""Playback from the widget: ``play()`` and the clip a clicked row gets, with exact samples.

Real sessions (offline script engine); the front end is the test: it sends what
``widget.js`` sends on a click (``{"type": "play", ...}``) and reads the reply and its buffer
as the page would.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from livetx_widgets import AudioNotKeptError, QueueSource, SegmentNotFoundError
from livetx_widgets.ui import playback


def wav_samples(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(bytes(data))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def file_samples(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def span(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[round(start * 16000) : round(end * 16000)]


class Clips:
    """The custom messages with buffers the kernel sends (the conftest recorder drops them)."""

    def __init__(self, widget) -> None:
        self.sent: list[tuple[dict, list]] = []
        inner = widget.comm.publish_msg

        def publish(msg_type, data=None, metadata=None, buffers=None, **keys):
            content = (data or {}).get("content") or {}
            if data and data.get("method") == "custom" and content.get("type") == "clip":
                self.sent.append((content, list(buffers or [])))
            return inner(msg_type, data=data, metadata=metadata, buffers=buffers, **keys)

        widget.comm.publish_msg = publish

    def click(self, widget, segment_id, *, run=None, req=1) -> tuple[dict, list]:
        """What a click on a row sends; returns the reply the page gets."""
        request = {"type": "play", "id": segment_id, "run": widget.run if run is None else run,
                   "view": "v1", "req": req}  # fmt: skip
        widget._on_front_end_msg(widget, request, [])
        content, buffers = self.sent[-1]
        assert (content["view"], content["req"], content["id"]) == ("v1", req, segment_id)
        return content, buffers


def test_play_returns_audio_of_the_exact_samples(script_widget, wav5):
    w = script_widget()
    w.start()
    assert w.wait(30)
    source = file_samples(wav5)
    for seg in w.transcript:
        clip = w.play(seg.segment_id)
        assert type(clip).__name__ == "Audio"
        assert "<audio" in clip._repr_html_()
        samples = wav_samples(clip.data)
        np.testing.assert_array_equal(samples, span(source, seg.start, seg.end))
        np.testing.assert_array_equal(samples, w.session.segment_audio(seg.segment_id))
    assert w.play(0, autoplay=True).autoplay


def test_play_errors_are_typed(script_widget, make_widget, wav5):
    fresh = make_widget(provider="local", local_engine="script", source=wav5)
    with pytest.raises(SegmentNotFoundError, match="not recorded anything"):
        fresh.play(0)
    w = script_widget()
    w.start()
    assert w.wait(30)
    with pytest.raises(SegmentNotFoundError, match="ids 0 to 1"):
        w.play(5)
    off = script_widget(keep_audio=False)
    off.start()
    assert off.wait(30)
    with pytest.raises(AudioNotKeptError, match="keep_audio=True"):
        off.play(0)


def test_a_clicked_row_gets_its_wav_and_only_the_asking_view_plays_it(script_widget, wav5):
    w = script_widget()
    clips = Clips(w)
    w.start()
    assert w.wait(30)
    source = file_samples(wav5)
    for seg in w.transcript:
        reply, buffers = clips.click(w, seg.segment_id, req=seg.segment_id + 10)
        assert "error" not in reply and len(buffers) == 1
        samples = wav_samples(buffers[0])
        np.testing.assert_array_equal(samples, span(source, seg.start, seg.end))
        assert reply["duration"] == pytest.approx(len(samples) / 16000)
        assert reply["truncated"] is False
        assert (reply["start"], reply["end"]) == (round(seg.start, 3), round(seg.end, 3))


def test_clicks_that_cannot_play_say_why(script_widget):
    w = script_widget()
    clips = Clips(w)
    w.start()
    assert w.wait(30)
    reply, buffers = clips.click(w, 7)
    assert buffers == [] and "no segment 7" in reply["error"]
    reply, buffers = clips.click(w, "0")
    assert buffers == [] and "Cannot play" in reply["error"]
    reply, buffers = clips.click(w, 0, run=w.run - 1)  # a row of an earlier session
    assert buffers == [] and "earlier session" in reply["error"]
    off = script_widget(keep_audio=False)
    clips = Clips(off)
    off.start()
    assert off.wait(30)
    reply, buffers = clips.click(off, 0)
    assert buffers == [] and "keep_audio=True" in reply["error"]


def test_a_click_while_recording_plays_the_final_already_there(script_widget, h):
    source = QueueSource()
    w = script_widget(source=source)
    clips = Clips(w)
    w.start()
    audio = (np.arange(16000 * 3) % 2000 - 1000).astype(np.int16)  # 3 s: the first final
    source.push(audio)
    assert h.wait_until(lambda: len(w.transcript) >= 1)
    assert w.running
    seg = w.transcript[0]
    reply, buffers = clips.click(w, 0)
    assert "error" not in reply
    np.testing.assert_array_equal(wav_samples(buffers[0]), span(audio, seg.start, seg.end))
    w.stop(timeout=5)


def test_clips_are_bounded(script_widget, monkeypatch, wav5):
    monkeypatch.setattr(playback, "MAX_CLIP_S", 0.5)
    w = script_widget()
    clips = Clips(w)
    w.start()
    assert w.wait(30)
    seg = w.transcript[0]
    reply, buffers = clips.click(w, 0)
    assert reply["truncated"] is True and reply["duration"] == 0.5
    np.testing.assert_array_equal(
        wav_samples(buffers[0]), span(file_samples(wav5), seg.start, seg.start + 0.5)
    )


def test_only_the_last_sessions_audio_is_kept_and_close_releases_it(script_widget):
    w = script_widget()
    w.start()
    assert w.wait(30)
    first = w.session
    assert len(first.segment_audio(0)) > 0
    w.start()
    assert w.wait(30)
    with pytest.raises(AudioNotKeptError, match="released"):
        first.segment_audio(0)
    assert len(w.play(0).data) > 44
    w.close()
    with pytest.raises(AudioNotKeptError, match="released"):
        w.play(0)
