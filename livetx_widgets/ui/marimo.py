"""What changes when the widget runs in a marimo notebook instead of Jupyter.

marimo renders anywidget widgets (displayed directly or wrapped in ``mo.ui.anywidget``) over
its own comm (``MarimoComm``): traits and custom messages with binary buffers travel as in
Jupyter, but three Jupyter mechanisms the widget relies on have no marimo counterpart:

* **Cells and busy detection.** marimo runs no IPython shell, so the ``pre_run_cell`` /
  ``post_run_cell`` events ``CellClock`` listens to never fire. ``MarimoCellClock`` reads
  the runtime's execution context instead (set while marimo runs a cell), so a browser
  capture is not taken for a closed page while a long cell holds its audio back.
* **Kernel subshells.** marimo handles widget messages between cells on its one control
  loop, as ipykernel 6 does: audio the page sends while a cell runs waits and arrives as a
  burst when the cell ends. The widget's ``host`` trait lets the page say so in its
  "Kernel busy" line; nothing else is needed (``BrowserMicrophone`` orders the burst).
* **Reactivity.** marimo re-runs the cells that read a ``mo.ui.anywidget`` element when its
  value changes *from the page*; a trait the kernel sets re-runs nothing. The widget bumps
  its small ``revision`` trait when a session starts, when a final segment is committed and
  when a session ends (never on partials); in marimo the page writes it back as
  ``revision_seen``, which is a change from the page, so marimo re-runs the cells that read
  the element (say ``w.transcript.to_dataframe()``). The transcript itself never goes
  through widget state.

And one addition: re-running or deleting the cell that made the widget closes its comm in
marimo; ``end_with_cell`` makes that also end the widget's sessions (without it a kernel
microphone would keep recording for a widget nobody can see).

Everything here reads marimo only when the widget's comm is a marimo one, and survives a
marimo without the internals it reads (it then behaves as in Jupyter without subshells).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import traitlets

#: The ``host`` trait's values.
JUPYTER, MARIMO = "jupyter", "marimo"


class MarimoTraits(traitlets.HasTraits):
    """The synced traits of marimo support, mixed into both widgets (see the docstring above).

    ``host``: where the widget is shown; ``revision``: bumped by the kernel on a start, a
    committed final and an end (``Updater.revision_change``); ``revision_seen``: written back
    by marimo's page (``static/host.js``), which is what makes marimo re-run the cells that
    read the element. The page's JS and the kernel never write each other's trait.
    """

    host = traitlets.Unicode(JUPYTER).tag(sync=True)
    revision = traitlets.Int(0).tag(sync=True)
    revision_seen = traitlets.Int(0).tag(sync=True)

    def _follow_host(self, end: Callable[[], None]) -> str:
        """Set ``host`` from the widget's comm; in marimo, ``end()`` (non-blocking) runs when
        the cell that made the widget is re-run or deleted. Returns the host."""
        self.host = host_of(getattr(self, "comm", None))
        end_with_cell(self.host, end)
        return self.host


def host_of(comm: Any) -> str:
    """``"marimo"`` when the widget's comm is marimo's (``MarimoComm``), else ``"jupyter"``."""
    module = type(comm).__module__ or ""
    return MARIMO if module == "marimo" or module.startswith("marimo.") else JUPYTER


def _runtime_context() -> Any | None:
    """marimo's runtime context of the running kernel (thread-local there), or ``None``."""
    try:
        from marimo._runtime.context import get_context

        return get_context()
    except Exception:  # not in a marimo kernel, or a marimo without this module
        return None


class MarimoCellClock:
    """Whether marimo is running a cell, with the same reading as ``CellClock``.

    Made on the kernel's thread (the runtime context is thread-local there) and read from
    the widget's flusher: ``busy`` is whether the context has an execution context (a cell
    running), ``idle_since`` when it was last seen turning idle. The flusher reads it 10
    times a second, so a cell shorter than that may go unseen, which is harmless: the page
    gone check waits ``PAGE_GONE_S`` (10 s) of quiet.
    """

    def __init__(self, context: Any) -> None:
        self._context = context
        self._was_busy = False
        self.idle_since = time.monotonic()

    @property
    def busy(self) -> bool:
        try:
            now_busy = getattr(self._context, "execution_context", None) is not None
        except Exception:
            now_busy = False
        if self._was_busy and not now_busy:
            self.idle_since = time.monotonic()
        self._was_busy = now_busy
        return now_busy


def cell_clock(host: str, default: Any) -> Any:
    """The clock telling whether the kernel runs a cell: marimo's, or ``default``."""
    if host == MARIMO:
        context = _runtime_context()
        if context is not None:
            return MarimoCellClock(context)
    return default


def end_with_cell(host: str, end: Callable[[], None]) -> bool:
    """In marimo, call ``end()`` when the cell running now is re-run or deleted.

    Uses marimo's cell lifecycle registry, the hook that closes the widget's comm at the
    same moment. ``end`` must not block. Returns whether the hook was registered.
    """
    if host != MARIMO:
        return False
    context = _runtime_context()
    try:
        from marimo._runtime.cell_lifecycle_item import CellLifecycleItem
    except Exception:
        return False
    if context is None or getattr(context, "cell_id", None) is None:
        return False

    class _EndSessions(CellLifecycleItem):
        def create(self, context: Any) -> None:
            del context

        def dispose(self, context: Any, deletion: bool) -> bool:
            del context, deletion
            with contextlib.suppress(Exception):
                end()
            return True

    try:
        context.cell_lifecycle_registry.add(_EndSessions())
    except Exception:
        return False
    return True
