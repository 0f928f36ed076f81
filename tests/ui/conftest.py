"""Real-browser test harness: JupyterLab / Notebook 7 servers, headless Chromium with a fake
microphone, a loopback static server, and helpers to drive notebooks.

Everything here is real: the servers are ``jupyter lab`` / ``jupyter notebook`` processes from
the venv on a free loopback port (one of each per test session, started on first use, always
terminated by pid and reaped), the browser is Debian's Chromium driven by Playwright's sync API
(``executable_path=/usr/bin/chromium``; never ``playwright install``), and its microphone is
Chromium's fake capture device playing a WAV file in a loop.

Fixtures:
    ``lab_server``, ``notebook_server`` (session): a running ``JupyterServer``.
    ``jupyter`` (parametrized "lab" / "notebook"): whichever, so one test covers both.
    ``launch_chromium`` (module): ``launch_chromium(fake_audio=wav, fake_ui=True, args=())``
        -> ``Browser``, cached per arguments and closed when the module ends.
    ``browser`` (module): Chromium whose fake microphone plays ``short_wav``.
    ``page`` (function): a fresh context (``permissions=["microphone"]``) and page on
        ``browser``; a screenshot goes to ``artifacts/ui/`` when the test fails.
    ``static_server`` (module): a stdlib HTTP server on 127.0.0.1 for plain pages.
    ``speech_wav`` (session): the shared sentence padded with silence (one loop, 6.1 s).
    ``h`` (session): the ``UI`` helpers below (test modules cannot import a conftest under
        ``--import-mode=importlib``).

Browser tests are marked ``ui``. Without /usr/bin/chromium (or Playwright) they are skipped
with the reason, except under ``CI`` where they fail: CI must not pass by skipping them.
Every wait is bounded; ``LIVETX_UI_TIMEOUT_SCALE`` stretches them on a slow machine.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "ui"
STATIC = REPO / "livetx_widgets" / "ui" / "static"
CHROMIUM = os.environ.get("LIVETX_CHROMIUM", "/usr/bin/chromium")
VENV_BIN = Path(sys.executable).parent

SCALE = float(os.environ.get("LIVETX_UI_TIMEOUT_SCALE", "1"))
#: A Jupyter server answering /api/status (measured ~2 s here).
SERVER_START_S = 60.0 * SCALE
#: A notebook page showing its cells with a started kernel (measured ~3-5 s).
NOTEBOOK_OPEN_S = 60.0 * SCALE
#: One cell's output appearing after Shift+Enter (widgets import in ~1-3 s).
OUTPUT_S = 30.0 * SCALE
#: Stopping a server (it shuts its kernels down first).
SERVER_STOP_S = 20.0

#: Flags for a quiet, deterministic headless Chromium (from shared/design/testing.md).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: A host name that resolves to 127.0.0.1 in every Chromium launched here but is not
#: "localhost": pages served under it are real insecure contexts (no navigator.mediaDevices).
INSECURE_HOST = "livetx-insecure.test"


def _missing(reason: str) -> None:
    """Skip locally, fail under CI (browser tests must run there)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run)")
    pytest.skip(reason)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def free_port() -> int:
    """A currently free loopback port (the server is told not to fall back to another)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- failure screenshots -----------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can tell that the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "page"


# -- Jupyter servers ---------------------------------------------------------------------------


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` or ``jupyter notebook`` on 127.0.0.1."""

    kind: str  # "lab" | "notebook"
    port: int
    token: str
    root: Path  # ServerApp.root_dir: notebooks written here are served
    proc: subprocess.Popen
    log_path: Path

    def __repr__(self) -> str:  # the token stays out of test reports
        return f"JupyterServer({self.kind}, port={self.port}, root={self.root})"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """Where this front end opens a notebook (``reset`` drops a restored Lab workspace)."""
        if self.kind == "lab":
            return f"{self.base_url}/lab/tree/{name}?token={self.token}&reset"
        return f"{self.base_url}/notebooks/{name}?token={self.token}"

    def api(self, path: str, timeout: float = 5.0) -> Any:
        """GET a REST endpoint (``/api/sessions``...) and return its JSON."""
        req = urllib.request.Request(
            f"{self.base_url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kernel_id(self, notebook: str) -> str:
        """The id of the kernel the server runs for ``notebook`` (opened in a page)."""
        for s in self.api("/api/sessions"):
            if s.get("path") == notebook and s.get("kernel"):
                return s["kernel"]["id"]
        raise AssertionError(f"no kernel session for {notebook!r} on {self!r}")


def _jupyter_env(home: Path) -> dict[str, str]:
    """Isolate the server from the user's Jupyter/IPython state; silence the news toast."""
    settings = home / "lab-settings"
    notify = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notify.parent.mkdir(parents=True, exist_ok=True)
    notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = os.environ.copy()
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(proc: subprocess.Popen) -> None:
    """Terminate by pid (the server shuts its kernels down on SIGTERM), kill if stuck; reap."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=SERVER_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_serving(proc: subprocess.Popen, name: str, answers, log_tail) -> None:
    """Return once ``answers()`` no longer fails to connect (the server ``name`` answers);
    fail the test, with the end of its log, if the process exits or ``SERVER_START_S`` pass."""
    deadline = time.monotonic() + SERVER_START_S
    while True:  # bounded by SERVER_START_S
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}:\n{log_tail()}")
        try:
            answers()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not ready after {SERVER_START_S} s:\n{log_tail()}")
        time.sleep(0.1)  # polling a starting process's port: no event to wait on


@contextlib.contextmanager
def run_jupyter(kind: str, home: Path):
    """Start ``jupyter <kind>`` with a fresh root dir; yield a ``JupyterServer`` once it answers."""
    exe = VENV_BIN / "jupyter"
    if not exe.exists():
        _missing(f"{exe} not found: install the browser-test extra (jupyterlab, notebook)")
    root = home / "root"
    root.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    log_path = home / f"jupyter-{kind}.log"
    argv = [
        str(exe),
        kind,
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # fail loudly instead of moving to another port
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=_jupyter_env(home), cwd=root,
        )  # fmt: skip
        server = JupyterServer(kind, port, token, root, proc, log_path)
        try:
            _wait_serving(proc, f"jupyter {kind}", lambda: server.api("/api/status", timeout=2),
                          server.log_tail)  # fmt: skip
            yield server
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """One JupyterLab 4 server for the whole test session."""
    with run_jupyter("lab", tmp_path_factory.mktemp("jupyter-lab")) as server:
        yield server


@pytest.fixture(scope="session")
def notebook_server(tmp_path_factory):
    """One Notebook 7 server for the whole test session."""
    with run_jupyter("notebook", tmp_path_factory.mktemp("jupyter-notebook")) as server:
        yield server


@pytest.fixture(params=["lab", "notebook"])
def jupyter(request) -> JupyterServer:
    """Run the test once in JupyterLab and once in Notebook 7."""
    return request.getfixturevalue(f"{request.param}_server")


# -- Chromium ----------------------------------------------------------------------------------


def chromium_args(fake_audio: Path | str | None = None, *, fake_ui: bool = True) -> list[str]:
    """Launch flags: the quiet set, the fake microphone (``fake_audio`` loops), the insecure
    host mapping; ``fake_ui=False`` leaves permission prompts to the browser (headless
    Chromium then refuses the microphone, as a user clicking "Block" would)."""
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"]
    args.append("--use-fake-device-for-media-stream")
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    return args


@pytest.fixture(scope="module")
def playwright_sync():
    """Playwright's sync API for one test module (module scope: no long-lived event loop
    shared with other areas' tests)."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; no browser download)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def launch_chromium(playwright_sync):
    """``launch_chromium(fake_audio=None, *, fake_ui=True, args=())`` -> a headless Browser,
    one per distinct set of flags, closed when the module ends."""
    browsers: dict[tuple, Any] = {}

    def launch(fake_audio: Path | str | None = None, *, fake_ui: bool = True, args=()):
        key = (str(fake_audio), fake_ui, tuple(args))
        if key not in browsers:
            browsers[key] = playwright_sync.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[*chromium_args(fake_audio, fake_ui=fake_ui), *args],
                timeout=_ms(30 * SCALE),
            )
        return browsers[key]

    try:
        yield launch
    finally:
        for b in browsers.values():
            b.close()


@pytest.fixture(scope="module")
def browser(launch_chromium, short_wav):
    """Chromium whose fake microphone plays ``short_wav`` in a loop."""
    return launch_chromium(short_wav)


#: The front ends' own bundles. An uncaught error whose stack lies only in them is the host's,
#: not ours: Notebook 7.6 raises "Cannot read properties of undefined (reading 'schema')" from
#: its settings loading when a notebook opens, with or without any widget.
HOST_BUNDLES = re.compile(r"/static/(?:notebook|lab)/[^\s)]+\.js")


@dataclass
class PageLog:
    """What a page printed: console lines and uncaught errors (shown when a test fails).

    ``errors`` are the uncaught errors our code could have caused (a test asserts there are
    none); ``host_errors`` those raised wholly inside Jupyter's own bundles (kept for the
    failure dump)."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    host_errors: list[str] = field(default_factory=list)

    def add_error(self, error) -> None:
        # Stack frames with a script address ("at async Promise.all" has none).
        frames = [line for line in str(error.stack or "").splitlines()[1:]
                  if re.search(r"\b(?:https?|blob):", line)]  # fmt: skip
        if frames and all(HOST_BUNDLES.search(line) for line in frames):
            self.host_errors.append(str(error))
        else:
            self.errors.append(str(error))


_LOGS: dict[int, PageLog] = {}  # by id(page), for UI.page_log


def new_page(browser, *, microphone: bool = True, viewport=(1280, 900)):
    """A fresh context and page; returns ``(context, page, log)``."""
    context = browser.new_context(
        permissions=["microphone"] if microphone else [],
        viewport={"width": viewport[0], "height": viewport[1]},
    )
    context.set_default_timeout(_ms(OUTPUT_S))
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", log.add_error)
    _LOGS[id(page)] = log
    return context, page, log


@pytest.fixture
def page(browser, request):
    """A page with the microphone granted; screenshot and console dump if the test fails."""
    context, pg, log = new_page(browser)
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            with contextlib.suppress(Exception):
                path = UI.screenshot(pg, f"{request.node.name}-failed")
                print(f"failure screenshot: {path}")
            print("page console:\n  " + "\n  ".join(log.console[-40:]))
            print("page errors:\n  " + "\n  ".join(log.errors[-20:]))
            print("front end's own errors:\n  " + "\n  ".join(log.host_errors[-20:]))
        context.close()
        _LOGS.pop(id(pg), None)


# -- a loopback static server ------------------------------------------------------------------


class StaticServer:
    """Serves fixed pages (path -> (content type, body or a callable giving it)) on 127.0.0.1.

    Runs ``ThreadingHTTPServer.serve_forever`` in a thread it owns; ``close()`` shuts it down,
    joins the thread and closes the socket.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, Any]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in routes:
                    self.send_error(404)
                    return
                ctype, body = routes[path]
                data = body() if callable(body) else body
                data = data.encode() if isinstance(data, str) else data
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="ui-static-server",
        )  # fmt: skip
        self._thread.start()

    def add(self, path: str, body, content_type: str = "text/html; charset=utf-8") -> str:
        self.routes[path] = (content_type, body)
        return self.url(path)

    def add_file(self, path: str, file: Path, content_type: str) -> str:
        """Serve ``file`` (read on every request, so edits show without restarting)."""
        return self.add(path, lambda: Path(file).read_bytes(), content_type)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self._thread.join(timeout=10)
        self.httpd.server_close()


@pytest.fixture(scope="module")
def static_server():
    server = StaticServer()
    try:
        yield server
    finally:
        server.close()


# -- helpers for notebook pages ----------------------------------------------------------------

#: Records, in the page, each partial text and each final row as it appears (with the time),
#: so the test can tell that partials came before finals.
_OBSERVE_JS = """(root) => {
  const seen = window.__livetx = { partials: [], finals: [], t0: performance.now() };
  const partial = root.querySelector('.livetx-partial');
  const rows = root.querySelector('.livetx-rows');
  new MutationObserver(() => {
    const text = partial.textContent.trim();
    if (text && seen.partials[seen.partials.length - 1]?.text !== text) {
      seen.partials.push({ text, t: performance.now() - seen.t0 });
    }
  }).observe(partial, { childList: true, characterData: true, subtree: true });
  new MutationObserver(() => {
    for (const row of rows.querySelectorAll('.livetx-row')) {
      if (!row.dataset.seen) {
        row.dataset.seen = '1';
        seen.finals.push({ text: row.textContent, t: performance.now() - seen.t0 });
      }
    }
  }).observe(rows, { childList: true, subtree: true });
  return true;
}"""


# -- shared audio -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech_wav(short_wav, tmp_path_factory):
    """The shared sentence with 0.5 s of silence before and 1.5 s after (one loop, 6.1 s)."""
    with wave.open(str(short_wav), "rb") as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    pcm = np.concatenate([np.zeros(8000, "<i2"), speech, np.zeros(24000, "<i2")])
    path = tmp_path_factory.mktemp("e2e-audio") / "sentence-padded.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


_NB = ".jp-NotebookPanel:visible"
_MARKER = "@@LIVETX-JSON@@"
_KERNEL_READY_JS = """(() => {
    const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
        .find((p) => p.offsetParent !== null);
    if (!panel) return false;
    const kernel = panel.querySelector('.jp-KernelName');
    const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    const name = kernel ? kernel.textContent.trim() : '';
    return name !== '' && name !== 'No Kernel' && !!status
        && status.getAttribute('data-status') === 'idle';
})()"""


class UI:
    """Driving a notebook in JupyterLab or Notebook 7 (both render the same Lab widgets)."""

    ARTIFACTS = ARTIFACTS
    OBSERVE_JS = _OBSERVE_JS
    OUTPUT_S = OUTPUT_S
    NOTEBOOK_OPEN_S = NOTEBOOK_OPEN_S
    STATIC = STATIC
    INSECURE_HOST = INSECURE_HOST
    new_page = staticmethod(new_page)
    chromium_args = staticmethod(chromium_args)
    free_port = staticmethod(free_port)
    stop_process = staticmethod(_stop)
    wait_serving = staticmethod(_wait_serving)

    @staticmethod
    def screenshot(page, name: str) -> Path:
        """Save a PNG of the page under ``artifacts/ui/`` (gitignored) and return its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_safe_name(name)}.png"
        page.screenshot(path=str(path))
        return path

    @staticmethod
    def read_wav(path: Path) -> np.ndarray:
        """A 16 kHz mono 16-bit WAV as floats in [-1, 1)."""
        with wave.open(str(path), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0

    @staticmethod
    def loop_alignment(captured: np.ndarray, loop: np.ndarray) -> tuple[float, int]:
        """Where a looping WAV (``loop``, 16 kHz) starts in audio captured from it.

        Compares 10 ms RMS envelopes of one loop-length of the capture and of the loop by
        normalized circular correlation (the fake microphone loops, and capture starts at an
        arbitrary point of it). Returns ``(best correlation, lag in samples)``; speech that
        came through intact correlates above 0.9, a wrong rate or other audio far lower.
        """
        if len(captured) < len(loop):
            raise AssertionError(f"capture too short: {len(captured)} < {len(loop)} samples")

        def envelope(x: np.ndarray) -> np.ndarray:
            n = len(x) // 160
            return np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))

        ref, got = envelope(loop), envelope(captured[: len(loop)])
        ref, got = ref - ref.mean(), got - got.mean()
        corr = np.real(np.fft.ifft(np.fft.fft(got) * np.conj(np.fft.fft(ref))))
        corr /= np.linalg.norm(got) * np.linalg.norm(ref)
        lag = int(np.argmax(corr))
        return float(corr[lag]), lag * 160

    @staticmethod
    def page_log(page) -> PageLog:
        """Console lines and uncaught errors of a page made by ``page`` / ``new_page``."""
        return _LOGS[id(page)]

    @staticmethod
    def write_notebook(
        server: JupyterServer, name: str, cells: list[str], *, kernelspec: bool = True
    ) -> str:
        """Write a Python 3 notebook with these code cells into the server's root dir.

        With the kernelspec set (the default) neither front end asks which kernel to start;
        ``kernelspec=False`` writes a notebook that makes them ask.
        """
        import nbformat

        nb = nbformat.v4.new_notebook()
        if kernelspec:
            nb.metadata["kernelspec"] = {
                "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
            }  # fmt: skip
            nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nbformat.write(nb, str(server.root / name))
        return name

    @staticmethod
    def open_notebook(page, server: JupyterServer, name: str) -> None:
        """Open ``name`` and wait until its kernel is connected and idle (accepting a kernel
        dialog if one is shown).

        The toolbar's execution indicator says "idle" before any kernel exists (its default),
        and a cell run then is dropped, not queued: readiness is a kernel name in the toolbar
        ("No Kernel" until the session starts) together with an idle indicator, which follows
        initializing -> connecting -> unknown -> busy -> idle.
        """
        page.goto(server.notebook_url(name), timeout=_ms(NOTEBOOK_OPEN_S))
        page.locator(f"{_NB} .jp-Cell").first.wait_for(timeout=_ms(NOTEBOOK_OPEN_S))
        state = page.wait_for_function(
            "() => document.querySelector('.jp-Dialog .jp-mod-accept') ? 'dialog'"
            f" : ({_KERNEL_READY_JS}) ? 'idle' : null",
            timeout=_ms(NOTEBOOK_OPEN_S),
        ).json_value()
        if state == "dialog":
            page.locator(".jp-Dialog .jp-mod-accept").click()
            UI.wait_idle(page, NOTEBOOK_OPEN_S)

    @staticmethod
    def wait_idle(page, timeout_s: float = OUTPUT_S) -> None:
        """Wait until the notebook's kernel is connected and idle."""
        page.wait_for_function(f"() => {_KERNEL_READY_JS}", timeout=_ms(timeout_s))

    @staticmethod
    def cell(page, n: int):
        """The n-th cell (0-based; negative counts from the end) of the visible notebook."""
        cells = page.locator(f"{_NB} .jp-Cell")
        return cells.nth(n) if n >= 0 else cells.nth(cells.count() + n)

    @staticmethod
    def run_cell(page, n: int) -> None:
        """Click into cell ``n`` and press Shift+Enter (does not wait for it to finish)."""
        cell = UI.cell(page, n)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")

    @staticmethod
    def add_cell(page, code: str) -> int:
        """Put ``code`` in a new cell at the end of the notebook (or in the empty cell that
        Shift+Enter on the last cell left there); return the cell's index."""
        n = page.locator(f"{_NB} .jp-Cell").count() - 1
        last = UI.cell(page, n)
        last.scroll_into_view_if_needed()
        empty = (
            "jp-CodeCell" in (last.get_attribute("class") or "")
            and not last.locator(".cm-content").inner_text().strip()
            and last.locator(".jp-OutputArea-output").count() == 0
        )
        if not empty:
            last.locator(".jp-InputPrompt").click()  # select the cell (command mode)
            page.keyboard.press("Escape")
            page.keyboard.press("b")  # insert a cell below
            n += 1
        UI.cell(page, n).locator(".jp-InputArea-editor").click()
        page.keyboard.insert_text(code)  # no auto-indent or bracket closing, unlike typing
        return n

    @staticmethod
    def wait_for_output(page, text: str, cell: int | None = None, timeout_s: float = OUTPUT_S):
        """Wait until an output area (of cell ``cell``, or any) contains ``text``."""
        scope = UI.cell(page, cell) if cell is not None else page.locator(_NB)
        out = scope.locator(".jp-OutputArea-output", has_text=text).first
        try:
            out.wait_for(timeout=_ms(timeout_s))
        except Exception as e:
            shot = UI.screenshot(page, f"wait-for-output-{text}")
            seen = page.locator(f"{_NB} .jp-OutputArea-output").all_inner_texts()
            raise AssertionError(
                f"no output containing {text!r} within {timeout_s} s; outputs: {seen[-8:]}; "
                f"screenshot: {shot}"
            ) from e
        return out

    @staticmethod
    def run_code(page, code: str, timeout_s: float = OUTPUT_S) -> Any:
        """Run ``code`` in a new cell whose last line is an expression; return its value
        through JSON (printed as a marker line and parsed from the cell's output)."""
        tag = uuid.uuid4().hex[:8]
        lines = code.strip().splitlines()
        body = "\n".join(lines[:-1])
        src = (
            f"{body}\nimport json as _livetx_json\n"
            f"print({_MARKER!r} + {tag!r} + _livetx_json.dumps({lines[-1]}, default=str))"
        )
        n = UI.add_cell(page, src)
        page.keyboard.press("Shift+Enter")
        out = UI.wait_for_output(page, _MARKER + tag, cell=n, timeout_s=timeout_s)
        for line in out.inner_text().splitlines():
            if line.startswith(_MARKER + tag):
                return json.loads(line[len(_MARKER + tag) :])
        raise AssertionError(f"marker line not found in {out.inner_text()!r}")

    @staticmethod
    def kernel_eval(server: JupyterServer, notebook: str, code: str,
                    timeout_s: float = OUTPUT_S) -> Any:  # fmt: skip
        """Run ``code`` (last line an expression) in the notebook's kernel through the server's
        kernel WebSocket, not the page: nothing appears in the notebook. Returns the value
        through JSON; raises AssertionError with the traceback if the code fails.

        Like a cell, it runs on the kernel's shell thread: it waits behind a running cell, and
        while it runs, the page's widget messages (browser audio included) wait behind it, so
        never block in it waiting for something the page must send."""
        from websockets.sync.client import connect

        kid = server.kernel_id(notebook)
        lines = code.strip().splitlines()
        src = "\n".join(lines[:-1]) + (
            "\nimport json as _livetx_json\n"
            f"print({_MARKER!r} + _livetx_json.dumps({lines[-1]}, default=str))"
        )
        msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
        url = f"ws://127.0.0.1:{server.port}/api/kernels/{kid}/channels?session_id={session}"
        request = {
            "header": {
                "msg_id": msg_id, "msg_type": "execute_request", "session": session,
                "username": "livetx-tests", "date": "", "version": "5.3",
            },
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {
                "code": src, "silent": False, "store_history": False,
                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
            },
        }  # fmt: skip
        out: list[str] = []
        error = None
        deadline = time.monotonic() + timeout_s
        with connect(
            url,
            additional_headers={"Authorization": f"token {server.token}"},
            open_timeout=timeout_s,
            max_size=None,
        ) as ws:
            ws.send(json.dumps(request))
            replied = idle = False
            while not (replied and idle):  # bounded by the deadline
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"kernel did not answer within {timeout_s} s: {out}")
                msg = ws.recv(timeout=left)
                if isinstance(msg, bytes):
                    continue  # binary frames (widget buffers) are not ours
                msg = json.loads(msg)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["header"]["msg_type"], msg["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    error = "\n".join(content.get("traceback", [])) or content.get("evalue")
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
        if error:
            raise AssertionError(f"kernel code failed:\n{_ANSI.sub('', error)}")
        for line in "".join(out).splitlines():
            if line.startswith(_MARKER):
                return json.loads(line[len(_MARKER) :])
        raise AssertionError(f"no value printed by the kernel; output: {''.join(out)!r}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def h() -> type[UI]:
    return UI
