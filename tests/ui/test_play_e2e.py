"""Clicking a final plays it, in a real browser: JupyterLab 4 and Notebook 7, headless Chromium.

The kernel runs a ``LiveTranscriber`` on the offline script engine (known segment times) over
a WAV file whose samples are a known ramp. The test presses Start, waits for the finals,
clicks one, and checks in the page that the ``<audio>`` element got a WAV of that segment's
duration, started playing and ended, and that its samples are the kernel's
``session.segment_audio`` of that segment (a checksum computed on both sides). Then the kernel
is shut down: a click gets no answer, and the widget says so instead of waiting for ever.
"""

from __future__ import annotations

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

pytestmark = pytest.mark.ui

NB = ".jp-NotebookPanel:visible"
SCRIPT = support.TWO_TURNS

#: In the page: watch the player's events (before the click), so the test sees them happen.
WATCH_JS = """(root) => {
  const player = root.querySelector('audio.livetx-player');
  const seen = window.__livetxPlay = { events: [], duration: null };
  for (const kind of ['loadedmetadata', 'playing', 'ended', 'error']) {
    player.addEventListener(kind, () => {
      seen.events.push(kind);
      if (kind === 'loadedmetadata') seen.duration = player.duration;
    });
  }
  return !!player;
}"""

#: In the page: the WAV the player holds, as (samples, sum, sum of squares) of its int16 data.
CHECKSUM_JS = """async (root) => {
  const player = root.querySelector('audio.livetx-player');
  const bytes = await (await fetch(player.src)).arrayBuffer();
  const view = new DataView(bytes);
  let sum = 0, squares = 0;
  const n = (bytes.byteLength - 44) / 2;
  for (let i = 0; i < n; i++) {
    const v = view.getInt16(44 + 2 * i, true);
    sum += v;
    squares += v * v;
  }
  return [n, sum, squares];
}"""


def test_clicking_a_final_plays_its_audio(jupyter, page, h):
    from playwright.sync_api import expect

    ramp = (np.arange(16000 * 5) % 4000 - 2000).astype(np.int16)
    wav = support.write_wav(jupyter.root / f"ramp-{jupyter.kind}.wav", ramp)
    code = (
        "from livetx_widgets import LiveTranscriber\n"
        f"w = LiveTranscriber(provider='local', local_engine='script', source={str(wav)!r},\n"
        f"                    local_options={{'script': {SCRIPT!r}}}, realtime=False)\n"
        "w"
    )
    name = h.write_notebook(jupyter, f"play-{jupyter.kind}.ipynb", [code])
    h.open_notebook(page, jupyter, name)
    h.run_cell(page, 0)
    widget = page.locator(f"{NB} .livetx").first
    widget.wait_for(timeout=h.OUTPUT_S * 1000)
    h.wait_idle(page)
    assert widget.evaluate(WATCH_JS)

    widget.locator(".livetx-start").click()
    rows = widget.locator(".livetx-rows .livetx-row")
    expect(rows).to_have_count(2, timeout=h.OUTPUT_S * 1000)
    kernel = h.kernel_eval(
        jupyter, name,
        "import numpy as _np\n"
        "_s = w.session.segment_audio(1).astype(_np.int64)\n"
        "[w.transcript[1].start, w.transcript[1].end, len(_s), int(_s.sum()),"
        " int((_s * _s).sum())]",
    )  # fmt: skip
    start, end, n, total, squares = kernel
    assert n == round(end * 16000) - round(start * 16000) > 16000 // 2

    rows.nth(1).click()
    expect(rows.nth(1)).to_have_class("livetx-row livetx-playing")
    page.wait_for_function(
        "() => window.__livetxPlay.events.includes('playing')", timeout=h.OUTPUT_S * 1000
    )
    seen = page.evaluate("() => window.__livetxPlay")
    assert seen["duration"] == pytest.approx(n / 16000, abs=0.01), seen
    assert widget.evaluate(CHECKSUM_JS) == [n, total, squares]
    page.mouse.move(1, 1)  # no hover effect: the playing row's own mark shows
    widget.screenshot(path=str(_artifact(h, f"widget-play-{jupyter.kind}.png")))
    player = widget.locator("audio.livetx-player")
    assert player.get_attribute("data-id") == "1"
    # It plays to the end (about the segment's duration), then the row is no longer marked.
    page.wait_for_function(
        "() => window.__livetxPlay.events.includes('ended')", timeout=(n / 16000 + 20) * 1000
    )
    expect(rows.nth(1)).to_have_class("livetx-row")
    assert "error" not in seen["events"]

    # A click on the playing row stops it.
    rows.nth(0).click()
    expect(rows.nth(0)).to_have_class("livetx-row livetx-playing")
    rows.nth(0).click()
    expect(rows.nth(0)).to_have_class("livetx-row")
    assert page.evaluate("() => document.querySelector('audio.livetx-player').paused")
    assert h.page_log(page).errors == []

    # The kernel is gone: a click cannot play, and the widget says why within its bound.
    jupyter_kernel = jupyter.kernel_id(name)
    _shutdown_kernel(jupyter, jupyter_kernel)
    rows.nth(0).click()
    notice = widget.locator(".livetx-notice")
    expect(notice).to_contain_text("No answer from the kernel", timeout=20_000)
    expect(rows.nth(0)).to_have_class("livetx-row")


def _artifact(h, name: str):
    h.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return h.ARTIFACTS / name


def _shutdown_kernel(server, kernel_id: str) -> None:
    import urllib.request

    req = urllib.request.Request(
        f"{server.base_url}/api/kernels/{kernel_id}", method="DELETE",
        headers={"Authorization": f"token {server.token}"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.status == 204
