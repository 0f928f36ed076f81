"""LiveTranscriber end to end in a real browser: JupyterLab 4 and Notebook 7, headless Chromium
whose fake microphone plays real speech, the offline Whisper engine in the kernel.

What a user does is what the tests do: display the widget, press Start, watch partials and
then finals appear, press Stop; then the kernel is asked (through the server's kernel socket,
not the page) what it holds: ``w.transcript.to_dataframe()`` and ``w.metadata``.

The fake microphone loops its file from an arbitrary point, so the file here is the shared
sentence with silence around it (0.5 s before, 1.5 s after): every loop is one utterance that
the engine ends with a final. Expected words are checked loosely ("america", "well"): the
recording's transcript is approximate.

Screenshots of the widget (``widget-live.png``, ``widget-stopped.png``, ``widget-busy.png``,
``widget-error.png``) are saved under ``artifacts/ui/`` by every run.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

WORDS = ("america", "well")  # robust words of "I do. I think that America do it very well."
NB = ".jp-NotebookPanel:visible"  # Playwright selector
CSS = ".jp-NotebookPanel"  # the same in plain CSS, for page scripts (one notebook per page)
#: Whisper on 2 cores: first partial ~1-2 s after speech starts, a final ~0.5 s after it ends.
TRANSCRIPT_S = 45.0
RIGHT_KEY = "sk-livetx-e2e-right-0123456789"
WRONG_KEY = "sk-livetx-e2e-wrong-9876543210"

BROWSER_WIDGET = (
    "from livetx_widgets import LiveTranscriber\n"
    "w = LiveTranscriber(provider='local', source='browser')\n"
    "w"
)
SLEEP_CELL = "import time\nt_busy = (time.time(), time.sleep({s}), time.time())\nprint('SLEPT')"
#: Kernel side: how many chunks each audio message from the page carried (1, or a batch).
COUNT_AUDIO_MESSAGES = (
    "AUDIO_MESSAGES = []\n"
    "_audio = w._link.audio\n"
    "def _counted(content, buffers):\n"
    "    AUDIO_MESSAGES.append(len(content.get('chunks') or [1]))\n"
    "    return _audio(content, buffers)\n"
    "w._link.audio = _counted\n"
    "True"
)


@pytest.fixture(scope="module")
def browser(launch_chromium, speech_wav):
    """Overrides the harness's ``browser``: the fake microphone plays the padded sentence."""
    return launch_chromium(speech_wav)


def shot(h, page, name: str):
    """Save the widget alone (and the whole page as ``<name>-page.png``) under artifacts/ui."""
    h.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widget = page.locator(f"{NB} .livetx").first
    widget.scroll_into_view_if_needed()
    page.mouse.move(1, 1)  # no hover effect on the last button clicked
    path = h.ARTIFACTS / f"{name}.png"
    widget.screenshot(path=str(path))
    h.screenshot(page, f"{name}-page")
    return path


def show_widget(page, h, server, name: str, code: str):
    """Write and open a notebook whose first cell displays ``w``; wait for the widget."""
    nb = h.write_notebook(server, name, [code])
    h.open_notebook(page, server, nb)
    h.run_cell(page, 0)
    page.locator(f"{NB} .livetx").first.wait_for(timeout=h.OUTPUT_S * 1000)
    h.wait_idle(page)
    page.locator(f"{NB} .livetx").first.evaluate(h.OBSERVE_JS)
    return nb


def status_text(page) -> str:
    return page.locator(f"{NB} .livetx-status-text").first.inner_text()


def wait_status(page, pattern: str, timeout_s: float) -> None:
    page.wait_for_function(
        "([sel, re]) => new RegExp(re).test(document.querySelector(sel)?.textContent || '')",
        arg=[f"{CSS} .livetx-status-text", pattern],
        timeout=timeout_s * 1000,
    )


def wait_final_with(page, words, timeout_s: float = TRANSCRIPT_S) -> None:
    page.wait_for_function(
        "([sel, words]) => [...document.querySelectorAll(sel)].some((r) =>"
        " words.every((w) => r.textContent.toLowerCase().includes(w)))",
        arg=[f"{CSS} .livetx-row .livetx-text", list(words)],
        timeout=timeout_s * 1000,
    )


def test_browser_microphone_transcribes_in_the_page_and_the_kernel(jupyter, page, h):
    from playwright.sync_api import expect

    nb = show_widget(page, h, jupyter, f"e2e-browser-{jupyter.kind}.ipynb", BROWSER_WIDGET)
    widget = page.locator(f"{NB} .livetx").first
    expect(widget.locator(".livetx-source")).to_have_value("browser")
    expect(widget.locator(".livetx-browser-device")).to_be_visible()
    expect(widget.locator(".livetx-notice")).to_be_hidden()  # 127.0.0.1 is a secure page

    widget.locator(".livetx-start").click()
    wait_status(page, "^Live", 60)
    # The level meter is drawn from the browser's audio while it speaks.
    page.wait_for_function(
        "(sel) => parseFloat(document.querySelector(sel).style.width) > 20",
        arg=f"{CSS} .livetx-meter-fill", timeout=15_000,
    )  # fmt: skip
    wait_final_with(page, WORDS)
    if jupyter.kind == "lab":  # the next loop's partial under the first final
        page.wait_for_function(
            "(sel) => document.querySelector(sel).textContent.trim().length > 12",
            arg=f"{CSS} .livetx-partial", timeout=20_000,
        )  # fmt: skip
        shot(h, page, "widget-live")
    seen = page.evaluate("window.__livetx")
    assert seen["partials"], "no partial was shown before the final"
    first_final = seen["finals"][0]["t"]
    assert seen["partials"][0]["t"] < first_final, seen

    rows = h.kernel_eval(jupyter, nb, "w.transcript.to_dataframe()['text'].tolist()")
    joined = " ".join(rows).lower()
    assert all(word in joined for word in WORDS), rows

    widget.locator(".livetx-stop").click()
    wait_status(page, "^Stopped", 30)
    expect(widget.locator(".livetx-error")).to_be_hidden()
    expect(widget.locator(".livetx-start")).to_be_enabled()
    if jupyter.kind == "lab":
        shot(h, page, "widget-stopped")
    meta = h.kernel_eval(
        jupyter, nb,
        "m = w.metadata\n"
        "dict(provider=m.provider, state=m.state, error=m.error, audio=m.audio_duration_s,"
        " sent=m.audio_sent_s, browser=m.raw.get('source'), status=w.status,"
        " n=len(w.transcript), stats=w.capture_stats)",
    )  # fmt: skip
    assert meta["provider"] == "local" and meta["state"] == "stopped" and meta["error"] is None
    assert meta["status"] == "stopped" and meta["n"] >= 1
    assert meta["sent"] > 4.0 and meta["audio"] > 4.0
    browser = meta["browser"]
    assert browser["gaps"] == 0 and browser["duplicates"] == 0, browser
    # Everything received was sent (the last chunk was flushed before Stop).
    assert browser["received_s"] == pytest.approx(meta["sent"], abs=0.06), meta
    assert browser["backlog_s"] == 0
    # The microphone was released: no live track left in the page.
    fill = widget.locator(".livetx-meter-fill").evaluate("(el) => el.style.width")
    assert fill in ("0%", "0.0%"), fill


@contextlib.contextmanager
def lab_setting(server, plugin: str, values: dict):
    """Set a JupyterLab user setting (pages opened afterwards use it); restore it after."""
    import json
    import urllib.request

    url = f"{server.base_url}/lab/api/settings/{plugin}"
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}

    def put(raw: str) -> None:
        body = json.dumps({"raw": raw}).encode()
        req = urllib.request.Request(url, data=body, headers=headers, method="PUT")
        with urllib.request.urlopen(req, timeout=10):
            pass

    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        before = json.loads(r.read()).get("raw") or "{}"
    put(json.dumps(values))
    try:
        yield
    finally:
        put(before)


def busy_stats(h, server, nb) -> dict:
    """What the kernel saw around the busy cell: counters, the stream seconds captured while
    it ran (from the capture times the page sent), and the transcript rows."""
    return h.kernel_eval(
        server, nb,
        "src = w.session.source\n"
        "t0, _, t1 = t_busy\n"
        "inside = [end for end, cap, _ in src.timeline if cap is not None and t0 <= cap <= t1]\n"
        "df = w.transcript.to_dataframe()\n"
        "dict(stats=src.stats(), span=[min(inside), max(inside)],"
        " rows=df[['start', 'end', 'text']].values.tolist(), sent=w.metadata.audio_sent_s)",
    )  # fmt: skip


def assert_busy_audio_transcribed(got: dict, busy_s: float) -> None:
    stats = got["stats"]
    assert stats["gaps"] == 0 and stats["duplicates"] == 0 and stats["too_late"] == 0, stats
    assert stats["received_s"] == pytest.approx(got["sent"], abs=0.06)
    # Words captured while the cell ran were transcribed, at the times they were spoken.
    s0, s1 = got["span"]
    assert s1 - s0 > busy_s - 1.0, got["span"]
    during = " ".join(t for start, end, t in got["rows"] if end > s0 and start < s1).lower()
    assert any(word in during for word in (*WORDS, "think")), (got["span"], got["rows"])
    starts = [start for start, _e, _t in got["rows"]]
    assert starts == sorted(starts)


def test_audio_flows_during_a_busy_cell_over_a_comm_subshell(lab_server, page, h):
    """JupyterLab 4.6 + ipykernel 7 send widget messages on a kernel subshell: the kernel
    takes the browser's audio while a cell sleeps, and transcribes it live."""
    from playwright.sync_api import expect

    nb = show_widget(page, h, lab_server, "e2e-busy-subshell.ipynb", BROWSER_WIDGET)
    widget = page.locator(f"{NB} .livetx").first
    widget.locator(".livetx-start").click()
    wait_final_with(page, WORDS[:1])  # steady: a whole loop was transcribed
    n = h.add_cell(page, SLEEP_CELL.format(s=8))
    t_enter = page.evaluate("() => performance.now() - window.__livetx.t0")
    page.keyboard.press("Shift+Enter")
    h.wait_for_output(page, "SLEPT", cell=n, timeout_s=20)
    t_done = page.evaluate("() => performance.now() - window.__livetx.t0")
    seen = page.evaluate("window.__livetx")
    assert any(t_enter < f["t"] < t_done for f in seen["finals"]), (t_enter, t_done, seen)
    expect(widget.locator(".livetx-busy")).to_be_hidden()
    widget.locator(".livetx-stop").click()
    wait_status(page, "^Stopped", 30)
    got = busy_stats(h, lab_server, nb)
    assert got["stats"]["max_late_s"] < 1.5, got["stats"]  # nothing waited for the cell
    assert_busy_audio_transcribed(got, 8.0)


def test_without_subshells_a_busy_cell_queues_audio_and_the_backlog_drains(lab_server, h,
                                                                           browser):  # fmt: skip
    """Comms on the main shell (ipykernel 6, front ends without subshells): while a cell
    sleeps 6 s the kernel reads no widget message; the page keeps capturing and sending,
    shows "Kernel busy", and after the cell the burst is transcribed at its own audio times,
    in order, with no hole. Past its 1 s send window the page keeps the audio and sends it in
    batches once the kernel acknowledges again (common.js): a few messages, not one per chunk."""
    from playwright.sync_api import expect

    plugin = "@jupyterlab/apputils-extension:kernels-settings"
    with lab_setting(lab_server, plugin, {"commsOverSubshells": "disabled"}):
        context, page, _log = h.new_page(browser)
        try:
            nb = show_widget(page, h, lab_server, "e2e-busy-main.ipynb", BROWSER_WIDGET)
            h.kernel_eval(lab_server, nb, COUNT_AUDIO_MESSAGES)
            widget = page.locator(f"{NB} .livetx").first
            busy = widget.locator(".livetx-busy")
            widget.locator(".livetx-start").click()
            wait_final_with(page, WORDS[:1])
            expect(busy).to_be_hidden()
            n = h.add_cell(page, SLEEP_CELL.format(s=6))
            page.keyboard.press("Shift+Enter")
            expect(busy).to_be_visible(timeout=5_000)
            expect(busy).to_contain_text("Kernel busy")
            page.wait_for_function(
                "(sel) => parseFloat(document.querySelector(sel).dataset.waiting) >= 4",
                arg=f"{CSS} .livetx", timeout=10_000,
            )  # fmt: skip
            shot(h, page, "widget-busy")
            h.wait_for_output(page, "SLEPT", cell=n, timeout_s=20)
            t_cell_end = time.monotonic()
            expect(busy).to_be_hidden(timeout=20_000)
            print(f"backlog drained {time.monotonic() - t_cell_end:.1f} s after the cell ended")
            # Let the utterance spoken during the busy cell end, then stop.
            page.wait_for_timeout(2500)
            widget.locator(".livetx-stop").click()
            wait_status(page, "^Stopped", 30)
            got = busy_stats(h, lab_server, nb)
            assert got["stats"]["max_late_s"] > 4.0, got["stats"]  # it really waited
            assert_busy_audio_transcribed(got, 6.0)
            sizes = h.kernel_eval(lab_server, nb, "AUDIO_MESSAGES")
            batched = [n for n in sizes if n > 1]
            # ~5 s of the 6 s cell waited in the page: at most 10 chunks (1 s) per message.
            assert sum(batched) >= 30 and max(sizes) <= 10, sizes
            assert len(batched) <= sum(batched) / 5, sizes
        finally:
            context.close()


def test_start_from_code_records_from_the_page(lab_server, page, h):
    """``w.start()`` in a cell: the kernel asks the page to capture (no Start click; the page
    has had the user's keystrokes, which is what browsers require before audio starts)."""
    from playwright.sync_api import expect

    nb = show_widget(page, h, lab_server, "e2e-start-from-code.ipynb", BROWSER_WIDGET)
    widget = page.locator(f"{NB} .livetx").first
    h.add_cell(page, "w.start()")
    page.keyboard.press("Shift+Enter")
    wait_status(page, "^Live", 60)
    wait_final_with(page, WORDS[:1])
    expect(widget.locator(".livetx-error")).to_be_hidden()
    widget.locator(".livetx-stop").click()
    wait_status(page, "^Stopped", 30)
    stats = h.kernel_eval(lab_server, nb, "w.metadata.raw['source']")
    assert stats["chunks"] > 30 and stats["gaps"] == 0, stats


def test_kernel_microphone_in_the_browser(lab_server, page, h, pulse_mic, short_wav):
    from playwright.sync_api import expect

    env = (
        "import os\n"
        f"os.environ['PULSE_SERVER'] = {os.environ['PULSE_SERVER']!r}\n"
        f"os.environ['PULSE_RUNTIME_PATH'] = {os.environ['PULSE_RUNTIME_PATH']!r}\n"
    )
    nb = show_widget(
        page, h, lab_server, "e2e-kernel-mic.ipynb",
        env + "from livetx_widgets import LiveTranscriber\n"
        "w = LiveTranscriber(provider='local', source='kernel', device='pulse')\n"
        "w",
    )  # fmt: skip
    widget = page.locator(f"{NB} .livetx").first
    expect(widget.locator(".livetx-source")).to_have_value("kernel")
    expect(widget.locator(".livetx-device")).to_be_visible()
    expect(widget.locator(".livetx-device option")).not_to_have_count(1)  # devices listed
    widget.locator(".livetx-start").click()
    wait_status(page, "^Live", 60)
    # Audio flows (the meter is fed by the kernel's level); now "speak".
    h.kernel_eval(lab_server, nb, "w.session.source.position_s > 0")
    player = pulse_mic.play(short_wav)
    wait_final_with(page, WORDS)
    player.wait(timeout=30)
    widget.locator(".livetx-stop").click()
    wait_status(page, "^Stopped", 30)
    meta = h.kernel_eval(
        lab_server, nb,
        "dict(error=w.metadata.error, rows=w.transcript.to_dataframe()['text'].tolist(),"
        " kind=type(w.session.source).__name__)",
    )  # fmt: skip
    assert meta["kind"] == "Microphone" and meta["error"] is None
    assert all(word in " ".join(meta["rows"]).lower() for word in WORDS), meta


def test_a_refused_key_is_shown_and_a_pasted_key_never_reaches_the_page(lab_server, page, h):
    from playwright.sync_api import expect

    from livetx_widgets.server import LocalServer

    script = {"text": "The right key works."}
    with LocalServer(engine="script", script=script, api_key=RIGHT_KEY) as server:
        show_widget(
            page, h, lab_server, "e2e-bad-key.ipynb",
            "from livetx_widgets import LiveTranscriber\n"
            f"w = LiveTranscriber(provider='deepgram', url={server.url!r}, source='browser')\n"
            "w",
        )  # fmt: skip
        widget = page.locator(f"{NB} .livetx").first
        error = widget.locator(".livetx-error")
        widget.locator(".livetx-start").click()  # no key at all: the server refuses
        expect(error).to_contain_text("API key refused", timeout=30_000)
        wait_status(page, "^Error", 10)
        # The key field appears after a refusal; a wrong key is refused again, in plain words.
        key = widget.locator(".livetx-key-input")
        expect(key).to_be_visible()
        key.fill(WRONG_KEY)
        key.press("Enter")
        expect(widget.locator(".livetx-notice")).to_contain_text("Key received")
        expect(key).to_have_value("")
        widget.locator(".livetx-start").click()
        expect(error).to_contain_text("API key refused", timeout=30_000)
        text = error.inner_text()
        assert re.search(r"key|auth", text, re.I) and "Traceback" not in text
        shot(h, page, "widget-error")
        assert WRONG_KEY not in page.content()
        # The right key, pasted the same way, works: the browser's audio is transcribed.
        key.fill(RIGHT_KEY)
        key.press("Enter")
        widget.locator(".livetx-start").click()
        wait_status(page, "^Live", 30)
        expect(widget.locator(".livetx-row .livetx-text").first).to_contain_text(
            "right key works", timeout=30_000
        )
        widget.locator(".livetx-stop").click()
        wait_status(page, "^Stopped", 30)
        content = page.content()
        assert RIGHT_KEY not in content and WRONG_KEY not in content


def test_denied_microphone_is_said_in_the_widget(lab_server, launch_chromium, speech_wav, h):
    from playwright.sync_api import expect

    browser = launch_chromium(speech_wav, fake_ui=False)  # headless Chromium then refuses
    context, page, _log = h.new_page(browser, microphone=False)
    try:
        nb = show_widget(
            page, h, lab_server, "e2e-denied.ipynb",
            "from livetx_widgets import LiveTranscriber\n"
            "w = LiveTranscriber(provider='local', source='browser', local_engine='script',"
            " local_options={'script': {'text': 'never'}})\n"
            "w",
        )  # fmt: skip
        widget = page.locator(f"{NB} .livetx").first
        widget.locator(".livetx-start").click()
        error = widget.locator(".livetx-error")
        expect(error).to_contain_text("Microphone permission was denied", timeout=20_000)
        wait_status(page, "^Error", 20)
        got = h.kernel_eval(lab_server, nb, "[type(w.last_error).__name__, w.running]")
        assert got == ["AudioDeviceError", False]
    finally:
        context.close()
