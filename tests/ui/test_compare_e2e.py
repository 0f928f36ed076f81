"""CompareTranscriber in a real browser (JupyterLab 4, headless Chromium): one column per
provider fills with finals, a refused provider shows why in its own column, Start/Stop drive
every provider, and clicking a final plays its span and marks the same span in every column.

The providers are two ``livetx serve`` instances (script engine) started in the kernel, one
of them refusing every key. A screenshot (``compare-widget.png``) is saved under
``artifacts/ui/``.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

NB = ".jp-NotebookPanel:visible"
CSS = ".jp-NotebookPanel"
SETUP = """\
from livetx_widgets import CompareTranscriber
from livetx_widgets.server import LocalServer
from livetx_widgets.server.faults import Faults
from livetx_widgets.data import demo_wav
script = {"turns": [{"text": "I do.", "start": 0.2, "end": 0.8},
                    {"text": "I think that America do it very well.", "start": 1.3, "end": 3.4}]}
good = LocalServer(engine="script", script=script, rate_limit=False).start()
bad = LocalServer(engine="script", script=script, faults=Faults(refuse_auth=True)).start()
w = CompareTranscriber([("deepgram", {"url": good.url, "label": "nova"}),
                        ("assemblyai", {"url": good.url, "label": "universal"}),
                        ("deepgram", {"url": bad.url, "label": "refused"})],
                       source=str(demo_wav()), api_key="k")
w"""


def _col(label: str) -> str:
    return f'{NB} .livetx-cmp-col[data-label="{label}"]'


def test_compare_widget_columns_errors_and_click_to_play(lab_server, page, h):
    from playwright.sync_api import expect

    nb = h.write_notebook(lab_server, "e2e-compare.ipynb", [SETUP])
    h.open_notebook(page, lab_server, nb)
    h.run_cell(page, 0)
    widget = page.locator(f"{NB} .livetx-cmp").first
    widget.wait_for(timeout=h.OUTPUT_S * 1000)
    h.wait_idle(page)
    expect(widget.locator(".livetx-cmp-col")).to_have_count(3)

    widget.locator(".livetx-start").click()  # one Start for every provider
    rows = page.locator(f"{_col('nova')} .livetx-cmp-row")
    expect(rows).to_have_count(2, timeout=30_000)
    expect(page.locator(f"{_col('universal')} .livetx-cmp-row")).to_have_count(2, timeout=30_000)
    # The refused provider says why, in its own column; the others went on.
    expect(page.locator(f"{_col('refused')} .livetx-cmp-error")).to_contain_text(
        "API key refused"
    )
    expect(widget.locator(".livetx-status-text")).to_have_text("Stopped", timeout=30_000)
    expect(page.locator(f"{_col('nova')} .livetx-cmp-state")).to_have_text("Stopped")

    # Click the second final of one column: it plays, and the rows of every column that
    # cover that span are marked.
    page.locator(f"{_col('universal')} .livetx-cmp-row").nth(1).click()
    page.wait_for_function(
        "(sel) => { const a = document.querySelector(sel); return a && a.src.startsWith('blob:') }",
        arg=f"{CSS} .livetx-cmp .livetx-player", timeout=10_000,
    )  # fmt: skip
    expect(page.locator(f"{_col('universal')} .livetx-cmp-row.livetx-playing")).to_have_count(1)
    expect(page.locator(f"{_col('nova')} .livetx-cmp-row.livetx-cmp-same")).to_have_count(1)
    expect(page.locator(f"{_col('nova')} .livetx-cmp-row.livetx-cmp-same")).to_contain_text(
        "America"
    )
    duration = float(widget.locator(".livetx-player").get_attribute("data-duration"))
    assert 1.5 < duration < 4.2  # the span of that final, not the whole file
    h.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)
    widget.screenshot(path=str(h.ARTIFACTS / "compare-widget.png"))

    got = h.kernel_eval(
        lab_server, nb,
        "s = w.summary().set_index('provider')\n"
        "dict(finals=s['finals'].to_dict(), error=s.loc['refused', 'error'], status=w.status)",
    )  # fmt: skip
    assert got["finals"]["nova"] == 2 and got["finals"]["universal"] == 2
    assert got["error"].startswith("AuthenticationError") and got["status"] == "stopped"
    h.kernel_eval(lab_server, nb, "w.close(); good.close(); bad.close()\nTrue")
