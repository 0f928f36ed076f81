"""CompareTranscriber in a real browser (JupyterLab 4, headless Chromium): one column per
provider fills with finals, a refused provider shows why in its own column, Start/Stop drive
every provider, and clicking a final plays its span and marks the same span in every column;
with ``source="browser"``, Chromium's fake microphone (the shared sentence) is captured once in
the page and every column transcribes it (a ``livetx serve`` with the Whisper engine).

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


BROWSER_SETUP = """\
from livetx_widgets import CompareTranscriber
from livetx_widgets.server import LocalServer
server = LocalServer(engine="whisper", rate_limit=False).start()
w = CompareTranscriber([("deepgram", {"url": server.url, "label": "dg-protocol"}),
                        ("assemblyai", {"url": server.url, "label": "aai-protocol"})],
                       source="browser", api_key="k")
w"""
WORDS = ("america", "well")  # robust words of "I do. I think that America do it very well."


@pytest.fixture(scope="module")
def browser(launch_chromium, speech_wav):
    """The fake microphone plays the shared sentence (short-16k.wav) with silence around it,
    so every loop is one utterance that the engine ends with a final."""
    return launch_chromium(speech_wav)


def test_the_browser_microphone_is_captured_once_and_heard_by_every_column(lab_server, page, h):
    from playwright.sync_api import expect

    nb = h.write_notebook(lab_server, "e2e-compare-browser.ipynb", [BROWSER_SETUP])
    h.open_notebook(page, lab_server, nb)
    h.run_cell(page, 0)
    widget = page.locator(f"{NB} .livetx-cmp").first
    widget.wait_for(timeout=h.OUTPUT_S * 1000)
    h.wait_idle(page)
    expect(widget.locator(".livetx-cmp-col")).to_have_count(2)
    expect(widget.locator(".livetx-cmp-source")).to_have_text("Browser microphone")

    widget.locator(".livetx-start").click()  # captures in the click; both providers start
    for label in ("dg-protocol", "aai-protocol"):
        page.wait_for_function(
            "([sel, words]) => [...document.querySelectorAll(sel)].some((r) =>"
            " words.every((w) => r.textContent.toLowerCase().includes(w)))",
            arg=[f'{CSS} .livetx-cmp-col[data-label="{label}"] .livetx-cmp-row', list(WORDS)],
            timeout=90_000,
        )  # fmt: skip
    widget.locator(".livetx-stop").click()
    expect(widget.locator(".livetx-status-text")).to_have_text("Stopped", timeout=60_000)
    expect(widget.locator(".livetx-error")).to_be_hidden()
    got = h.kernel_eval(
        lab_server, nb,
        "m = w.compare.metadata\n"
        "dict(sent={k: v.audio_sent_s for k, v in m.items()},"
        " source={k: v.raw.get('source') for k, v in m.items()},"
        " errors={k: str(e) for k, e in w.compare.errors.items() if e}, status=w.status,"
        " texts={k: t.text.lower() for k, t in w.transcripts.items()})",
    )  # fmt: skip
    assert got["status"] == "stopped" and got["errors"] == {}, got
    for label, text in got["texts"].items():
        assert all(word in text for word in WORDS), (label, text)
    stats = got["source"]["dg-protocol"]
    assert stats == got["source"]["aai-protocol"], got  # one capture, teed to both
    assert stats["gaps"] == 0 and stats["duplicates"] == 0 and stats["received_s"] > 4.0, stats
    # Everything the page captured was sent to both (the last chunk came before Stop; a
    # provider may pad the last chunk to its minimum frame; received_s is rounded to 1 ms).
    for label, sent in got["sent"].items():
        assert stats["received_s"] - 0.001 <= sent <= stats["received_s"] + 0.06, (label, got)
    h.kernel_eval(lab_server, nb, "w.close(); server.close()\nTrue")
