"""The session's control thread: status events in order, and every deadline.

It never blocks on I/O, so it can always abort the socket another thread is stuck on: the
stop timeout, the wait for the provider's summary, a send that stalls because the peer
stopped reading, a close that does not follow a terminal message. See ``session.py``."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import (
    ProviderError,
)
from .ledger import BYTES_PER_SECOND
from .timing import (
    SEND_STALL_S,
    TICK_S,
)

log = logging.getLogger("livetx_widgets.session")


class ControlThread:
    """Mixed into ``TranscriptionSession``: its state is the session's, under ``_cv``."""

    def _control_loop(self) -> None:
        """Emit status events in order and enforce every deadline. Never blocks on I/O."""
        while True:
            with self._cv:
                statuses = self._life.take_unsent()
                if not statuses:
                    if self._finished:
                        return
                    action = self._due_locked(time.monotonic())
                    if action is None:
                        self._cv.wait(TICK_S)
                        continue
            if statuses:
                for state in statuses:
                    self._listeners.emit("status", state)
                continue
            kind, target, why = action
            if kind == "summary":
                self._fail(self._no_summary_error(self._close_timeout or 0.0))
                self._abort(why)
            elif kind == "session":
                self._stop_timed_out(target)
            else:  # one connection is stuck: drop it; the receiver reconnects
                log.info("dropping the connection: %s", why)
                target.abort()

    def _due_locked(self, now: float) -> tuple[str, Any, str] | None:
        """The deadline that has passed, if any, as (what to abort, connection, why)."""
        if self._aborted:
            return None
        if self._stop_deadline is not None and now >= self._stop_deadline:
            self._stop_deadline = None
            return ("session", self._stop_timeout_s, "the stop timeout passed")
        if self._close_deadline is not None and now >= self._close_deadline:
            self._close_deadline = None
            return ("summary", None, "the provider did not send its closing message in time")
        conn = self._conn
        if conn is None:
            return None
        if self._send_since is not None and now - self._send_since >= SEND_STALL_S:
            self._send_since = None
            return ("connection", conn, f"a send blocked for {SEND_STALL_S:.0f} s")
        if self._terminal_deadline is not None and now >= self._terminal_deadline:
            self._terminal_deadline = None
            return ("connection", conn, "no close followed the provider's terminal message")
        return None

    def _stop_timed_out(self, timeout: float) -> None:
        """The stop's time is up (seen by the caller or the control thread, whichever first)."""
        with self._cv:
            # Connected, but the provider never confirmed the end: say what may be missing.
            cut_short = (
                not self._aborted and self._conn is not None and not self._meta.terminal_message
            )
        if cut_short:
            self._fail(self._no_summary_error(timeout))
        self._abort("the stop timeout passed")

    def _no_summary_error(self, waited: float) -> ProviderError:
        """The stop gave up before the provider confirmed the end with its summary."""
        with self._cv:
            pending_s = (self._ledger.taken - self._ledger.acked) / BYTES_PER_SECOND
        return ProviderError(
            f"{self._codec.name} did not send its closing summary within {waited:g} s; "
            f"results for the last {pending_s:.1f} s of audio may be missing. The transcript "
            "so far is kept (a longer stop timeout waits longer).",
            None,
            "no summary",
        )
