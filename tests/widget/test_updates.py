"""The updater: throttled flushes, per-update messages that do not grow with the transcript,
a bounded tail for new views, revised finals sent again under their id."""

from __future__ import annotations

import threading
import time

import pytest

from livetx_widgets import QueueSource
from livetx_widgets.events import FinalTranscript, PartialTranscript
from livetx_widgets.ui.updater import flush_due


@pytest.fixture
def live(script_widget, h):
    """A widget whose session is live on a queue source (nothing arrives unless a test
    applies events the way the session's receiver thread does)."""
    w = script_widget(source=QueueSource())
    w.start()
    assert h.wait_until(lambda: w.status == "live")
    yield w
    w.stop(timeout=5)


def _receive(w, event) -> None:
    """What the session's receiver does with an event: apply it, then call the listener."""
    segment = w.session.transcript.apply(event)
    if isinstance(event, FinalTranscript):
        w._updater.on_final(segment)
    else:
        w._updater.on_partial(event)


def _add_finals(w, n: int) -> None:
    transcript = w.session.transcript
    base = len(transcript)
    for i in range(base, base + n):
        transcript.apply(
            FinalTranscript(f"segment number {i}", start=i, end=i + 0.5, segment_key=f"s{i}")
        )


def _flush_once(w, h) -> None:
    before = w._updater.flushes
    assert h.wait_until(lambda: w._updater.flushes > before, timeout=5 * h.TIMING)


def test_a_burst_of_partials_is_throttled(live, h):
    w = live
    _flush_once(w, h)
    start_flushes, t0 = w._updater.flushes, time.monotonic()
    w.rec.clear()

    def burst():
        for i in range(1000):
            _receive(w, PartialTranscript(f"word {i}", segment_key="k"))

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join(30)
    _flush_once(w, h)
    _flush_once(w, h)
    elapsed = time.monotonic() - t0
    flushes = w._updater.flushes - start_flushes
    partial_updates = [m for m in w.rec.updates() if "partial" in m[2]["state"]]
    # At most one flush per 50 ms (plus the two awaited), whatever the machine's speed.
    assert flushes <= elapsed / 0.05 + 3, (flushes, elapsed)
    assert 1 <= len(partial_updates) <= flushes
    assert w.partial == "word 999"  # the newest partial is what is shown
    assert w.n_partials >= 1000


def test_news_waits_at_most_one_frame_and_only_behind_news():
    frame, tick = 0.05, 0.1
    # A partial right after a tick flush (news last shown long ago) goes out at once.
    assert flush_due(last=10.0, shown=9.0, dirty=True, min_interval=frame, tick=tick) == 9.05
    # Right after a flush that showed news, the next waits one frame, no more.
    assert flush_due(last=10.0, shown=10.0, dirty=True, min_interval=frame, tick=tick) == 10.05
    # Nothing pending: the next flush is the tick.
    assert flush_due(last=10.0, shown=9.0, dirty=False, min_interval=frame, tick=tick) == 10.1


def _partial_update_sizes(w, h, n: int) -> list[int]:
    """Bytes of the state messages that carry a partial, with ``n`` finals committed."""
    _add_finals(w, n)
    _flush_once(w, h)
    _flush_once(w, h)
    assert w.n_finals == n
    assert sum(len(m["segments"]) for m in w.rec.custom("finals")) == n  # sent once
    w.rec.clear()
    sizes = []
    for i in range(5):
        _receive(w, PartialTranscript(f"a partial of fixed length {i}", segment_key="p"))
        _flush_once(w, h)
        texts = [text for _, text, data in w.rec.updates() if "partial" in data["state"]]
        sizes.append(len(texts[-1]))
    assert w.rec.custom("finals") == []  # a partial sends no transcript rows
    return sizes


def test_partial_update_size_does_not_grow_with_the_transcript(script_widget, h):
    sizes = {}
    for n in (10, 10_000):
        w = script_widget(source=QueueSource())
        w.start()
        assert h.wait_until(lambda w=w: w.status == "live")
        sizes[n] = _partial_update_sizes(w, h, n)
        w.stop(timeout=5)
    assert max(sizes[10]) < 400
    assert max(sizes[10_000]) <= max(sizes[10]) + 16, sizes  # only n_finals' digits differ


def test_new_final_sends_only_itself(live, h):
    w = live
    _add_finals(w, 10_000)
    _flush_once(w, h)
    _flush_once(w, h)
    w.rec.clear()
    _receive(w, FinalTranscript("one more", start=1e4, end=1e4 + 1, segment_key="new"))
    _flush_once(w, h)
    (message,) = w.rec.custom("finals")
    assert [s["text"] for s in message["segments"]] == ["one more"]
    assert message["total"] == 10_001 and message["segments"][0]["id"] == 10_000


def test_tail_for_a_new_view_is_bounded(live, h):
    w = live
    _add_finals(w, 10_000)
    _flush_once(w, h)
    w.rec.clear()
    w._on_front_end_msg(w, {"type": "hello"}, [])
    (tail,) = w.rec.custom("tail")
    assert tail["total"] == 10_000 and tail["run"] == w.run
    assert [s["id"] for s in tail["segments"]] == list(range(10_000 - w.max_rows, 10_000))


def test_revised_final_is_sent_again_under_its_id(live, h):
    w = live
    _receive(w, FinalTranscript("hello world", start=0, end=1, segment_key="t1"))
    _receive(w, FinalTranscript("next", start=1, end=2, segment_key="t2"))
    _flush_once(w, h)
    _flush_once(w, h)
    w.rec.clear()
    _receive(w, FinalTranscript("Hello, world.", start=0, end=1, segment_key="t1"))
    _flush_once(w, h)
    (message,) = w.rec.custom("finals")
    assert [(s["id"], s["text"]) for s in message["segments"]] == [(0, "Hello, world.")]
    assert w.n_finals == 2


def test_tail_before_any_session(make_widget):
    w = make_widget(provider="local")
    w._on_front_end_msg(w, {"type": "hello"}, [])
    assert w.rec.custom("tail") == [{"type": "tail", "run": 0, "segments": [], "total": 0}]


def test_trait_changes_from_the_front_end_go_through_the_lock(make_widget):
    w = make_widget(provider="local")
    acquired = []
    lock = w._updater.lock

    class Spy:
        def __enter__(self):
            acquired.append(True)
            return lock.__enter__()

        def __exit__(self, *exc):
            return lock.__exit__(*exc)

    w._updater.lock = Spy()
    w.set_state({"provider": "deepgram"})
    assert acquired and w.provider == "deepgram" and w.needs_key


def test_revision_moves_on_start_finals_and_end_but_not_on_partials(script_widget, h):
    """The small trait marimo re-runs dependent cells on (ui/marimo.py): one bump per start,
    per flush that commits finals and per end; partials never move it."""
    w = script_widget(source=QueueSource())
    assert w.revision == 0
    w.start()
    assert h.wait_until(lambda: w.status == "live")
    after_start = w.revision
    assert after_start == 1
    for i in range(200):
        _receive(w, PartialTranscript(f"word {i}", segment_key="k"))
    _flush_once(w, h)
    _flush_once(w, h)
    assert w.partial == "word 199" and w.revision == after_start  # partials: no re-run
    _receive(w, FinalTranscript("a committed sentence", start=0, end=1, segment_key="k"))
    assert h.wait_until(lambda: w.n_finals == 1)
    assert w.revision == after_start + 1
    _flush_once(w, h)
    assert w.revision == after_start + 1  # a flush with nothing new changes nothing
    w.stop(timeout=5)
    assert w.status == "stopped" and w.revision == after_start + 2
    revisions = [m[2]["state"]["revision"] for m in w.rec.updates() if "revision" in m[2]["state"]]
    assert revisions == [1, 2, 3], revisions  # one message per bump, nothing resent
