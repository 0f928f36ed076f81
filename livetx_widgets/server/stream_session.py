"""The machinery both wire protocols share: receive, process, send, time out, misbehave.

A session runs two tasks on the event loop:

* the **receiver** reads every client frame as soon as it arrives. It records the frame,
  applies the idle timeout and the checks that depend on arrival time (AssemblyAI's chunk
  size and real-time rate), triggers frame-counted faults, and queues audio and control
  messages in arrival order. It never waits for the engine.
* the **processor** takes the queue in order, feeds audio to the engine (in the server's
  thread pool, so a CPU-bound recognizer never blocks the loop; consecutive audio frames are
  joined into one call when the engine falls behind), handles control messages after the audio
  that preceded them, and sends results.

Subclasses (``DeepgramSession``, ``AssemblyAISession``) supply the protocol: ``open``,
``on_audio``, ``on_text``, ``process_audio``, ``process_control``, ``on_idle``,
``internal_error``, ``is_final_result``, ``terminal_message``. Any exception in a session ends
that session only (with the protocol's internal-error close); other connections never notice.

Injected faults (``faults.Faults``) fire here, for both protocols alike: each ``(action,
trigger)`` of ``Faults.schedule()`` is checked where its trigger can happen - audio frames in
the receiver, final results as they are sent, timers for ``seconds``/``idle`` triggers, and
the client's closing message when the processor reaches it (``client_ended``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .context import ConnectionContext
from .faults import MALFORMED_FRAME, UNKNOWN_MESSAGE_TYPE, Trigger, oversized_frame

logger = logging.getLogger("livetx_widgets.server")

#: Items (audio frames or control messages) waiting for the processor before the receiver
#: stops reading and TCP backpressure slows the client down.
QUEUE_ITEMS = 256
#: At most this many queued audio frames are joined into one engine call.
MAX_JOINED_FRAMES = 64


class StreamSession:
    """One client connection speaking one protocol. Call ``await run()`` once."""

    protocol = ""

    def __init__(self, ws: ServerConnection, ctx: ConnectionContext):
        self.ws = ws
        self.ctx = ctx
        self.faults = ctx.faults
        self.loop = asyncio.get_running_loop()
        self.opened_at = self.loop.time()
        self.frames = 0
        #: Seconds without a client frame before ``on_idle``; ``None`` disables it.
        self.idle_timeout: float | None = None
        #: The client asked to end (CloseStream / Terminate): later input is recorded only.
        self.ending = False
        #: The server decided to close: nothing but that close is sent any more.
        self.closing = False
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=QUEUE_ITEMS)
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        # Fault state: what is scheduled, and the counters and clocks triggers look at.
        self._schedule = self.faults.schedule()
        self.finals_sent = 0
        self._last_audio: float | None = None
        self._audio_seen = asyncio.Event()
        self._reading = asyncio.Event()  # cleared by the stop_reading fault
        self._reading.set()

    # ----------------------------------------------------------------- protocol hooks
    async def open(self) -> bool:
        """Run after the 101. Return False when the session already ended (e.g. bad auth)."""
        return True

    async def on_audio(self, data: bytes) -> None:
        """A binary frame arrived (receiver side, in arrival order)."""
        await self.enqueue("audio", data)

    async def on_text(self, text: str, message: Any) -> None:
        """A text frame arrived; ``message`` is its parsed JSON, or ``None`` if it did not parse."""

    async def process_audio(self, data: bytes) -> None:
        """Processor side: feed audio to the engine and send what it produced."""

    async def process_control(self, kind: str, payload: Any) -> None:
        """Processor side: a queued control message, after all audio that preceded it."""

    async def on_idle(self) -> None:
        """``idle_timeout`` seconds passed without a client frame."""

    async def internal_error(self, exc: BaseException) -> None:
        """Close the session the way the protocol reports a server-side failure."""
        await self.close(1011, "Internal error")

    def fault_error_frame(self, code: int, reason: str) -> dict | None:
        """The message that precedes a fault-injected close, if the protocol sends one."""
        return None

    def is_final_result(self, message: dict) -> bool:
        """Is ``message`` a non-empty final result (what ``finals:N`` triggers count)?"""
        return False

    def terminal_message(self) -> dict:
        """The protocol's closing summary as it would be sent now (Metadata / Termination)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- running
    async def run(self) -> None:
        try:
            if await self.open():
                self._start_fault_timers()
                self._spawn(self._process_loop())
            # Also after a refused open: keep reading until the close handshake completes.
            await self._receive_loop()
        except ConnectionClosed:
            pass
        except Exception as exc:
            await self.fail(exc)
            with contextlib.suppress(ConnectionClosed):
                await self._receive_loop()  # input is only recorded now (closing is set)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def fail(self, exc: BaseException) -> None:
        """An unexpected exception in this session: log it, record it, close this session."""
        logger.error("%s session %d failed", self.protocol, self.ctx.index, exc_info=exc)
        self.ctx.update(error=f"{type(exc).__name__}: {exc}")
        try:
            await self.internal_error(exc)
        except ConnectionClosed:
            pass
        except Exception:  # the connection may be half-broken; never let this escape
            logger.debug("closing after an error failed", exc_info=True)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        return task

    async def _receive_loop(self) -> None:
        # Ends when the connection closes (ConnectionClosed); each pass awaits one frame or
        # the idle timeout, so the loop is bounded by the connection's life.
        while True:
            if not self._reading.is_set():  # the stop_reading fault: read nothing more, ever
                await self.ws.wait_closed()
                return
            timeout = None if (self.ending or self.closing) else self.idle_timeout
            try:  # recv() is cancel-safe: a timeout loses no frame
                message = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                await self.on_idle()
                continue
            except ConnectionClosed:
                return
            if isinstance(message, bytes):
                await self._on_binary(message)
            else:
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = None
                self.ctx.log.append(self.ctx.pos, "controls", message if parsed is None else parsed)
                if not (self.ending or self.closing):
                    await self.on_text(message, parsed)

    async def _on_binary(self, data: bytes) -> None:
        self.frames += 1
        self.ctx.log.add_audio(self.ctx.pos, len(data))
        if data:
            self._last_audio = self.loop.time()
            self._audio_seen.set()
        if not (self.ending or self.closing):
            await self.on_audio(data)
        frames = self.frames
        await self._fire_when(lambda t: t.frames == frames)

    async def enqueue(self, kind: str, payload: Any = None) -> None:
        await self._queue.put((kind, payload))

    async def _process_loop(self) -> None:
        held: tuple[str, Any] | None = None
        try:
            while not self.closing:  # cancelled by run() when the connection ends
                kind, payload = held or await self._queue.get()
                held = None
                if not self._reading.is_set():
                    return  # the stop_reading fault: what was queued is never processed
                if kind != "audio":
                    await self.process_control(kind, payload)
                    continue
                chunks = [payload]
                while not self._queue.empty() and len(chunks) < MAX_JOINED_FRAMES:
                    item = self._queue.get_nowait()
                    if item[0] != "audio":
                        held = item
                        break
                    chunks.append(item[1])
                await self.process_audio(b"".join(chunks))
        except ConnectionClosed:
            return
        except Exception as exc:
            await self.fail(exc)

    async def engine_call(self, fn: Callable, *args: Any) -> Any:
        """Run a (possibly CPU-bound) engine method in the server's thread pool."""
        return await self.loop.run_in_executor(self.ctx.executor, fn, *args)

    # ----------------------------------------------------------------------- sending
    async def send(self, message: dict) -> None:
        """Send one JSON message, unless the server already decided to close."""
        await self.send_text(json.dumps(message), str(message.get("type")))
        if self.is_final_result(message) and not self.closing:
            self.finals_sent += 1
            finals = self.finals_sent
            await self._fire_when(lambda t: t.finals == finals)

    async def send_text(self, text: str, kind: str) -> None:
        """Send one text frame (recorded as ``kind``), unless the server decided to close or
        stopped answering (the stop_reading fault)."""
        if not self.closing and self._reading.is_set():
            await self._send_text(text, kind)

    async def _send_text(self, text: str, kind: str) -> None:
        async with self._send_lock:
            if self.faults.response_delay_ms:
                await asyncio.sleep(self.faults.response_delay_ms / 1000)
            self.ctx.log.append(self.ctx.pos, "sent", kind)
            await self.ws.send(text)

    async def close(self, code: int, reason: str = "", *, error: dict | None = None) -> None:
        """Close with ``code``/``reason``, after the ``error`` message if one is given."""
        if self.closing:
            return
        self.closing = True
        self.ctx.update(close_code=code, close_reason=reason)
        try:
            if error is not None:
                await self._send_text(json.dumps(error), str(error.get("type")))
        except ConnectionClosed:
            return
        # The handshake runs in a task of its own while the receiver keeps reading: a client
        # that is still streaming would otherwise fill the incoming queue, reading would pause,
        # and its answering close frame would sit unread until close_timeout.
        self._spawn(self.ws.close(code, reason))

    async def finish(self, message: dict, code: int, reason: str = "") -> None:
        """Send the terminal message and close, unless a fault delays or withholds them."""
        if self.faults.never_terminal:
            self.ctx.update(terminal_withheld=True)
            return
        if self.faults.terminal_delay_s:
            await asyncio.sleep(self.faults.terminal_delay_s)
        await self.send(message)
        await self.close(code, reason)

    # ------------------------------------------------------------------------ faults
    async def client_ended(self) -> bool:
        """The processor reached the client's closing message: fire ``end`` faults.

        Returns whether the protocol should go on with its normal ending (False once a fault
        closed, dropped or stopped reading this session).
        """
        await self._fire_when(lambda t: t.on_end)
        return not self.closing and self._reading.is_set()

    async def fire(self, action: str) -> None:
        """Do the injected fault ``action`` now (see ``faults.ACTIONS``) and record it."""
        if self.closing:
            return  # the connection is already ending: nothing left to break
        self.ctx.log.append(self.ctx.pos, "faults_fired", action)
        logger.info("%s session %d: fault %s", self.protocol, self.ctx.index, action)
        f = self.faults
        if action == "drop":
            self.drop()
        elif action == "close":
            await self.fault_close()
        elif action == "unrequested_terminal":
            await self.send(self.terminal_message())
            await self.close(f.close_code, f.close_reason)
        elif action == "stop_reading":
            self._reading.clear()
        elif action == "malformed":
            await self.send_text(MALFORMED_FRAME, "(malformed)")
        elif action == "unknown_type":
            await self.send({"type": UNKNOWN_MESSAGE_TYPE, "detail": "fault injection"})
        elif action == "oversized":
            await self.send_text(oversized_frame(), "(oversized)")
        else:  # pragma: no cover - ACTIONS and this dispatch are kept in step
            raise ValueError(f"unknown fault action {action!r}")

    async def _fire_when(self, matches: Callable[[Trigger], bool]) -> None:
        for action, trigger in self._schedule:
            if matches(trigger):
                await self.fire(action)

    def drop(self) -> None:
        """Abort the TCP connection without a close frame."""
        if self.closing:
            return
        self.closing = True
        self.ctx.update(dropped=True)
        self.ws.transport.abort()

    async def fault_close(self) -> None:
        f = self.faults
        error = (
            self.fault_error_frame(f.close_code, f.close_reason) if f.close_error_frame else None
        )
        await self.close(f.close_code, f.close_reason, error=error)

    def _start_fault_timers(self) -> None:
        for action, trigger in self._schedule:
            if trigger.seconds is not None:
                self._spawn(self._after(trigger.seconds, action))
            elif trigger.idle_s is not None:
                self._spawn(self._when_idle(trigger.idle_s, action))

    async def _after(self, delay: float, action: str) -> None:
        await asyncio.sleep(delay)
        await self.fire(action)

    async def _when_idle(self, idle_s: float, action: str) -> None:
        """Fire ``action`` once no audio arrived for ``idle_s`` (after audio first flowed)."""
        await self._audio_seen.wait()
        # Each pass sleeps until the current due time: a bounded wait per audio gap, and the
        # task is cancelled when the session ends.
        while not (self.ending or self.closing):
            due = self._last_audio + idle_s
            now = self.loop.time()
            if now >= due:
                await self.fire(action)
                return
            await asyncio.sleep(due - now)

    # ------------------------------------------------------------------------ clocks
    def elapsed(self) -> float:
        """Seconds since the session opened (wall clock)."""
        return self.loop.time() - self.opened_at
