"""What both wire protocols decide, without I/O: data and the clock in, actions out.

A ``ProtocolCore`` is one connection's protocol state (the style of python-hyper/h11 and
websockets' ``protocol.py``): it never awaits, never touches a socket and never reads a clock.
Its inputs are method calls, each with the time passed in:

* ``start(now, unix_time)`` once, after the 101;
* ``receive_audio(data, now)`` / ``receive_text(text, now)`` for every client frame, in arrival
  order (the receiver side: recorded at once, never waiting for the engine);
* ``step(now, result)`` to advance processing (the processor side, see below);
* ``tick(now)`` when ``next_deadline()`` has passed (idle timeouts, ``seconds``/``idle`` fault
  triggers, a delayed terminal message);
* ``fail(exc, now)`` when anything raised: the protocol's internal-error close.

Its outputs are ``take_actions()`` - ``Send`` (one text frame), ``Close`` (start the close
handshake) and ``Drop`` (abort TCP), in the order they must happen - plus ``next_deadline()``
and the flags ``reading`` (false once the ``stop_reading`` fault fired: read nothing more) and
``closing``.

Engine calls. The engine may be slow (whisper decodes on the CPU), so the core does not call
it: processing a queued item is a generator ("job") that yields an ``EngineCall`` and is
resumed with its result. ``step`` returns the next call to make, or ``None`` when there is no
work; whoever drives the core runs the call (``shell.SessionShell``: in the server's thread
pool; tests: inline with ``EngineCall.run``) and passes the result to the next ``step``.
Audio items queued while a call ran are joined into one job, as a recognizer that falls behind
would read them.

What is written here once for both protocols: the item queue, the fault triggers (frames,
finals, seconds, idle, end) and what each fault action does to the conversation, the idle
timeout clock, speech-started tracking (one ``SpeechStarted`` per utterance, from the engine's
event or the utterance's first word) and the terminal sequence (terminal message then close,
delayed or withheld by faults). Subclasses supply the protocol through the hooks below.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from .context import ConnectionContext
from .engine import EngineResult
from .faults import MALFORMED_FRAME, UNKNOWN_MESSAGE_TYPE, Trigger, oversized_frame

logger = logging.getLogger("livetx_widgets.server")

#: Items (audio frames or control messages) waiting for the processor before the receiver
#: should stop reading, so that TCP backpressure slows the client down.
QUEUE_ITEMS = 256
#: At most this many queued audio frames are joined into one job.
MAX_JOINED_FRAMES = 64


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True, slots=True)
class Send:
    """Send one text frame; ``kind`` is what the session record notes (the message type)."""

    text: str
    kind: str


@dataclass(frozen=True, slots=True)
class Close:
    """Start the close handshake with this code and reason (and keep reading until it ends)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Drop:
    """Abort the TCP connection without a close frame."""


Action = Send | Close | Drop


@dataclass(frozen=True, slots=True)
class EngineCall:
    """One engine method call a job waits for; ``run()`` makes it in the calling thread."""

    fn: Callable[..., Any]
    args: tuple = ()

    def run(self) -> Any:
        return self.fn(*self.args)


#: Processing one queued item: yields engine calls, is resumed with their results.
Job = Generator[EngineCall, Any, None]


class ProtocolCore:
    """One connection's protocol, without I/O. See the module docstring for the contract."""

    protocol = ""

    def __init__(self, ctx: ConnectionContext):
        self.ctx = ctx
        self.faults = ctx.faults
        self.now = 0.0  # the time of the latest input
        self.started_at = 0.0
        self.unix_time = 0.0  # wall-clock seconds at start (for timestamps on the wire)
        self.frames = 0
        self.finals_sent = 0
        #: Seconds without a client frame before ``on_idle``; ``None`` disables it.
        self.idle_timeout: float | None = None
        #: The client asked to end (CloseStream / Terminate): later input is recorded only.
        self.ending = False
        #: The server decided to close: nothing but that close is sent any more.
        self.closing = False
        #: False once the stop_reading fault fired: read nothing, answer nothing, ever.
        self.reading = True
        self._actions: list[Action] = []
        self._items: deque[tuple[str, Any]] = deque()
        self._job: Job | None = None
        self._schedule = self.faults.schedule()
        self._timers = [
            (a, t) for a, t in self._schedule if t.seconds is not None or t.idle_s is not None
        ]
        self._last_frame_at = 0.0
        self._last_audio: float | None = None
        self._terminal: tuple[dict, int, str] | None = None
        self._terminal_due: float | None = None
        self._speech_open: set[int] = set()

    # ------------------------------------------------------------------ protocol hooks
    def open(self) -> Job | None:
        """The first job, run before any client frame is read (AssemblyAI: ``Begin``)."""
        return None

    def on_audio(self, data: bytes) -> None:
        """A binary frame arrived while the session is live (receiver side)."""
        self.enqueue("audio", data)

    def on_text(self, text: str, message: Any) -> None:
        """A text frame arrived; ``message`` is its parsed JSON, or ``None`` if it did not parse."""

    def process_audio(self, data: bytes) -> Job | None:
        """Processor side: feed audio to the engine and send what it produced."""
        return None

    def process_control(self, kind: str, payload: Any) -> Job | None:
        """Processor side: a queued control message, after all audio that preceded it."""
        return None

    def on_idle(self) -> None:
        """``idle_timeout`` seconds passed without a client frame."""

    def internal_error(self) -> None:
        """Close the session the way the protocol reports a server-side failure."""
        self.close(1011, "Internal error")

    def fault_error_frame(self, code: int, reason: str) -> dict | None:
        """The message that precedes a fault-injected close, if the protocol sends one."""
        return None

    def is_final_result(self, message: dict) -> bool:
        """Is ``message`` a non-empty final result (what ``finals:N`` triggers count)?"""
        return False

    def terminal_message(self) -> dict:
        """The protocol's closing summary as it would be sent now (Metadata / Termination)."""
        raise NotImplementedError

    def speech_started_message(
        self, channel: int, timestamp: float, confidence: float
    ) -> dict | None:
        """The protocol's ``SpeechStarted`` for this utterance, or ``None`` if it sends none."""
        return None

    def on_result(self, channel: int, result: EngineResult, **options: Any) -> bool:
        """Send the message for a partial or final result; return whether it ended the
        utterance (the next speech then starts a new one)."""
        return False

    # ------------------------------------------------------------------------- inputs
    def start(self, now: float, unix_time: float) -> None:
        """The session begins (after the 101): the clocks start, the ``open`` job is queued."""
        self.now = self.started_at = self._last_frame_at = now
        self.unix_time = unix_time
        self._job = self.open()

    def receive_audio(self, data: bytes, now: float) -> None:
        self.now = self._last_frame_at = now
        self.frames += 1
        self.ctx.log.add_audio(self.ctx.pos, len(data))
        if data:
            self._last_audio = now
        if not (self.ending or self.closing):
            self.on_audio(data)
        frames = self.frames
        self._fire_when(lambda t: t.frames == frames)

    def receive_text(self, text: str, now: float) -> None:
        self.now = self._last_frame_at = now
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            parsed = None
        self.ctx.log.append(self.ctx.pos, "controls", text if parsed is None else parsed)
        if not (self.ending or self.closing):
            self.on_text(text, parsed)

    def step(self, now: float, result: Any = None) -> EngineCall | None:
        """Advance processing; return the engine call to make next, or ``None`` when idle.

        ``result`` is the value of the call the previous ``step`` returned (ignored when that
        step returned ``None``). A job's exception propagates; the job is dropped then.
        """
        self.now = now
        for _ in range(len(self._items) + 2):  # each pass starts a job or resumes one
            if self.closing or not self.reading:
                self._job = None  # what is still queued is never processed
                return None
            if self._job is None:
                if not self._items:
                    return None
                self._job, result = self._next_job(), None
                if self._job is None:
                    continue
            try:
                return self._job.send(result)
            except StopIteration:
                self._job, result = None, None
            except BaseException:
                self._job = None
                raise
        return None  # pragma: no cover - every queued item is one pass at most

    def tick(self, now: float) -> None:
        """Time passed: do whatever fell due by ``now``."""
        self.now = now
        if self._terminal_due is not None and now >= self._terminal_due:
            message, code, reason = self._terminal
            self._terminal = self._terminal_due = None
            self.send(message)
            self.close(code, reason)
        idle = self._idle_deadline()
        if idle is not None and now >= idle:
            self._last_frame_at = now  # a full timeout again before the next on_idle
            self.on_idle()
        for action, trigger in list(self._timers):
            due = self._timer_deadline(trigger)
            if due is not None and now >= due:
                self._timers.remove((action, trigger))
                self.fire(action)

    def fail(self, exc: BaseException, now: float) -> None:
        """An unexpected exception in this session: record it and close this session only."""
        self.now = now
        self._job = None
        self.ctx.update(error=f"{type(exc).__name__}: {exc}")
        self.internal_error()

    # ------------------------------------------------------------------------ outputs
    def take_actions(self) -> list[Action]:
        """What to do now, in order; each action is handed out once."""
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        """When ``tick`` next has something to do (``None``: not until more input)."""
        if self.closing:
            return None
        candidates = [self._terminal_due, self._idle_deadline()]
        candidates += [self._timer_deadline(t) for _, t in self._timers]
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    @property
    def backlog(self) -> int:
        """Queued items the processor has not taken yet."""
        return len(self._items)

    @property
    def has_work(self) -> bool:
        """Would ``step`` return an engine call or send something now?"""
        live = self.reading and not self.closing
        return live and (self._job is not None or bool(self._items))

    # ------------------------------------------------------------ for the subclasses
    def enqueue(self, kind: str, payload: Any = None) -> None:
        self._items.append((kind, payload))

    def send(self, message: dict) -> None:
        """Send one JSON message (unless closing or not reading); count finals for triggers."""
        self.send_text(json.dumps(message), str(message.get("type")))
        if self.is_final_result(message) and not self.closing and self.reading:
            self.finals_sent += 1
            finals = self.finals_sent
            self._fire_when(lambda t: t.finals == finals)

    def send_text(self, text: str, kind: str) -> None:
        if not self.closing and self.reading:
            self._actions.append(Send(text, kind))

    def close(self, code: int, reason: str = "", *, error: dict | None = None) -> None:
        """Close with ``code``/``reason``, after the ``error`` message if one is given."""
        if self.closing:
            return
        self.closing = True
        self.ctx.update(close_code=code, close_reason=reason)
        if error is not None:
            self._actions.append(Send(json.dumps(error), str(error.get("type"))))
        self._actions.append(Close(code, reason))

    def drop(self) -> None:
        """Abort the TCP connection without a close frame."""
        if self.closing:
            return
        self.closing = True
        self.ctx.update(dropped=True)
        self._actions.append(Drop())

    def finish(self, message: dict, code: int, reason: str = "") -> None:
        """Send the terminal message and close, unless a fault delays or withholds them."""
        if self.faults.never_terminal:
            self.ctx.update(terminal_withheld=True)
            return
        if self.faults.terminal_delay_s:
            self._terminal = (message, code, reason)
            self._terminal_due = self.now + self.faults.terminal_delay_s
            return
        self.send(message)
        self.close(code, reason)

    def client_ended(self) -> bool:
        """The processor reached the client's closing message: fire ``end`` faults.

        Returns whether the protocol should go on with its normal ending (False once a fault
        closed, dropped or stopped reading this session).
        """
        self._fire_when(lambda t: t.on_end)
        return not self.closing and self.reading

    def emit(self, channel: int, results: Iterable[EngineResult], **options: Any) -> None:
        """Turn engine results into messages: ``SpeechStarted`` once per utterance (the
        engine's event or, without one, the first word), then ``on_result`` for the rest."""
        for r in results:
            if r.kind == "speech_started":
                self._speech_started(channel, r.start, r.confidence)
                continue
            if r.words:
                self._speech_started(channel, r.words[0].start, r.confidence)
            if self.on_result(channel, r, **options):
                self._speech_open.discard(channel)

    def elapsed(self) -> float:
        """Seconds since the session started, at the latest input."""
        return self.now - self.started_at

    # ------------------------------------------------------------------------ faults
    def fire(self, action: str) -> None:
        """Do the injected fault ``action`` now (see ``faults.ACTIONS``) and record it."""
        if self.closing:
            return  # the connection is already ending: nothing left to break
        self.ctx.log.append(self.ctx.pos, "faults_fired", action)
        logger.info("%s session %d: fault %s", self.protocol, self.ctx.index, action)
        f = self.faults
        if action == "drop":
            self.drop()
        elif action == "close":
            error = self.fault_error_frame(f.close_code, f.close_reason)
            self.close(f.close_code, f.close_reason, error=error if f.close_error_frame else None)
        elif action == "unrequested_terminal":
            self.send(self.terminal_message())
            self.close(f.close_code, f.close_reason)
        elif action == "stop_reading":
            self.reading = False
        elif action == "malformed":
            self.send_text(MALFORMED_FRAME, "(malformed)")
        elif action == "unknown_type":
            self.send({"type": UNKNOWN_MESSAGE_TYPE, "detail": "fault injection"})
        elif action == "oversized":
            self.send_text(oversized_frame(), "(oversized)")
        else:  # pragma: no cover - ACTIONS and this dispatch are kept in step
            raise ValueError(f"unknown fault action {action!r}")

    def _fire_when(self, matches: Callable[[Trigger], bool]) -> None:
        for action, trigger in self._schedule:
            if matches(trigger):
                self.fire(action)

    # ---------------------------------------------------------------------- internals
    def _next_job(self) -> Job | None:
        kind, payload = self._items.popleft()
        if kind != "audio":
            return self.process_control(kind, payload)
        chunks = [payload]
        while self._items and self._items[0][0] == "audio" and len(chunks) < MAX_JOINED_FRAMES:
            chunks.append(self._items.popleft()[1])
        return self.process_audio(b"".join(chunks))

    def _idle_deadline(self) -> float | None:
        if self.idle_timeout is None or self.ending or self.closing or not self.reading:
            return None
        return self._last_frame_at + self.idle_timeout

    def _timer_deadline(self, trigger: Trigger) -> float | None:
        if trigger.seconds is not None:
            return self.started_at + trigger.seconds
        # idle:S counts from the last audio, once audio flowed, while the client is streaming
        if self._last_audio is None or self.ending or self.closing:
            return None
        return self._last_audio + trigger.idle_s

    def _speech_started(self, channel: int, timestamp: float, confidence: float) -> None:
        if channel in self._speech_open:
            return
        self._speech_open.add(channel)
        message = self.speech_started_message(channel, timestamp, confidence)
        if message is not None:
            self.send(message)
