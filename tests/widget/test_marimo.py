"""The widget's marimo layer without a browser (ui/marimo.py): host detection, the revision
that makes marimo re-run dependent cells (bumped on start, committed finals and the end, never
on partials), marimo's cell clock for the silent-page check, and ending the sessions when
the widget's cell is re-run (the revision's bumps: tests/widget/test_updates.py). The real
thing in marimo edit/run: tests/ui/test_marimo.py."""

from __future__ import annotations

import time

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets.ui import browser_link
from livetx_widgets.ui import marimo as marimo_layer


def test_a_jupyter_comm_is_not_marimo(make_widget):
    w = make_widget(provider="local", source="browser")
    assert w.host == "jupyter"
    assert w._link.cells is browser_link.CELLS


def test_host_of_tells_marimos_comm_apart():
    marimo_comm = type("MarimoComm", (), {"__module__": "marimo._plugins.ui._impl.comm"})
    lookalike = type("MarimoComm", (), {"__module__": "marimo_tools.comm"})
    assert marimo_layer.host_of(marimo_comm()) == "marimo"
    assert marimo_layer.host_of(lookalike()) == "jupyter"
    assert marimo_layer.host_of(None) == "jupyter"


def test_marimo_cell_clock_follows_the_execution_context():
    context = type("Ctx", (), {"execution_context": None})()
    clock = marimo_layer.MarimoCellClock(context)
    assert clock.busy is False
    context.execution_context = object()  # marimo runs a cell
    assert clock.busy is True
    before = clock.idle_since
    time.sleep(0.01)
    context.execution_context = None
    assert clock.busy is False
    assert clock.idle_since > before  # idle since the cell ended, not since the start


def test_a_running_marimo_cell_holds_off_the_silence_check(make_widget, h, monkeypatch):
    monkeypatch.setattr(browser_link, "PAGE_GONE_S", 0.3)
    w = make_widget(provider="local", source="browser", local_engine="script",
                    local_options={"script": h.script})  # fmt: skip
    context = type("Ctx", (), {"execution_context": object()})()  # a cell is running
    w._link.cells = marimo_layer.MarimoCellClock(context)
    w._on_front_end_msg(w, {"type": "start", "capture": "v1-1"}, [])
    chunk = support.tone_chunks(1)[0]
    w._on_front_end_msg(w, {"type": "audio", "capture": "v1-1", "seq": 0, "offset": 0,
                            "samples": 1600, "capturedAt": None, "last": False},
                        [memoryview(chunk)])  # fmt: skip
    time.sleep(0.8)  # longer than PAGE_GONE_S, on purpose: nothing may happen
    assert w.session.running
    context.execution_context = None  # the cell ends; silence now means the page is gone
    assert w.wait(10)
    assert w.session.error is None and "no audio" in w.notice
    assert h.livetx_threads() == []


def test_end_with_cell_does_nothing_outside_marimo():
    called = []
    assert marimo_layer.end_with_cell("jupyter", lambda: called.append(1)) is False
    assert marimo_layer.end_with_cell("marimo", lambda: called.append(1)) is False  # no kernel
    assert called == []


def test_cell_clock_without_a_marimo_kernel_falls_back():
    default = object()
    assert marimo_layer.cell_clock("marimo", default) is default
    assert marimo_layer.cell_clock("jupyter", default) is default


def test_re_running_the_widgets_cell_ends_its_sessions(monkeypatch):
    """marimo disposes a cell's lifecycle items when it re-runs or is deleted (the same hook
    closes the widget's comm): the one end_with_cell registers calls ``end``."""
    pytest.importorskip("marimo")
    items = []
    registry = type("Registry", (), {"add": lambda self, item: items.append(item)})()
    context = type("Ctx", (), {"cell_id": "Hbol", "cell_lifecycle_registry": registry})()
    monkeypatch.setattr(marimo_layer, "_runtime_context", lambda: context)
    ended = []
    assert marimo_layer.end_with_cell("marimo", lambda: ended.append(True))
    (item,) = items
    assert ended == []
    assert item.dispose(context, deletion=False) is True
    assert ended == [True]


def test_both_built_modules_are_current():
    """livetx.js and livetx-compare.js are built from their sources (host.js shared)."""
    from livetx_widgets.ui import assets

    for target, sources in assets.BUILDS.items():
        assert "host.js" in sources
        assert target.read_text() == assets.build(target), "run: python livetx_widgets/ui/assets.py"


@pytest.mark.slow  # 5 s of real-time audio; LiveTranscriber's revision: tests/widget/test_updates
def test_compare_transcriber_has_the_marimo_traits_and_bumps_on_start_and_end(tmp_path, h):
    """The same mechanism on CompareTranscriber: host, a revision bumped on start, committed
    finals and the end (the script engine commits every turn)."""
    from livetx_widgets import CompareTranscriber

    wav = h.tone_wav(tmp_path / "tone.wav", 5.0)
    w = CompareTranscriber(
        providers=["local", "local"], source=str(wav), realtime=True,
        local_engine="script", local_options={"script": h.script},
    )  # fmt: skip
    try:
        assert w.host == "jupyter" and w.revision == 0
        w.start()
        assert w.revision == 1
        # Played at speaking pace: the first turn's finals (~2.7 s) come while it runs.
        assert h.wait_until(lambda: any(c["n_finals"] for c in w.columns), 15 * h.TIMING)
        if w.running:
            assert w.revision >= 2, w.revision  # a committed final bumped it mid-run
        assert w.wait(30)
        finals = sum(c["n_finals"] for c in w.columns)
        assert finals >= 2, w.columns
        # start + flushes with finals + the end: at most one per flush, never per partial.
        assert 3 <= w.revision <= finals + 2, (w.revision, finals)
    finally:
        w.close()
