"""The widget's link to the page's microphone: the messages of a browser capture.

The browser microphone (``source="browser"``): the page captures (``static/capture.js``) and
sends numbered ~100 ms chunks as custom messages with a binary buffer; the kernel queues them
in a ``BrowserMicrophone`` (which fills holes with silence and drops repeats, see
``audio/browser.py``). The exchange:

* Start clicked with the browser source: the page starts capturing *inside the click* (the
  browser only lets a page start audio from a user gesture), names this capture with a fresh
  id and sends ``{"type": "start", "capture": id}``; the kernel starts the session bound to
  that id and answers ``{"type": "start-result", "capture": id, "ok": ...}`` (not ok: the page
  stops capturing; the error is in the widget). ``w.start()`` from code sends
  ``{"type": "capture"}`` instead and binds to the first capture whose audio arrives (a page
  that has been clicked before may start audio without a new click); audio of any other
  capture gets ``{"type": "capture-stop", "capture": id}``.
* ``{"type": "audio", "capture", "seq", "offset", "samples", "capturedAt", "last"}`` + PCM.
  While a cell runs, the kernel reads no widget message, so chunks wait in the channel and
  arrive as a burst afterwards: each lands at its own offset, so its timestamps are those of
  when it was spoken. The flusher reports ``capture_stats`` (the highest ``seq`` received:
  the page's ack, and the kernel's queue) at most 20 times a second; the page adds the audio
  it sent but is not acknowledged and shows "kernel busy: N s of audio waiting".
  Past ``LIVETX_SEND_WINDOW_S`` (1 s) unacknowledged, the page keeps further chunks and sends
  them once the kernel acknowledges again, several consecutive chunks to a message: the same
  fields for the first, ``"chunks": [[samples, capturedAt], ...]`` and their PCM in one
  buffer, which ``audio`` splits back into numbered chunks (``seq``, ``seq + 1``, ...). Why:
  after a 10 s busy cell the kernel handled 100 one-chunk messages, each with its own
  busy/idle status messages back through the Jupyter server to the page, and that, not the
  audio, was most of the time the backlog took to drain; ten messages carry the same audio.
* Stop clicked: the page flushes its last chunk, then sends ``stop``; the kernel ends the
  source (what is queued is still transcribed) and the session ends when it is drained.
* ``{"type": "capture-error", "message"}``: the page's capture broke (permission revoked,
  device unplugged); the session ends with an ``AudioDeviceError`` carrying that message.
* ``{"type": "view-gone", "capture": id}``: the view that captured was removed (its cell
  re-run or cleared, the notebook closed); the kernel ends that capture's source, so the
  session transcribes what it received and ends normally. A page that vanishes without a
  word (a closed tab, a lost network) is noticed by the flusher instead: no audio for
  ``PAGE_GONE_S`` while no cell was running ends the source the same way (a running cell
  holds the page's messages back, so silence then proves nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..audio import BrowserMicrophone

if TYPE_CHECKING:
    from .compare_widget import CompareTranscriber
    from .widget import LiveTranscriber

#: Largest audio message accepted: one second of 16 kHz s16le (the page sends 100 ms chunks,
#: and batches of at most ten of them).
MAX_AUDIO_MSG_BYTES = 16000 * 2
#: Most chunks in one batched audio message (``"chunks"``).
MAX_BATCH_CHUNKS = 10
#: JavaScript's largest exact integer: the page cannot send a larger seq, offset or time, so
#: one is a corrupted message (and would make the clock arithmetic overflow a float).
MAX_SAFE_INTEGER = 2**53 - 1
#: A browser capture that sent nothing for this long, with the kernel idle, has gone away.
PAGE_GONE_S = 10.0


#: The page's messages a ``BrowserLink`` handles (``handle``) besides ``start`` and ``stop``.
MESSAGES = ("audio", "capture-error", "view-gone")


class BrowserLink:
    """Routes one widget's capture messages to its running session's ``BrowserMicrophone``.

    The widget (a ``LiveTranscriber``, or a ``CompareTranscriber`` whose ``CompareSession``
    tees the one microphone to every provider) has ``_session`` (anything with ``source``
    and ``running``) and ``_updater``. ``capture`` is the id of the page capture the current
    session listens to (``None``: started from code, the first capture whose audio arrives).
    Runs on the kernel's thread (messages) and on the flusher (``check_page``, ``stats``); it
    never blocks.
    """

    def __init__(self, widget: LiveTranscriber | CompareTranscriber) -> None:
        self._widget = widget
        self.capture: str | None = None
        #: Whether the kernel runs a cell: IPython's events (``CELLS``) or marimo's clock.
        self.cells: CellClock | Any = CELLS

    def source(self) -> BrowserMicrophone | None:
        """The running session's BrowserMicrophone, ``None`` if it has none or has ended."""
        session = self._widget._session
        source = session.source if session is not None else None
        if not isinstance(source, BrowserMicrophone) or not session.running:
            return None
        return source

    # -- the exchange -----------------------------------------------------------------------
    def start(self, content: dict, start: Callable[[str | None], Any]) -> None:
        """The page's ``start``: ``start(capture)`` starts the session (and returns the
        error that prevented it, or ``None``); a capture is answered with ``start-result``."""
        capture = content.get("capture")
        capture = capture if isinstance(capture, str) and capture else None
        error = start(capture)  # errors are shown in the widget, not raised
        if capture is not None:
            ok = error is None and self.source() is not None
            self._widget._updater.send({"type": "start-result", "capture": capture, "ok": ok})

    def bind(self, capture: str | None) -> None:
        """A session is being started for ``capture`` (``None``: started from code)."""
        self.capture = capture

    def started(self, run: int) -> None:
        """The session started: from code (no capture yet), ask the page to capture."""
        if self.capture is None and self.source() is not None:
            self._widget._updater.send({"type": "capture", "run": run})

    def handle(self, kind: Any, content: dict, buffers: list) -> bool:
        """One of ``MESSAGES``; returns whether a running session's source took it."""
        if kind == "audio":
            return self.audio(content, buffers)
        if kind == "capture-error":
            return self.capture_error(content)
        if kind == "view-gone":
            return self.view_gone(content)
        return False

    def drain(self, status_text: str) -> bool:
        """Stop with a browser source: end it, so that the session transcribes what is queued
        and then ends by itself (the page sent its last chunk before ``stop``: one ordered
        channel). Returns False when the session has no running browser source."""
        source = self.source()
        if source is None:
            return False
        source.end()
        self._widget._updater.apply(status="stopping", status_text=status_text)
        return True

    def stats(self, run: int) -> dict | None:
        """The ``capture_stats`` trait (the page's ack, the kernel's queue), or ``None``."""
        session = self._widget._session
        source = session.source if session is not None else None
        if not isinstance(source, BrowserMicrophone):
            return None
        return {**source.stats(), "capture": self.capture or "", "run": run}

    def source_for(self, capture: Any) -> BrowserMicrophone | None:
        """The running session's BrowserMicrophone if ``capture`` feeds it, else ``None``."""
        source = self.source()
        if source is None:
            return None
        if not isinstance(capture, str) or not capture:
            return None
        if self.capture is None:
            self.capture = capture  # started from code: the first capture that speaks
        if capture != self.capture:
            self._widget._updater.send({"type": "capture-stop", "capture": capture})
            return None
        return source

    def audio(self, content: dict, buffers: list) -> bool:
        """A numbered chunk of 16 kHz s16le audio from the page, for the BrowserMicrophone, or
        a batch of consecutive ones (``"chunks"``: their sample counts and capture times).

        Chunks of a capture the session does not listen to are refused (the page is told to
        stop). Malformed messages are ignored: they come from our own front end.
        """
        source = self.source_for(content.get("capture"))
        if source is None or not buffers:
            return False
        seq, offset = content.get("seq"), content.get("offset")
        if not _count(seq):
            return False
        if not _count(offset):
            offset = None
        pcm = buffers[0]
        if len(pcm) > MAX_AUDIO_MSG_BYTES:
            return False
        if "chunks" not in content:
            captured_at = _epoch_s(content.get("capturedAt"))
            source.receive(pcm, seq=seq, offset=offset, captured_at=captured_at)
            return True
        pieces = _batch(content.get("chunks"), len(pcm))
        if pieces is None or seq + len(pieces) - 1 > MAX_SAFE_INTEGER:
            return False
        view, at = memoryview(pcm), 0
        for i, (samples, captured) in enumerate(pieces):
            start = None if offset is None else offset + at // 2
            if start is not None and start > MAX_SAFE_INTEGER:
                start = None
            source.receive(view[at : at + 2 * samples], seq=seq + i, offset=start,
                           captured_at=_epoch_s(captured))  # fmt: skip
            at += 2 * samples
        return True

    def view_gone(self, content: dict) -> bool:
        """The capturing view was removed: end its source; what was received is kept."""
        source = self.source_for(content.get("capture"))
        if source is None:
            return False
        self._end(source, "The view that recorded was closed")
        return True

    def capture_error(self, content: dict) -> bool:
        """The page's capture broke: end the session with that message (plain words)."""
        source = self.source_for(content.get("capture"))
        message = content.get("message")
        if source is None or not isinstance(message, str) or not message:
            return False
        source.fail(message[:500])
        return True

    def check_page(self, now: float) -> None:
        """Called by the flusher: end a browser capture whose page has gone silent.

        A live page sends a chunk every 100 ms. No chunk for ``PAGE_GONE_S`` while the
        kernel was idle all that time means the page is gone (a closed tab, a lost
        network): without this the session would stay live on KeepAlive for ever.
        """
        source = self.source()
        if source is None:
            return
        cells = self.cells
        if source.ended or cells.busy:  # busy first: marimo's clock updates idle_since
            return
        quiet_since = max(source.last_received_at, cells.idle_since)
        if now - quiet_since >= PAGE_GONE_S:
            self._end(
                source, f"The page sent no audio for {PAGE_GONE_S:.0f} s (closed or offline?)"
            )

    def _end(self, source: BrowserMicrophone, why: str) -> None:
        source.end()
        self._widget._updater.apply(
            notice=f"{why}; the session ended with the audio it had received."
        )


def _epoch_s(captured: Any) -> float | None:
    """The page's ``capturedAt`` (epoch milliseconds) in seconds, ``None`` if it is not a
    plain finite number in JavaScript's exact range."""
    finite = isinstance(captured, (int, float)) and not isinstance(captured, bool)
    return captured / 1000.0 if finite and abs(captured) < MAX_SAFE_INTEGER else None


def _batch(chunks: Any, n_bytes: int) -> list[tuple[int, Any]] | None:
    """A batched message's ``chunks`` as (samples, capturedAt) pairs, or ``None`` unless it
    is a list of 1..``MAX_BATCH_CHUNKS`` pairs whose sample counts (each > 0) add up to the
    buffer's ``n_bytes``."""
    if not isinstance(chunks, list) or not 1 <= len(chunks) <= MAX_BATCH_CHUNKS:
        return None
    out = []
    for chunk in chunks:
        if not isinstance(chunk, (list, tuple)) or len(chunk) != 2:
            return None
        samples, captured = chunk
        if not _count(samples) or samples == 0:
            return None
        out.append((samples, captured))
    if 2 * sum(samples for samples, _ in out) != n_bytes:
        return None
    return out


def _count(value: Any) -> bool:
    """A chunk number or sample offset as the page sends them: an int in 0..2**53-1."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SAFE_INTEGER
    )


class CellClock:
    """Whether the kernel is running a cell, from IPython's pre/post_run_cell events.

    While a cell runs (and the front end has no kernel subshells) the page's messages wait
    in the channel, so a quiet browser capture is only suspicious while the kernel is idle.
    Outside IPython there are no cells: always idle.
    """

    def __init__(self) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None or not hasattr(shell, "events"):
            return
        shell.events.register("pre_run_cell", self.pre)
        shell.events.register("post_run_cell", self.post)

    def pre(self, *_args: Any) -> None:
        self.busy = True

    def post(self, *_args: Any) -> None:
        self.busy = False
        self.idle_since = time.monotonic()


CELLS = CellClock()
