"""The one place that mutates the widget: listeners record, one flusher thread applies.

Why: a session's receiver thread can deliver hundreds of partials a second, and each trait
change is a message to every open view. Letting listeners set traits directly would send one
message per partial, from a worker thread, interleaved with the kernel's own changes. Instead:

* the session's listeners (``on_partial``/``on_final``/``on_status``/``on_error``) only record
  into pending state under a condition variable: O(1), no widget access, nothing printed;
* a single flusher thread, owned by the widget (started by ``attach``, joined by ``join``),
  applies news (partials, finals, status) at most once per ``min_interval`` (20 per second)
  and at once when none went out in the last ``min_interval``, inside
  ``hold_sync()`` so one flush is one state message, plus one custom message with the new
  finals only. With nothing pending it still ticks every ``tick`` seconds to refresh the
  elapsed time, the level meter and a file's progress;
* the kernel's own changes (start, stop, the front end setting a trait) go through ``apply``
  under the same lock, so flushes and other changes never interleave.

A flush costs the same at any transcript length: it reads the transcript's ``version``, the
segments committed since the last flush (a slice from the last count) and the pending
partials; it never walks the transcript.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from ..transcript import Segment
from .wire import plain_error, segments_message

if TYPE_CHECKING:
    from ..session import TranscriptionSession

MIN_INTERVAL_S = 0.05  # at most 20 flushes a second
TICK_S = 0.1  # elapsed time / level / progress refresh while nothing else happens
END_JOIN_S = 30.0  # bound on waiting for an ended session's threads

STATUS_TEXT = {
    "idle": "Ready",
    "connecting": "Connecting…",
    "live": "Live",
    "paused": "Paused",
    "reconnecting": "Connection lost, reconnecting…",
    "stopping": "Stopping: waiting for the last results…",
    "stopped": "Stopped",
    "error": "Error",
}
ENDED = ("stopped", "error")


def flush_due(*, last: float, shown: float, dirty: bool, min_interval: float,
              tick: float) -> float:  # fmt: skip
    """When the flusher flushes next: ``tick`` after the last flush of any kind (``last``),
    or, with news pending (``dirty``), ``min_interval`` after the last flush that carried news
    (``shown``), whichever is sooner. A tick flush does not hold news back."""
    due = last + tick
    if dirty:
        due = min(due, shown + min_interval)
    return due


class Updater:
    """Feeds one ``LiveTranscriber`` from one session at a time. See the module docstring."""

    def __init__(self, widget: Any, *, min_interval: float = MIN_INTERVAL_S,
                 tick: float = TICK_S) -> None:  # fmt: skip
        self._widget = widget
        self.min_interval = min_interval
        self.tick = tick
        self.lock = threading.RLock()  # held whenever the widget's state is changed
        self._cv = threading.Condition()  # guards everything below
        self._session: TranscriptionSession | None = None
        self._thread: threading.Thread | None = None
        self._run = 0
        self._pending_finals: dict[int, Segment] = {}
        self._dirty = False  # partial/transcript changed since the last flush
        self._status: str | None = None
        self._errors: list[BaseException] = []
        self._quit = False
        self._sent = 0  # segments of this session already sent to the front end
        self._partials = 0
        self._version = -1
        self._t0 = 0.0
        self._texts = dict(STATUS_TEXT)
        self.flushes = 0  # flushes done by the flusher (tests and benchmarks read it)
        self.failures: list[BaseException] = []  # exceptions caught in the flusher

    # -- listener side (the session's receiver thread): record only ------------------------
    def on_partial(self, _event: Any) -> None:
        with self._cv:
            self._partials += 1
            self._dirty = True
            self._cv.notify()

    def on_final(self, segment: Segment) -> None:
        with self._cv:
            self._pending_finals[segment.segment_id] = segment
            self._dirty = True
            self._cv.notify()

    def on_status(self, state: str) -> None:
        with self._cv:
            self._status = state
            self._dirty = True
            self._cv.notify()

    def on_error(self, error: BaseException) -> None:
        with self._cv:
            self._errors.append(error)
            self._dirty = True
            self._cv.notify()

    def listeners(self) -> dict[str, Any]:
        """Keyword arguments for ``TranscriptionSession``."""
        return {
            "on_partial": self.on_partial,
            "on_final": self.on_final,
            "on_status": self.on_status,
            "on_error": self.on_error,
        }

    # -- kernel side ----------------------------------------------------------------------
    def apply(self, **traits: Any) -> None:
        """Set traits now, as one state message (from the kernel's own thread)."""
        with self.lock, self._widget.hold_sync():
            for name, value in traits.items():
                setattr(self._widget, name, value)

    def send(self, message: dict) -> None:
        with self.lock:
            self._widget.send(message)

    def attach(self, session: TranscriptionSession, run: int, *,
               connecting_text: str = STATUS_TEXT["connecting"]) -> None:  # fmt: skip
        """Follow ``session`` (before its ``start()``, so no status is missed)."""
        self.join()
        with self._cv:
            self._texts = {**STATUS_TEXT, "connecting": connecting_text}
            self._session = session
            self._run = run
            self._pending_finals = {}
            self._dirty = True
            self._status = None
            self._errors = []
            self._quit = False
            self._sent = 0
            self._partials = 0
            self._version = -1
            self._t0 = time.monotonic()

    def begin(self) -> None:
        """Start the flusher, once the attached session has started."""
        self._thread = threading.Thread(target=self._loop, name="livetx-widget-flusher",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def join(self, timeout: float | None = END_JOIN_S) -> bool:
        """Make the flusher do its last flush and end; True once it has (or never ran)."""
        thread = self._thread
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        with self._cv:
            self._quit = True
            self._cv.notify()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def tail_message(self, max_rows: int) -> dict:
        """The last ``max_rows`` segments for a view that just rendered (O(max_rows))."""
        session = self._session
        if session is None:
            return segments_message("tail", self._run, [], 0)
        transcript = session.transcript
        return segments_message("tail", self._run, transcript.tail(max_rows), len(transcript))

    def revision_change(self, *, committed: bool, final: bool) -> dict[str, int]:
        """The ``revision`` bump a flush carries: one when it commits finals or ends the
        session, none for partials (marimo re-runs dependent cells on it, ui/marimo.py)."""
        return {"revision": self._widget.revision + 1} if committed or final else {}

    # -- flusher thread -------------------------------------------------------------------
    def _loop(self) -> None:
        # `last`: the last flush of any kind (the tick counts from it); `shown`: the last one
        # that carried news (a partial, a final, a status). Only news is throttled, against
        # news: a partial arriving just after a tick flush goes out at once, so it waits at
        # most one frame (min_interval) and only behind another partial.
        last = shown = 0.0
        while True:
            with self._cv:
                # Bounded: every pass waits at most `tick` seconds or breaks out.
                while True:
                    now = time.monotonic()
                    due = flush_due(last=last, shown=shown, dirty=self._dirty,
                                    min_interval=self.min_interval, tick=self.tick)  # fmt: skip
                    if self._quit or now >= due:
                        break
                    self._cv.wait(due - now)
                news = self._dirty
                finals, self._pending_finals = self._pending_finals, {}
                status, self._status = self._status, None
                errors, self._errors = self._errors, []
                self._dirty = False
                quit_ = self._quit
                partials = self._partials
            session = self._session
            with contextlib.suppress(Exception):  # a liveness check must not stop the flusher
                self._widget._link.check_page(time.monotonic())
            ended = session is None or status in ENDED or session.wait(0)
            if ended and session is not None:
                session.wait(END_JOIN_S)  # joins its threads; everything is in the transcript
            try:
                self._flush(finals, status, errors, partials, final=ended)
            except Exception as exc:  # a flush bug must not kill the thread silently
                self.failures.append(exc)
            last = time.monotonic()
            if news:
                shown = last
            if ended or quit_:
                return

    def _flush(self, finals: dict[int, Segment], status: str | None,
               errors: list[BaseException], partials: int, *, final: bool) -> None:  # fmt: skip
        session, widget = self._session, self._widget
        if session is None:
            return
        transcript = session.transcript
        source = session.source
        with self.lock:
            version = transcript.version
            changes: dict[str, Any] = {}
            new: list[Segment] = []
            if version != self._version:
                self._version = version
                count = len(transcript)
                if count > self._sent:
                    # Segments committed without a final listener call (a session that ends
                    # turns pending partials into segments) are picked up here, O(new).
                    new = transcript[self._sent : count]
                    self._sent = count
                merged = {s.segment_id: s for s in new}
                for segment_id, segment in finals.items():
                    merged.setdefault(segment_id, segment)
                changes["partial"] = transcript.partial_text
                changes["n_finals"] = count
                changes["session_id"] = transcript.session_id or ""
            else:
                merged = finals
            changes["n_partials"] = partials
            warnings, last_warning = session.warnings
            if warnings != widget.n_warnings:
                changes["n_warnings"] = warnings
                changes["last_warning"] = last_warning or ""
            changes.update(self.revision_change(committed=bool(merged), final=final))
            if status is not None or final:
                state = session.state if final else status
                changes["status"] = state
                changes["status_text"] = self._texts.get(state, state)
                changes["running"] = not final
            if final and session.error is not None:
                changes["error"] = plain_error(session.error, widget._secrets())
            elif errors and not widget.error:
                changes["error"] = plain_error(errors[-1], widget._secrets())
            changes["elapsed"] = round(time.monotonic() - self._t0, 1)
            changes["level"] = 0.0 if final else round(session.level, 4)
            capture_stats = widget._link.stats(self._run)  # the page's ack, the kernel's queue
            if capture_stats is not None:
                changes["capture_stats"] = capture_stats
            duration = source.duration_s
            if duration and not source.live:
                position = min(source.position_s, duration)
                changes["progress"] = round(position / duration, 4)
                changes["time_left"] = round(max(0.0, duration - position), 1)
            with widget.hold_sync():
                for name, value in changes.items():
                    if getattr(widget, name) != value:
                        setattr(widget, name, value)
            if merged:
                ordered = [merged[k] for k in sorted(merged)]
                widget.send(segments_message("finals", self._run, ordered, len(transcript)))
            self.flushes += 1
