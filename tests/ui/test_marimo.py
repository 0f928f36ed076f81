"""LiveTranscriber in marimo, end to end: ``marimo edit`` and ``marimo run`` on a loopback port
(with a token passed in the URL), headless Debian Chromium whose fake microphone plays the
shared sentence, the offline Whisper engine in marimo's kernel.

What a user does is what the tests do: open the app, press Start, watch partials and then
finals appear in the widget *and* in a cell that reads ``w.transcript`` (marimo re-runs it on
each committed final and at the end, see ui/marimo.py), press Stop, read the metadata that a
cell shows. The page's websocket frames are recorded so a test can prove what the page was
sent (no API key, no transcript in widget state). Screenshots go to ``artifacts/ui/``
(``marimo-*.png``); ``LIVETX_WRITE_DOCS=1`` also writes ``docs/marimo.png`` for the README.
The last test runs the same built modules in JupyterLab, where the page writes nothing back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SCALE = float(os.environ.get("LIVETX_UI_TIMEOUT_SCALE", "1"))
SERVER_START_S = 60.0 * SCALE
APP_OPEN_S = 90.0 * SCALE  # page, kernel, imports, the widget rendered
TRANSCRIPT_S = 45.0 * SCALE  # Whisper on 2 shared cores: a final ~1 s after speech ends
WORDS = ("america", "well")  # robust words of "I do. I think that America do it very well."
KEY = "sk-livetx-marimo-0123456789abcdef"
PASTED_KEY = "sk-livetx-marimo-pasted-9876543210"


# -- marimo servers ------------------------------------------------------------------------------


@dataclass
class MarimoServer:
    """A running ``marimo edit|run`` for one notebook on 127.0.0.1."""

    mode: str
    port: int
    token: str
    notebook: Path
    proc: subprocess.Popen
    log_path: Path

    def __repr__(self) -> str:  # the token stays out of reports
        return f"MarimoServer({self.mode}, port={self.port}, {self.notebook.name})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?access_token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def marimo_exe() -> Path:
    exe = VENV_BIN / "marimo"
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the browser-test extra (marimo)")
    return exe


def marimo_env(notebook: Path, mode: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a marimo process for ``notebook``: this checkout importable, its
    own empty home (no user config ``~/.marimo.toml``, no onboarding), ``env`` on top."""
    home = notebook.parent / f".home-{mode}"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "MARIMO_SKIP_UPDATE_CHECK": "1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }


@contextlib.contextmanager
def run_marimo(h, mode: str, notebook: Path, env: dict[str, str] | None = None, *,
               auto_instantiate: bool = True):  # fmt: skip
    """Start ``marimo <mode> notebook`` (headless, token-protected); yield once it answers;
    always terminate it by pid and reap it.

    ``auto_instantiate`` (marimo reads ``.marimo.toml`` walking up from its cwd first): run
    the cells on open in ``marimo edit`` too. ``False`` is marimo's own default: the page
    waits for "Run all" (``open_app(run_all=True)``), and only then does ``marimo edit``
    keep its session cache ``__marimo__/session/<notebook>.json`` (marimo 0.25 session.py:
    ``cache_enabled = not auto_instantiate``)."""
    exe = marimo_exe()
    toml = f"[runtime]\nauto_instantiate = {'true' if auto_instantiate else 'false'}\n"
    (notebook.parent / ".marimo.toml").write_text(toml)
    port, token = h.free_port(), secrets.token_hex(12)
    argv = [str(exe), "-q", mode, str(notebook), "--headless", "--host", "127.0.0.1",
            "--port", str(port), "--token-password", token, "--no-sandbox"]  # fmt: skip
    if mode == "edit":
        argv.append("--skip-update-check")
    full_env = marimo_env(notebook, mode, env)
    log_path = notebook.parent / f"marimo-{mode}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=full_env,
                                cwd=notebook.parent)  # fmt: skip
        server = MarimoServer(mode, port, token, notebook, proc, log_path)
        try:
            health = f"http://127.0.0.1:{port}/health"
            h.wait_serving(proc, f"marimo {mode}",
                           lambda: urllib.request.urlopen(health, timeout=2).close(),
                           server.log_tail)  # fmt: skip
            yield server
        finally:
            h.stop_process(proc)  # terminate by pid, kill if stuck; reaped


def write_app(path: Path, cells: list[str]) -> Path:
    """A marimo notebook file of these cells, each a function of the names it reads from
    earlier cells, returning the names it defines (what ``marimo edit`` itself writes)."""
    import ast

    out = ["import marimo", "", "app = marimo.App()", ""]
    defined: set[str] = set()
    for code in cells:
        body = textwrap.dedent(code).strip("\n")
        tree = ast.parse(body)
        defs: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign):
                defs += [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defs += [(a.asname or a.name).split(".")[0] for a in node.names]
        loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        refs = sorted(loads & defined)
        out += ["", "@app.cell", f"def _({', '.join(refs)}):"]
        out += ["    " + line if line else "" for line in body.splitlines()]
        names = list(dict.fromkeys(d for d in defs if not d.startswith("_")))
        out.append(f"    return ({', '.join(names)}{',' if names else ''})")
        defined.update(names)
    out += ["", "", 'if __name__ == "__main__":', "    app.run()", ""]
    path.write_text("\n".join(out))
    return path


# -- the page ------------------------------------------------------------------------------------


@dataclass
class Frames:
    """Every websocket text frame the page received (what the kernel sent it)."""

    received: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.received)

    def model_updates(self) -> list[dict]:
        """The state of each widget model update the page received."""
        out = []
        for frame in self.received:
            if '"model-lifecycle"' not in frame:
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                message = json.loads(frame)["data"]["message"]
                if message.get("method") in ("open", "update"):
                    out.append(message.get("state") or {})
        return out


def open_app(page, server: MarimoServer, run_all: bool = False) -> Frames:
    """Open the app and wait for its first widget; ``run_all``: press marimo's "Run all
    stale cells" button first (a server started with ``auto_instantiate=False``)."""
    frames = Frames()

    def on_ws(ws) -> None:
        ws.on("framereceived", lambda f: frames.received.append(f) if isinstance(f, str)
              else None)  # fmt: skip

    page.on("websocket", on_ws)
    page.goto(server.url, timeout=APP_OPEN_S * 1000)
    if run_all:
        run_all_cells(page)
    page.locator(".livetx").first.wait_for(timeout=APP_OPEN_S * 1000)
    return frames


def run_all_cells(page) -> None:
    """Press the app's "Run all stale cells" button (each cell has a run button too; until
    the notebook's cells are known it is an inactive "Nothing to run") until no stale cell
    is left: a click before the kernel has instantiated the notebook may run nothing."""
    stale = page.locator(
        "[data-testid=chrome-controls-bottom-right] [data-testid=run-button]:not(.inactive-button)"
    )
    deadline = time.monotonic() + APP_OPEN_S
    while time.monotonic() < deadline:  # one click a second at most: bounded in count too
        stale.click(timeout=max(1.0, deadline - time.monotonic()) * 1000)
        for _ in range(10):
            if not stale.count():
                return
            page.wait_for_timeout(100)
    raise AssertionError(f"marimo ran no cell in {APP_OPEN_S} s of pressing Run all")


def widget(page, n: int = 0):
    return page.locator(".livetx").nth(n)


def wait_status(page, pattern: str, timeout_s: float, n: int = 0) -> None:
    """Until the n-th widget's status line matches ``pattern`` (locators pierce the shadow
    root marimo renders a widget in)."""
    loc = widget(page, n).locator(".livetx-status-text")
    deadline = time.monotonic() + timeout_s
    while not re.search(pattern, loc.inner_text()):  # bounded by the deadline
        if time.monotonic() > deadline:
            raise AssertionError(f"status {loc.inner_text()!r} never matched {pattern!r}")
        page.wait_for_timeout(100)


def output_line(page, marker: str) -> str:
    """The text of the cell output that starts with ``marker`` ('' if none yet)."""
    return page.evaluate(
        """(marker) => {
            for (const el of document.querySelectorAll('.output-area, .output')) {
                const text = el.innerText || '';
                const at = text.indexOf(marker);
                if (at >= 0) return text.slice(at).split('\\n')[0];
            }
            return '';
        }""",
        marker,
    )


def wait_output(page, marker: str, predicate, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    line = output_line(page, marker)
    while not predicate(line):  # bounded by the deadline
        if time.monotonic() > deadline:
            raise AssertionError(f"output {marker!r} is {line!r} after {timeout_s} s")
        page.wait_for_timeout(200)
        line = output_line(page, marker)
    return line


def has_words(text: str, words=WORDS) -> bool:
    return all(w in text.lower() for w in words)


def observe(page, h, n: int = 0) -> None:
    """Record the n-th widget's partials and finals as they appear (``window.__livetx``)."""
    widget(page, n).evaluate(h.OBSERVE_JS)


def wait_final_with(page, words=WORDS, timeout_s: float = TRANSCRIPT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:  # bounded by the deadline
        seen = page.evaluate("window.__livetx")
        if any(has_words(f["text"], words) for f in seen["finals"]):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"no final with {words} in {timeout_s} s: {seen}")
        page.wait_for_timeout(200)


def shadow_html(page) -> str:
    """The widget views' HTML, shadow roots included (page.content() leaves them out)."""
    return page.evaluate(
        """() => {
            const out = [];
            const walk = (root) => {
                for (const el of root.querySelectorAll('*')) {
                    if (el.shadowRoot) { out.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
                }
            };
            walk(document);
            return out.join('\\n');
        }"""
    )


def deep_text(locator) -> str:
    """An element's text with its shadow roots' (marimo renders tables and JSON in them)."""
    return locator.evaluate(
        """(el) => {
            const walk = (node) => {
                let out = '';
                if (node.shadowRoot) out += walk(node.shadowRoot);
                for (const child of node.childNodes) {
                    out += child.nodeType === 3 ? child.textContent + ' ' : walk(child);
                }
                return out;
            };
            return walk(el);
        }"""
    )


def shot(page, name: str, docs: bool = False) -> Path:
    """Save the app down to its last output under artifacts/ui/<name>.png (and, with
    ``docs`` and LIVETX_WRITE_DOCS=1, as docs/marimo.png for the README)."""
    artifacts = REPO / "artifacts" / "ui"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.mouse.move(1, 1)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 2400})  # marimo scrolls a div
    page.wait_for_timeout(300)
    bottom = page.evaluate(
        """() => Math.max(200, ...[...document.querySelectorAll('.output-area, .output')]
            .map((el) => el.getBoundingClientRect().bottom + window.scrollY))"""
    )
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(2400, bottom + 24)}
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), clip=clip)
    if docs and os.environ.get("LIVETX_WRITE_DOCS") == "1":
        page.screenshot(path=str(REPO / "docs" / "marimo.png"), clip=clip)
    page.set_viewport_size(size)
    return path


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(launch_chromium, speech_wav):
    return launch_chromium(speech_wav)


IMPORTS = """
import marimo as mo
from livetx_widgets import LiveTranscriber
"""

#: A cell that reads the widget: marimo re-runs it on a committed final and at the end.
DEPENDENT = """
df = w.transcript.to_dataframe()
dep_text = " ".join(df["text"]) if len(df) else ""
mo.md("DEP" + f"ENDENT revision={w.revision} rows={len(df)} status={w.status} text: {dep_text}")
"""

#: The metadata, once the session has ended (the same re-run shows it).
METADATA = """
meta = w.metadata
browser_stats = meta.raw.get("source", {})
mo.md("MET" + f"A status={w.status} provider={meta.provider} finals={meta.finals} "
      f"audio_s={meta.audio_sent_s:.1f} chunks={browser_stats.get('chunks', 0)} "
      f"gaps={browser_stats.get('gaps', 0)} late={browser_stats.get('max_late_s', 0):.1f} "
      f"error={meta.error}")
"""


def _meta(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["run", "edit"])
def test_browser_microphone_in_mo_ui_anywidget(mode, page, tmp_path, h):
    """Wrapped in mo.ui.anywidget: Start, partials then finals with the expected words in the
    widget and in a cell that reads ``w.transcript`` (re-run by marimo, never with the whole
    transcript in widget state), Stop, the metadata in a cell."""
    from playwright.sync_api import expect

    nb = write_app(tmp_path / "browser_app.py", [
        IMPORTS,
        "w = mo.ui.anywidget(LiveTranscriber(provider='local', source='browser'))\nw",
        DEPENDENT,
        METADATA,
    ])  # fmt: skip
    with run_marimo(h, mode, nb) as server:
        frames = open_app(page, server)
        w = widget(page)
        expect(w.locator(".livetx-status-text")).to_have_text(re.compile("^Ready"))
        wait_output(page, "DEPENDENT", lambda s: "rows=0" in s, APP_OPEN_S)
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Live", 60)  # the reported bug: it stayed at "Ready"
        expect(w.locator(".livetx-stop")).to_be_enabled()
        seen = wait_final_with(page)
        assert seen["partials"] and seen["partials"][0]["t"] < seen["finals"][0]["t"], seen
        # The dependent cell re-ran with the committed final(s).
        line = wait_output(page, "DEPENDENT", lambda s: has_words(s), TRANSCRIPT_S)
        assert "status=live" in line, line
        shot(page, f"marimo-{mode}-live")
        w.locator(".livetx-stop").click()
        wait_status(page, "^Stopped", 30)
        meta = _meta(wait_output(page, "META", lambda s: "status=stopped" in s, 30))
        assert meta["provider"] == "local" and int(meta["finals"]) >= 1, meta
        assert int(meta["chunks"]) > 30 and meta["gaps"] == "0" and meta["error"] == "None", meta
        final_line = wait_output(page, "DEPENDENT", lambda s: "status=stopped" in s, 30)
        rows = int(_meta(final_line)["rows"])
        assert rows >= 1 and has_words(final_line), final_line
        shot(page, f"marimo-{mode}-stopped")
        # Re-runs followed revisions only: partials moved no revision.
        updates = frames.model_updates()
        revisions = [u["revision"] for u in updates if "revision" in u]
        assert revisions == list(range(len(revisions))), revisions  # 0 in the open message
        assert 3 <= len(revisions) <= rows + 3, (revisions, rows)  # open, start, finals, end
        with_partial = [u for u in updates if u.get("partial")]
        assert with_partial and not any("revision" in u for u in with_partial), with_partial
        # The transcript never went through widget state (only the current partial did).
        assert not any("segments" in u or "transcript" in u for u in updates)
    source = nb.read_text()
    assert "I think" not in source and "America" not in source  # nothing saved in the file


def test_displayed_directly_in_marimo_run(page, tmp_path, h):
    """``w`` displayed as is (no mo.ui.anywidget): the same widget, Start/Stop and live text."""
    from playwright.sync_api import expect

    nb = write_app(tmp_path / "direct_app.py", [
        IMPORTS,
        "w = LiveTranscriber(provider='local', source='browser')\nw",
    ])  # fmt: skip
    with run_marimo(h, "run", nb) as server:
        open_app(page, server)
        w = widget(page)
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Live", 60)
        expect(w.locator(".livetx-stop")).to_be_enabled()
        expect(w.locator(".livetx-pause")).to_be_enabled()
        seen = wait_final_with(page)
        assert seen["partials"], seen
        w.locator(".livetx-stop").click()
        wait_status(page, "^Stopped", 30)
        expect(w.locator(".livetx-start")).to_be_enabled()
        expect(w.locator(".livetx-error")).to_be_hidden()


def _encoded(short_wav: Path, ext: str, out: Path) -> Path:
    """The shared speech as ``ext``: the WAV itself, or encoded by tests/audio/media.py."""
    if ext == "wav":
        return short_wav
    pytest.importorskip("av")
    import importlib.util

    name = "livetx_test_media"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "audio" / "media.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    media = sys.modules[name]
    pcm, rate = media.read_wav(short_wav)
    return media.encode(pcm, rate, out / f"speech.{ext}", ext)


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_a_file_source_in_marimo_edit(ext, page, tmp_path, short_wav, h):
    """A file (WAV, or MP3 through the formats extra) played at speaking pace: partials,
    finals, the session ends by itself, the dependent cell and the metadata follow."""
    audio = _encoded(short_wav, ext, tmp_path)
    nb = write_app(tmp_path / "file_app.py", [
        IMPORTS,
        f"w = mo.ui.anywidget(LiveTranscriber(provider='local', source={str(audio)!r}))\nw",
        DEPENDENT,
        METADATA,
    ])  # fmt: skip
    with run_marimo(h, "edit", nb) as server:
        open_app(page, server)
        w = widget(page)
        wait_output(page, "DEPENDENT", lambda s: "rows=0" in s, APP_OPEN_S)
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Stopped", 60)  # the file ends the session by itself
        seen = page.evaluate("window.__livetx")
        assert seen["partials"] and any(has_words(f["text"]) for f in seen["finals"]), seen
        line = wait_output(page, "DEPENDENT", lambda s: "status=stopped" in s, 30)
        assert has_words(line), line
        meta = _meta(wait_output(page, "META", lambda s: "status=stopped" in s, 30))
        assert float(meta["audio_s"]) > 3.0 and int(meta["finals"]) >= 1, meta
        shot(page, f"marimo-edit-file-{ext}")


def test_errors_are_shown_and_keys_never_reach_page_or_file(page, tmp_path, h):
    """A URL nobody listens on: the error is in the widget. A key from the environment: the
    session works, and the key is in no frame the page received, in no view's HTML, in the
    notebook file and in nothing marimo saved next to it."""
    from playwright.sync_api import expect

    from livetx_widgets.server import LocalServer

    dead_port = h.free_port()
    with LocalServer(engine="script", script={"text": "The right key works."},
                     api_key=KEY) as local:  # fmt: skip
        nb = write_app(tmp_path / "keys_app.py", [
            IMPORTS,
            "bad = LiveTranscriber(provider='deepgram', source='browser',"
            f" url='ws://127.0.0.1:{dead_port}')\nbad",
            "good = mo.ui.anywidget(LiveTranscriber(provider='deepgram', source='browser',"
            f" url={local.url!r}))\ngood",
            "paste = mo.ui.anywidget(LiveTranscriber(provider='assemblyai'))\npaste",
        ])  # fmt: skip
        with run_marimo(h, "edit", nb, env={"DEEPGRAM_API_KEY": KEY}) as server:
            frames = open_app(page, server)
            widget(page, 1).wait_for(timeout=APP_OPEN_S * 1000)
            bad, good = widget(page, 0), widget(page, 1)
            bad.locator(".livetx-start").click()
            expect(bad.locator(".livetx-error")).to_contain_text("Could not connect",
                                                                 timeout=30_000)  # fmt: skip
            wait_status(page, "^Error", 20, n=0)
            good.locator(".livetx-start").click()
            wait_status(page, "^Live", 30, n=1)
            expect(good.locator(".livetx-row .livetx-text").first).to_contain_text(
                "right key works", timeout=30_000
            )
            good.locator(".livetx-stop").click()
            wait_status(page, "^Stopped", 30, n=1)
            shot(page, "marimo-errors-and-keys")
            # A key pasted into the key field goes to the kernel and nowhere else.
            paste = widget(page, 2)
            key = paste.locator(".livetx-key-input")
            expect(key).to_be_visible()
            key.fill(PASTED_KEY)
            key.press("Enter")
            expect(paste.locator(".livetx-notice")).to_contain_text("Key received")
            expect(key).to_have_value("")
            expect(paste.locator(".livetx-key")).to_be_hidden()  # the kernel has a key now
            for secret in (KEY, PASTED_KEY):
                assert secret not in frames.text()
                assert secret not in shadow_html(page) and secret not in page.content()
            assert "right key works" in shadow_html(page)  # the check can see the views
        saved = marimo_files(nb)
        saved["marimo server log"] = server.log_path.read_text(errors="replace")
        assert_no_key(saved, (KEY, PASTED_KEY))


def assert_no_key(outputs: dict[str, str], keys) -> None:
    """No key, nor its last 8 characters (a copy masked too late, "..." + tail), in any
    output by name (the tail is part of the key: one search covers both)."""
    for where, text in outputs.items():
        for key in keys:
            at = text.find(key[-8:])
            assert at < 0, f"a key is in {where}: ...{text[max(0, at - 80) : at + 80]}"


def marimo_files(nb: Path) -> dict[str, str]:
    """The saved notebook and everything marimo wrote next to it (``__marimo__/``: session
    cache, outputs), by path."""
    paths = [nb, *nb.parent.rglob("__marimo__/**/*")]
    return {str(p): p.read_text(errors="replace") for p in paths if p.is_file()}


def session_cache_file(nb: Path) -> Path:
    """Where marimo keeps a notebook's session (cell outputs and console, replayed when the
    notebook is opened again): ``marimo edit`` writes it every 2 s while cells change, and
    ``marimo export session`` writes it once (marimo's ``get_session_cache_file``)."""
    return nb.parent / "__marimo__" / "session" / f"{nb.name}.json"


def cached_cell_texts(nb: Path) -> list[str]:
    """Each cell's outputs and console in the session cache, every string joined (one entry
    per cell); [] while there is no complete cache file."""
    try:
        cache = json.loads(session_cache_file(nb).read_text())
    except (FileNotFoundError, ValueError):  # none yet, or caught mid-write
        return []

    def strings(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            node = list(node.values())
        return [s for item in node for s in strings(item)] if isinstance(node, list) else []

    return ["\n".join(strings([c.get("outputs", []), c.get("console", [])]))
            for c in cache.get("cells", [])]  # fmt: skip


def audit_done(texts: list[str]) -> bool:
    """The cache holds both widgets' views (marimo keeps a view's model id there, not its
    state) and the AUDIT cell's last run: both stopped, the LiveTranscriber's and both
    compared providers' second turn."""
    views = sum("marimo-anywidget" in t for t in texts)
    return views >= 2 and any(
        "AUDIT" in t and t.count("stopped") >= 2 and t.count("second one") >= 3 for t in texts
    )


AUDIT_KEYS = ("sk-livetx-AUDIT-dg-5a4b3c2d1e0f9876", "sk-livetx-AUDIT-aai-0f1e2d3c4b5a6978")
AUDIT_ENV = {"DEEPGRAM_API_KEY": AUDIT_KEYS[0], "ASSEMBLYAI_API_KEY": AUDIT_KEYS[1]}


@contextlib.contextmanager
def audit_servers():
    """A Deepgram and an AssemblyAI local server (the scripted two turns), each refusing any
    key but its own audit key: a session that works proves the key from the environment
    was sent."""
    import livetx_test_support as support

    from livetx_widgets.server import LocalServer

    with contextlib.ExitStack() as stack:
        servers = [LocalServer(engine="script", script=support.TWO_TURNS, api_key=key)
                   for key in AUDIT_KEYS]  # fmt: skip
        yield tuple(stack.enter_context(server) for server in servers)


def audit_cells(dg, aai, wav: Path, run_in_kernel_s: float | None = None) -> list[str]:
    """The audit notebook: a LiveTranscriber, a CompareTranscriber (keys from the
    environment), and a cell showing their reprs, status, errors, notices, metadata and
    transcripts. ``run_in_kernel_s``: a cell starts both and waits (a headless run), else
    the page's Start buttons do."""
    cells = [
        "import marimo as mo\nfrom livetx_widgets import CompareTranscriber, LiveTranscriber",
        f"live = mo.ui.anywidget(LiveTranscriber(provider='deepgram', url={dg.url!r},"
        f" source={str(wav)!r}))\nlive",
        f"cmp = mo.ui.anywidget(CompareTranscriber([('deepgram', {{'url': {dg.url!r}}}),"
        f" ('assemblyai', {{'url': {aai.url!r}}})], source={str(wav)!r}))\ncmp",
    ]  # fmt: skip
    ran = ""
    if run_in_kernel_s is not None:
        cells.append(f"live.widget.start()\ncmp.widget.start()\n"
                     f"ran = (live.widget.wait({run_in_kernel_s}), "
                     f"cmp.widget.wait({run_in_kernel_s}))")  # fmt: skip
        ran = "ran={ran} "
    cells.append(
        "outs = [live.widget, cmp.widget]\n"
        f"mo.md('AUD' + f'IT {ran}revision={{live.revision}} {{cmp.revision}} "
        "status={live.status} {cmp.status} ' + ' | '.join(repr(o) + "
        "str(getattr(o, 'error', '')) + str(getattr(o, 'notice', '')) for o in outs) + ' ' + "
        "repr(live.metadata) + ' ' + repr(live.transcript.text) + ' ' + "
        "repr({k: t.text for k, t in cmp.transcripts.items()}))"
    )
    return cells


def test_secret_audit_env_keys_reach_no_marimo_output(page, tmp_path, speech_wav, h):
    """Secret audit (issue 15): a LiveTranscriber and a CompareTranscriber take their keys from
    the environment (distinctive fake keys; the servers refuse any other, so a session that
    works proves the key was sent) and run to the end in ``marimo edit``. Neither key, nor its
    tail, is in: any frame the page received (every widget model state included), the views'
    HTML, the cell outputs (one shows the widgets' reprs, status, errors and metadata), the
    saved notebook, marimo's session cache (which must hold those outputs) or the marimo
    server's log.

    The server runs with marimo's default ``auto_instantiate = false`` and the page presses
    "Run all": with auto-instantiate on, ``marimo edit`` keeps no session cache at all."""
    from playwright.sync_api import expect

    with audit_servers() as (dg, aai):
        nb = write_app(tmp_path / "audit_app.py", audit_cells(dg, aai, speech_wav))
        with run_marimo(h, "edit", nb, env=AUDIT_ENV, auto_instantiate=False) as server:
            frames = open_app(page, server, run_all=True)
            live = widget(page, 0)
            cmp = page.locator(".livetx-cmp").first
            expect(cmp.locator(".livetx-cmp-col")).to_have_count(2, timeout=APP_OPEN_S * 1000)
            live.locator(".livetx-start").click()
            cmp.locator(".livetx-start").click()
            for i in range(2):
                expect(cmp.locator(".livetx-cmp-col").nth(i).locator(".livetx-cmp-row").nth(1)
                       ).to_contain_text("second one", timeout=60_000)  # fmt: skip
            expect(live.locator(".livetx-row .livetx-text").nth(1)).to_contain_text(
                "second one", timeout=60_000
            )
            wait_status(page, "^Stopped", 60, n=0)
            line = wait_output(page, "AUDIT", lambda s: s.count("stopped") >= 2, 60)
            assert line.count("second one") >= 3, line  # all three transcripts shown
            outputs = {
                "frames the page received": frames.text(),
                "widget model states": json.dumps(frames.model_updates()),
                "views' HTML": shadow_html(page),
                "page": page.content(),
                "cell outputs": page.evaluate(
                    "() => [...document.querySelectorAll('.output-area, .output')]"
                    ".map((el) => el.innerText).join('\\n')"
                ),
            }
            assert "second one" in outputs["views' HTML"] and "AUDIT" in outputs["cell outputs"]
            assert frames.model_updates(), "the page received no widget state"
            # marimo writes the cache every 2 s after a change: the AUDIT cell's last run
            deadline = time.monotonic() + 30 * SCALE
            while not audit_done(cached_cell_texts(nb)):  # bounded by the deadline
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no session cache with the outputs: "
                        f"{cached_cell_texts(nb)}\n{server.log_tail()}"
                    )
                time.sleep(0.2)  # a file another process rewrites: no event to wait on
        outputs.update(marimo_files(nb))
        outputs["marimo server log"] = server.log_path.read_text(errors="replace")
        assert str(session_cache_file(nb)) in outputs, sorted(outputs)
        assert audit_done(cached_cell_texts(nb))  # still, after marimo exited
        assert_no_key(outputs, AUDIT_KEYS)


def test_secret_audit_marimo_export_session_snapshot(tmp_path, speech_wav):
    """Secret audit (issue 15), headless: ``marimo export session`` runs the audit notebook
    (a cell starts both widgets and waits for the file to end) and writes the session
    snapshot people commit next to a notebook. The snapshot must exist and hold both
    widgets' views and the AUDIT cell's output (reprs, status, metadata, transcripts), and
    neither key, nor its tail, is in it, in the notebook or in marimo's output."""
    with audit_servers() as (dg, aai):
        nb = write_app(tmp_path / "audit_export.py",
                       audit_cells(dg, aai, speech_wav, run_in_kernel_s=TRANSCRIPT_S))  # fmt: skip
        argv = [str(marimo_exe()), "-q", "export", "session", str(nb), "--no-sandbox",
                "--force-overwrite"]  # fmt: skip
        done = subprocess.run(argv, cwd=nb.parent, env=marimo_env(nb, "export", AUDIT_ENV),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=SERVER_START_S + 2 * TRANSCRIPT_S)  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    texts = cached_cell_texts(nb)
    assert audit_done(texts), f"{texts}\n{said}"
    assert any("ran=(True, True)" in t for t in texts), texts  # both ended within the wait
    outputs = {**marimo_files(nb), "marimo export's output": said}
    assert str(session_cache_file(nb)) in outputs, sorted(outputs)
    assert_no_key(outputs, AUDIT_KEYS)


def test_busy_cell_backlog_is_said_and_transcribed(page, tmp_path, h):
    """marimo has no kernel subshells: while a cell runs, the page's audio waits. A dependent
    cell that sleeps 6 s on the first final makes the widget say so (naming marimo), and the
    backlog is transcribed afterwards at its own times, without holes."""
    from playwright.sync_api import expect

    nb = write_app(tmp_path / "busy_app.py", [
        IMPORTS,
        "w = mo.ui.anywidget(LiveTranscriber(provider='local', source='browser'))\nw",
        "import time\nslept = time.sleep(6) if w.revision == 2 else None\n"
        "mo.md('BUS' + f'Y revision={w.revision}')",
        METADATA,
    ])  # fmt: skip
    with run_marimo(h, "run", nb) as server:
        open_app(page, server)
        w = widget(page)
        busy = w.locator(".livetx-busy")
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Live", 60)
        wait_final_with(page)  # revision 2: the sleeping re-run starts
        expect(busy).to_be_visible(timeout=10_000)
        expect(busy).to_contain_text("Kernel busy")
        expect(busy).to_contain_text("marimo")
        shot(page, "marimo-busy")
        expect(busy).to_be_hidden(timeout=30_000)
        page.wait_for_timeout(2500)  # let the utterance spoken meanwhile end
        w.locator(".livetx-stop").click()
        wait_status(page, "^Stopped", 30)
        meta = _meta(wait_output(page, "META", lambda s: "status=stopped" in s, 30))
        assert meta["gaps"] == "0" and int(meta["finals"]) >= 2, meta
        assert float(meta["late"]) > 4.0, meta  # audio really waited for the cell


def test_kernel_microphone_in_marimo_run(page, tmp_path, pulse_mic, short_wav, h):
    """The kernel's microphone (a PulseAudio virtual source): Start, speech played into it,
    the words as finals, Stop."""
    nb = write_app(tmp_path / "mic_app.py", [
        IMPORTS,
        "w = mo.ui.anywidget(LiveTranscriber(provider='local', source='kernel',"
        " device='pulse'))\nw",
        DEPENDENT,
    ])  # fmt: skip
    with run_marimo(h, "run", nb) as server:  # inherits PULSE_SERVER from pulse_mic
        open_app(page, server)
        w = widget(page)
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Live", 60)
        player = pulse_mic.play(short_wav)
        wait_final_with(page)
        player.wait(timeout=30)
        line = wait_output(page, "DEPENDENT", lambda s: has_words(s), TRANSCRIPT_S)
        w.locator(".livetx-stop").click()
        wait_status(page, "^Stopped", 30)
        assert "rows=" in line


def test_the_quickstart_app_runs_on_the_offline_engine(page, tmp_path, short_wav, h):
    """notebooks/marimo_quickstart.py under ``marimo run`` (a copy: the harness writes its
    config next to the notebook): a file on the offline engine, the table and the metadata
    follow the session."""
    nb = tmp_path / "marimo_quickstart.py"
    nb.write_text((REPO / "notebooks" / "marimo_quickstart.py").read_text())
    env = {"LIVETX_PROVIDER": "local", "LIVETX_AUDIO": str(short_wav)}
    with run_marimo(h, "run", nb, env=env) as server:
        open_app(page, server)
        w = widget(page)
        observe(page, h)
        w.locator(".livetx-start").click()
        wait_status(page, "^Stopped", 60)
        seen = page.evaluate("window.__livetx")
        assert seen["partials"] and any(has_words(f["text"]) for f in seen["finals"]), seen
        status = wait_output(page, "Stopped", lambda s: "segment" in s, 30)
        assert "error" not in status, status
        status_n = int(re.search(r"(\d+) segments?", status).group(1))
        assert status_n >= 1, status
        # The DataFrame cell: a marimo table (in its own shadow root) with the words.
        table = page.locator("td", has_text=re.compile("america", re.I))
        table.first.wait_for(timeout=30_000)
        assert has_words(table.first.inner_text()), table.first.inner_text()
        meta = page.locator(".output-area, .output", has_text="session_id").first
        meta.wait_for(timeout=30_000)
        text = deep_text(meta)
        assert re.search(r"finals\W+[1-9]", text) and "local" in text, text
        shot(page, "marimo-quickstart", docs=True)


def test_compare_transcriber_in_mo_ui_anywidget(page, tmp_path, speech_wav, h):
    """CompareTranscriber on the same mechanisms: two providers (Deepgram's and AssemblyAI's
    wire protocols, a local script server) side by side on one file, live partials and
    finals in both columns, a cell reading ``c.transcripts`` re-run by marimo, the end."""
    import livetx_test_support as support
    from playwright.sync_api import expect

    from livetx_widgets.server import LocalServer

    with LocalServer(engine="script", script=support.TWO_TURNS) as local:
        nb = write_app(tmp_path / "compare_app.py", [
            "import marimo as mo\nfrom livetx_widgets import CompareTranscriber",
            "c = mo.ui.anywidget(CompareTranscriber(["
            f"('deepgram', {{'url': {local.url!r}}}), ('assemblyai', {{'url': {local.url!r}}})],"
            f" source={str(speech_wav)!r}))\nc",
            "texts = {label: t.text for label, t in c.transcripts.items()}\n"
            "mo.md('COMP' + f'ARE revision={c.revision} status={c.status} ' + "
            "' | '.join(f'{k}: {v}' for k, v in texts.items()))",
        ])  # fmt: skip
        with run_marimo(h, "run", nb) as server:
            frames = open_app(page, server)
            cmp = page.locator(".livetx-cmp").first
            expect(cmp.locator(".livetx-cmp-col")).to_have_count(2)
            seen_partial = set()
            cmp.locator(".livetx-start").click()
            deadline = time.monotonic() + 30
            while cmp.locator(".livetx-cmp-row").count() < 4:  # two turns in two columns
                for i in range(2):
                    if cmp.locator(".livetx-cmp-partial").nth(i).inner_text().strip():
                        seen_partial.add(i)
                assert time.monotonic() < deadline, deadline
                page.wait_for_timeout(50)
            assert seen_partial, "no partial shown in any column"
            wait_status(page, "^Stopped", 30)
            for i in range(2):
                rows = cmp.locator(".livetx-cmp-col").nth(i).locator(".livetx-cmp-row")
                expect(rows.first).to_contain_text("first sentence")
                expect(rows.nth(1)).to_contain_text("second one")
            line = wait_output(page, "COMPARE", lambda s: "status=stopped" in s, 30)
            assert line.count("second one") == 2 and "deepgram" in line, line
            shot(page, "marimo-compare")
            # Finals went as messages: the state carries a column's current partial only,
            # never the transcript (both sentences at once).
            states = [json.dumps(u) for u in frames.model_updates()]
            assert any("second one" in u for u in states)  # the partial did
            assert not any("first sentence" in u and "second one" in u for u in states)


def test_re_running_the_widgets_cell_ends_its_session(page, tmp_path, dialogue_wav, h):
    """``marimo edit``: re-running the cell that made a recording widget closes it in the page
    and ends its session in the kernel (a probe cell counts the running sessions)."""
    nb = write_app(tmp_path / "rerun_app.py", [
        IMPORTS + "from livetx_widgets.ui import widget as widget_module",
        f"w = LiveTranscriber(provider='local', source={str(dialogue_wav)!r})\nw",
        "n_live = sum(1 for x in list(widget_module._RUNNING)\n"
        "             if x.session is not None and x.session.running)\n"
        "mo.md('RUN' + f'NING={n_live}')",
    ])  # fmt: skip
    with run_marimo(h, "edit", nb) as server:
        open_app(page, server)
        wait_output(page, "RUNNING", lambda s: s == "RUNNING=0", APP_OPEN_S)
        widget(page).locator(".livetx-start").click()
        wait_status(page, "^Live", 60)

        def run_cell(text: str) -> None:  # the cell's own run button, as a user would
            cell = page.locator(".marimo-cell", has_text=text).first
            cell.hover()
            cell.locator("[data-testid='run-button']").first.click()

        run_cell("n_live")  # the probe, by hand
        wait_output(page, "RUNNING", lambda s: s == "RUNNING=1", 30)
        run_cell("w = LiveTranscriber")  # a new widget replaces the recording one
        wait_status(page, "^Ready", 30)
        deadline = time.monotonic() + 20  # the stop is asked for, not waited for
        while True:  # bounded by the deadline
            run_cell("n_live")
            page.wait_for_timeout(1000)
            if output_line(page, "RUNNING") == "RUNNING=0":
                break
            assert time.monotonic() < deadline, output_line(page, "RUNNING")


def test_in_jupyterlab_the_shared_views_work_and_write_nothing_back(lab_server, page, h):
    """The same built modules (host.js in front of widget.js and compare.js) in JupyterLab:
    both widgets run a session, their revision moves, and the page writes nothing back
    (``revision_seen`` stays 0: Jupyter re-runs no cell, so there is nothing to ask for)."""
    import livetx_test_support as support
    from playwright.sync_api import expect

    from livetx_widgets.server import LocalServer

    with LocalServer(engine="script", script=support.TWO_TURNS) as local:
        nb = h.write_notebook(lab_server, "marimo-shared-in-lab.ipynb", [
            "import numpy as np\nfrom livetx_widgets import CompareTranscriber, LiveTranscriber\n"
            "audio = np.zeros(16000 * 5, dtype=np.int16)\n"
            f"w = LiveTranscriber(provider='deepgram', url={local.url!r}, source=audio)\n"
            f"c = CompareTranscriber([('deepgram', {{'url': {local.url!r}}}),"
            f" ('assemblyai', {{'url': {local.url!r}}})], source=audio)\n"
            "display(w, c)",
        ])  # fmt: skip
        h.open_notebook(page, lab_server, nb)
        h.run_cell(page, 0)
        single = page.locator(".livetx:not(.livetx-cmp)").first
        cmp = page.locator(".livetx-cmp").first
        single.wait_for(timeout=60_000)
        cmp.wait_for(timeout=60_000)
        single.locator(".livetx-start").click()
        cmp.locator(".livetx-start").click()
        expect(single.locator(".livetx-status-text")).to_contain_text("Stopped", timeout=30_000)
        expect(cmp.locator(".livetx-status-text")).to_contain_text("Stopped", timeout=30_000)
        expect(single.locator(".livetx-row")).to_have_count(2)
        expect(cmp.locator(".livetx-cmp-row")).to_have_count(4)
        got = h.kernel_eval(lab_server, nb,
                            "[w.host, w.revision, w.revision_seen, c.host, c.revision,"
                            " c.revision_seen]")  # fmt: skip
        assert got[0] == got[3] == "jupyter", got
        assert got[1] >= 2 and got[4] >= 2, got  # the revision moved...
        assert got[2] == got[5] == 0, got  # ...and nothing was written back
