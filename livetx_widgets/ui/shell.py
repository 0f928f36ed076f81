"""``WidgetShell``: what ``LiveTranscriber`` and ``CompareTranscriber`` are alike as widgets.

Both are thin shells around what runs (a ``TranscriptionSession``; a ``CompareSession`` of
several), built so that whatever makes one work in a front end makes the other work too: the
same small synced traits for the state both views show, one ``Updater`` through which every
change goes (``set_state`` from the page too, under its lock), the same custom messages from
the page (``hello``, ``start``, ``stop``, the browser microphone's, ``pause``/``resume``,
``play``) routed the same way, the same ``BrowserLink`` for the page's microphone, and the
same ends: ``close()``, garbage collection and the kernel's exit stop what still runs.

A subclass has ``_session`` (the current run: anything with ``source``, ``running``,
``start``, ``stop``, ``request_stop``, ``close``), ``_updater``, ``_link``, ``_stop_timeout``,
``_start_error``, and implements ``_new_run``, ``_keep``, ``_follow``, ``_request_stop``,
``_play_clip``, ``pause``/``resume``, ``_own_keys`` and ``_ran``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import anywidget
import traitlets

from ..credentials import KEY_ENV
from ..errors import ConfigurationError, LivetxError, SessionStateError
from .browser_link import CELLS
from .browser_link import MESSAGES as BROWSER_MESSAGES
from .choices import env_key
from .marimo import MarimoTraits, cell_clock
from .updater import STATUS_TEXT
from .wire import plain_error


class WidgetShell(anywidget.AnyWidget, MarimoTraits):
    """The part of both widgets that is the same; see the module docstring."""

    # State both views show: small values only (finals travel as custom messages).
    status = traitlets.Unicode("idle").tag(sync=True)
    status_text = traitlets.Unicode(STATUS_TEXT["idle"]).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    run = traitlets.Int(0).tag(sync=True)
    elapsed = traitlets.Float(0.0).tag(sync=True)
    progress = traitlets.Float(-1.0).tag(sync=True)
    n_partials = traitlets.Int(0).tag(sync=True)
    source_label = traitlets.Unicode("").tag(sync=True)
    #: "browser" when the page's microphone is the source (the page captures it).
    source_kind = traitlets.Unicode("kernel").tag(sync=True)
    #: Browser microphone: the capture the kernel listens to, its ack and queue (browser_link).
    capture_stats = traitlets.Dict().tag(sync=True)
    max_rows = traitlets.Int(200).tag(sync=True)

    # -- set-up (after super().__init__) ---------------------------------------------------
    def _connect_front_end(self, runs: Iterable[Any]) -> weakref.WeakSet:
        """Take the page's messages, follow the host, and end the runs with the widget.

        ``runs``: every run (marimo ends them when the widget's cell is re-run). Returns the
        set to add each run to, held weakly, that the widget's collection (without
        ``close()``: ipywidgets' weak references) stops: the runs hold this widget's
        listeners, so a strong reference there kept every widget that ever started alive
        (benchmarks/storms.py).
        """
        self.on_msg(self._on_front_end_msg)
        _keep_front_end_route(self.comm)
        CELLS.install()
        host = self._follow_host(lambda: _end_all(runs, 0.0))  # ui/marimo.py
        self._link.cells = cell_clock(host, CELLS)
        refs: weakref.WeakSet = weakref.WeakSet()
        weakref.finalize(self, _end_all, refs, self._stop_timeout)
        return refs

    # -- starting ---------------------------------------------------------------------------
    def _start(self, capture: str | None = None) -> LivetxError | None:
        """Start a run; returns (and shows) the local error that prevented it.

        ``capture``: the id of the page capture that feeds a browser-microphone run (``None``:
        the first capture whose audio arrives, see ``BrowserLink``).
        """
        current = self._session
        if current is not None and current.running:
            return None
        self._updater.join()  # the previous run's flusher has ended; reap it
        self._start_error = None
        self._link.bind(capture)
        try:
            run = self._new_run()
        except LivetxError as exc:
            self._start_error = exc
            self._show_error(exc)
            return exc
        if current is not None:
            current.close()  # ended: only the current run's audio is kept
        self._keep(run)
        source = run.source
        self._updater.apply(
            run=self.run + 1, status="connecting", error="", notice="", running=True,
            elapsed=0.0, n_partials=0, capture_stats={}, revision=self.revision + 1,
            progress=0.0 if source.duration_s and not source.live else -1.0,
            **self._follow(run, self.run + 1),
        )  # fmt: skip
        try:
            run.start()
        except LivetxError as exc:
            self._abandon(run)
            self._show_error(exc)
            return exc
        self._updater.begin()
        _RUNNING.add(self)
        self._link.started(self.run)  # from code: asks the page to capture
        return None

    def _abandon(self, run: Any) -> None:
        """``run.start()`` failed: let go of what it opened."""

    # -- the page ---------------------------------------------------------------------------
    def set_state(self, sync_data: dict) -> None:
        """A trait changed in the front end: apply it under the updater's lock."""
        with self._updater.lock:
            super().set_state(sync_data)

    def _on_front_end_msg(self, _widget: Any, content: Any, buffers: list) -> None:
        """Actions from the front end. Runs on the kernel's thread; never blocks for long."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "hello":
            self._updater.send(self._updater.tail_message(self.max_rows))
        elif kind == "start":
            self._link.start(content, self._start)  # answers a page capture
        elif kind == "stop":
            self._request_stop()
        elif kind in BROWSER_MESSAGES:
            self._browser_msg(kind, content, buffers)
        elif kind in ("pause", "resume"):
            # A click can race the run's own end (a file finishing): nothing to do then.
            with contextlib.suppress(SessionStateError):
                self.pause() if kind == "pause" else self.resume()
        elif kind == "play":
            self._play_clip(content)
        else:
            self._other_msg(kind, content)

    def _browser_msg(self, kind: str, content: dict, buffers: list) -> None:
        self._link.handle(kind, content, buffers)

    def _other_msg(self, kind: Any, content: dict) -> None:
        """A message only this widget knows (``LiveTranscriber``: key, devices, finalize)."""

    def _send_clip(self, reply: dict, buffers: list) -> None:
        """A clicked row's audio (``playback.clip_reply``), to the asking view."""
        with self._updater.lock:
            self.send(reply, buffers)

    def _show_error(self, error: BaseException) -> None:
        extra = {"level": 0.0} if self.has_trait("level") else {}
        self._updater.apply(
            status="error", status_text=STATUS_TEXT["error"], running=False,
            error=plain_error(error, self._secrets()), **extra,
        )  # fmt: skip

    # -- keys -------------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        """Every key this widget could use (to mask them out of anything shown)."""
        return [*self._own_keys(), *(k for k in (env_key(p) for p in KEY_ENV) if k)]

    def _own_keys(self) -> list[str]:
        return []

    # -- the end ----------------------------------------------------------------------------
    def _ran(self) -> Iterable[Any]:
        """Every run so far (each ``close()``d with the widget: that releases its audio)."""
        return ()

    def close(self) -> None:
        """Stop what runs (within ``stop_timeout``), release every run's audio, then close."""
        current = getattr(self, "_session", None)  # None if __init__ failed half way
        if current is not None and current.running:
            current.stop(self._stop_timeout)
        for old in self._ran():
            old.close()  # releases the kept audio
        updater = getattr(self, "_updater", None)
        if updater is not None:
            updater.join(self._stop_timeout)
        _RUNNING.discard(self)
        super().close()


def check_max_rows(max_rows: Any) -> int:
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ConfigurationError(f"max_rows must be a positive int, got {max_rows!r}")
    return max_rows


def _end_all(runs: Iterable[Any], timeout: float) -> None:
    """The widget was garbage-collected (or its marimo cell re-run): ask its running runs to
    stop (never blocks)."""
    for run in list(runs):
        if run.running:
            with contextlib.suppress(Exception):
                run.request_stop(timeout)


# Widgets whose run may still go on. When the kernel shuts down (restart, "Shut Down
# Kernel"), the interpreter joins every non-daemon thread before ``atexit`` handlers run, so a
# session on a live microphone would hold the kernel until it is killed. This hook runs before
# that join (the one concurrent.futures uses) and stops those runs without waiting.
_RUNNING: weakref.WeakSet[WidgetShell] = weakref.WeakSet()


def _stop_sessions_at_exit() -> None:
    for widget in list(_RUNNING):
        session = widget._session
        if session is not None and session.running:
            with contextlib.suppress(Exception):
                session.stop(timeout=0.0)
                widget._updater.join(5.0)


_register_atexit: Callable[[Callable[[], None]], None] | None = getattr(
    threading, "_register_atexit", None
)
if _register_atexit is not None:  # CPython >= 3.9
    _register_atexit(_stop_sessions_at_exit)


def _keep_front_end_route(comm: Any) -> None:
    """Handle this widget's messages where the front end sends them (ipykernel >= 7).

    JupyterLab >= 4.4 sends each widget's messages on a kernel *subshell* (its own thread),
    so they are handled while a cell runs. But ipykernel 7.4 re-routes a comm's incoming
    messages to the subshell its last *outgoing* message came from, and this widget's
    updates come from the flusher thread, whose parent is the main shell: measured, the
    browser's audio then alternated between the main shell (held back by a running cell)
    and the subshell, and arrived out of order. Keeping the front end's choice makes the
    audio flow during a busy cell wherever subshells exist; elsewhere (ipykernel 6, front
    ends without subshells) it waits for the cell and arrives as a burst, which the
    BrowserMicrophone puts back in order either way.
    """
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = lambda _data, default: default
