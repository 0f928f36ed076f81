"""Start/stop storms, small: the cycles of ``benchmarks/storms.py`` (session and widget, a
fault at a random phase of each, from a fixed seed) leave nothing behind."""

from __future__ import annotations

import gc
import weakref

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import ArraySource, LiveTranscriber
from livetx_widgets.server import LocalServer


def _assert_clean(result):
    assert result.leaked_threads == []
    assert result.leaked_sockets == 0
    assert result.leaked_fds == 0
    assert result.leaked_tmp_files == 0
    assert result.alive == 0, f"{result.alive} {result.kind}s still alive after gc"
    assert result.running == 0
    assert result.problems == []


@pytest.mark.slow  # ~10-25 s: each cycle waits for its phase and its stop
def test_a_short_storm_leaves_nothing(storms):
    session, widget = storms.run_storms(cycles=4, seed=15, parallel=False)  # in this process
    assert session.cycles == widget.cycles == 4
    _assert_clean(session)
    _assert_clean(widget)


@pytest.mark.slow  # ~1 minute: 20 cycles of each
def test_a_storm_leaves_nothing(storms):
    for result in storms.run_storms(cycles=20, seed=7):  # the widget storm in a child process
        _assert_clean(result)
        assert len(result.outcomes) > 3  # the faults varied


def test_the_plan_is_fixed_by_the_seed(storms):
    first = [(p.provider, p.fault, p.phase) for p in storms.plans(15, 30)]
    assert first == [(p.provider, p.fault, p.phase) for p in storms.plans(15, 30)]
    assert len({f for _, f, _ in first}) > 5 and len({ph for _, _, ph in first}) > 3


def test_a_closed_widget_is_garbage_collected_with_its_sessions():
    """Before: anywidget's file-watch closure and the widget's own finalizer held every
    widget (and every transcript it made) for the life of the kernel."""
    with LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False) as srv:
        w = LiveTranscriber(provider="deepgram", api_key="k", url=srv.url,
                            source=ArraySource(support.tone(1.0)))  # fmt: skip
        w._repr_mimebundle_()
        w.start()
        assert w.wait(10 * support.TIMING)
        refs = [weakref.ref(w), weakref.ref(w.session)]
        w.close()
        del w
        gc.collect()
        assert [r() for r in refs] == [None, None]


def test_a_widget_never_started_is_collected_too():
    w = LiveTranscriber(provider="deepgram", api_key="k", source=ArraySource(np.zeros(10)))
    ref = weakref.ref(w)
    w.close()
    del w
    gc.collect()
    assert ref() is None
