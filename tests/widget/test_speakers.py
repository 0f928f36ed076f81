"""Speakers in the widget: a revised segment is sent again under its id with its new speaker,
and a speaker that is not known is sent as null (the front end then shows no speaker tag).

The events are what the AssemblyAI codec decodes from the protocol-notes fixtures; they are
applied the way the session's receiver does: ``transcript.apply(event)``, then the "final"
listener for the segment (for a SpeakerRevision: for each segment it returns).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from livetx_widgets import QueueSource
from livetx_widgets.events import FinalTranscript, SpeakerRevision
from livetx_widgets.providers import AssemblyAICodec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "assemblyai"


def frame(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


@pytest.fixture
def live(script_widget, h):
    w = script_widget(source=QueueSource())
    w.start()
    assert h.wait_until(lambda: w.status == "live")
    yield w
    w.stop(timeout=5)


def receive(w, codec, text: str) -> None:
    for event in codec.decode(text):
        result = w.session.transcript.apply(event)
        if isinstance(event, FinalTranscript) and result is not None:
            w._updater.on_final(result)
        elif isinstance(event, SpeakerRevision):
            for segment in result:
                w._updater.on_final(segment)
        else:
            w._updater.on_partial(event)


def flush(w, h) -> None:
    before = w._updater.flushes
    assert h.wait_until(lambda: w._updater.flushes > before, timeout=5 * h.TIMING)


def rows(w) -> dict[int, dict]:
    """The rows a front end holds after the finals messages so far (upsert by id)."""
    shown: dict[int, dict] = {}
    for message in w.rec.custom("finals"):
        if message["run"] == w.run:
            for segment in message["segments"]:
                shown[segment["id"]] = segment
    return shown


def test_revised_speakers_replace_the_rows_in_place(live, h):
    w = live
    codec = AssemblyAICodec(speaker_labels=True)
    receive(w, codec, frame("turn-u3-partial-speaker-labels"))
    receive(w, codec, frame("turn-u3-final-speaker-labels"))
    receive(w, codec, frame("turn-short-unknown-speaker"))
    flush(w, h)
    flush(w, h)
    assert {i: (r["text"], r["speaker"]) for i, r in rows(w).items()} == {
        0: ("My name is Sonny.", "A"),
        1: ("Yes.", None),  # not known: null, and the front end shows no speaker tag
    }
    w.rec.clear()

    receive(w, codec, frame("speaker-revision-late"))
    flush(w, h)
    (message,) = w.rec.custom("finals")
    assert [(s["id"], s["speaker"]) for s in message["segments"]] == [(0, "A"), (1, "B")]
    assert message["total"] == 2 and w.n_finals == 2  # replaced, not appended
    assert "PENDING" not in w.rec.all_text() and "UNKNOWN" not in w.rec.all_text()

    # A new view gets the revised rows in its tail.
    w.rec.clear()
    w._on_front_end_msg(w, {"type": "hello"}, [])
    (tail,) = w.rec.custom("tail")
    assert [(s["id"], s["speaker"]) for s in tail["segments"]] == [(0, "A"), (1, "B")]


def test_a_revision_naming_nothing_sends_no_rows(live, h):
    w = live
    codec = AssemblyAICodec(speaker_labels=True)
    receive(w, codec, frame("turn-u3-final-speaker-labels"))
    flush(w, h)
    flush(w, h)
    w.rec.clear()
    receive(w, codec, frame("speaker-revision"))  # names turn 3, which this session never had
    flush(w, h)
    assert w.rec.custom("finals") == []
