"""The one asyncio driver of a protocol core: it awaits, sends, calls the engine and keeps time.

``SessionShell`` runs a ``core.ProtocolCore`` (Deepgram or AssemblyAI alike) on one WebSocket.
It makes no protocol decision; everything it does is I/O the core asked for:

* the **receiver** (the shell's own task) reads every client frame as soon as it arrives and
  hands it to the core with the loop's time. It never waits for the engine, only for room in
  the core's queue (``QUEUE_ITEMS``), so a client that outruns the engine meets TCP
  backpressure. Once the core stops reading (the stop_reading fault) it reads nothing more.
* the **processor** task steps the core's jobs and runs each engine call the core asks for in
  the server's thread pool, so a CPU-bound recognizer never blocks the loop.
* the **timer** task sleeps until ``core.next_deadline()`` (woken early by any input, which
  may move it) and calls ``core.tick``.

After every input the actions the core produced are performed in order under one lock:
``Send`` (held ``response_delay_ms`` first when that fault is set, recorded as sent),
``Close`` (the handshake runs in a task of its own while the receiver keeps reading: a client
still streaming would otherwise fill the incoming queue and its answering close frame would
sit unread until ``close_timeout``) and ``Drop`` (abort TCP). Any exception ends that session
only, with the protocol's internal-error close; other connections never notice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .context import ConnectionContext
from .core import QUEUE_ITEMS, Close, Drop, ProtocolCore, Send, logger

__all__ = ["SessionShell", "logger"]


class SessionShell:
    """One client connection driven through ``core``. Call ``await run()`` once."""

    def __init__(self, ws: ServerConnection, ctx: ConnectionContext, core: ProtocolCore):
        self.ws = ws
        self.ctx = ctx
        self.core = core
        self.loop = asyncio.get_running_loop()
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._work = asyncio.Event()  # the core may have jobs: wake the processor
        self._wake = asyncio.Event()  # an input arrived: the next deadline may have moved
        self._room = asyncio.Event()  # the processor took items from the core's queue
        self._gone = False  # the connection closed under a send: nothing more to send

    async def run(self) -> None:
        try:
            self._call(self.core.start, self.loop.time(), time.time())
            await self._process()  # the open job (AssemblyAI: stream and Begin) first
            self._spawn(self._process_loop())
            self._spawn(self._timer_loop())
            await self._receive_loop()
        except ConnectionClosed:
            pass
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---------------------------------------------------------------------- inputs
    def _call(self, method: Callable, *args: Any) -> Any:
        """Give the core one input; an exception ends this session (internal-error close)."""
        try:
            return method(*args)
        except Exception as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: BaseException) -> None:
        logger.error("%s session %d failed", self.core.protocol, self.ctx.index, exc_info=exc)
        try:
            self.core.fail(exc, self.loop.time())
        except Exception:  # never let the error path raise
            logger.debug("closing after an error failed", exc_info=True)

    async def _receive_loop(self) -> None:
        # Ends when the connection closes (ConnectionClosed); each pass awaits one frame.
        while True:
            if not self.core.reading:  # the stop_reading fault: read nothing more, ever
                await self._stalled()
                return
            try:
                message = await self.ws.recv()
            except ConnectionClosed:
                return
            if isinstance(message, bytes):
                self._call(self.core.receive_audio, message, self.loop.time())
            else:
                self._call(self.core.receive_text, message, self.loop.time())
            self._wake.set()
            if self.core.has_work:
                self._work.set()
            await self._perform()
            # Bounded by the processor: each wait ends when it took an item (or gave up).
            while self.core.backlog >= QUEUE_ITEMS and self.core.has_work:
                self._room.clear()
                await self._room.wait()

    async def _process(self) -> None:
        """Step the core's jobs until it has none, running each engine call in the pool."""
        result = None
        while True:  # each pass makes one engine call; the core runs out of queued items
            call = self._call(self.core.step, self.loop.time(), result)
            self._room.set()
            self._wake.set()
            await self._perform()
            if call is None:
                return
            try:
                result = await self.loop.run_in_executor(self.ctx.executor, call.fn, *call.args)
            except Exception as exc:
                self._fail(exc)
                await self._perform()
                return

    async def _process_loop(self) -> None:
        while True:  # cancelled by run() when the connection ends
            await self._work.wait()
            self._work.clear()
            await self._process()

    async def _timer_loop(self) -> None:
        while True:  # one pass per deadline or input; cancelled by run() at the end
            deadline = self.core.next_deadline()
            self._wake.clear()
            if deadline is None or deadline > self.loop.time():
                # A timer handle rather than wait_for: on Python 3.10/3.11 wait_for can
                # swallow the cancellation that ends the session when the wait completes
                # at the same moment, and this task would then wait forever.
                alarm = None if deadline is None else self.loop.call_at(deadline, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    if alarm is not None:
                        alarm.cancel()
            self._call(self.core.tick, self.loop.time())
            if self.core.has_work:
                self._work.set()
            await self._perform()

    # --------------------------------------------------------------------- outputs
    async def _perform(self) -> None:
        """Do what the core asked for, in order (one lock: sends never interleave)."""
        async with self._send_lock:
            for _ in range(10_000):  # actions made while sending are taken on the next pass
                actions = self.core.take_actions()
                if not actions:
                    return
                for action in actions:
                    await self._do(action)

    async def _do(self, action: Send | Close | Drop) -> None:
        if isinstance(action, Drop):
            self.ws.transport.abort()
        elif isinstance(action, Close):
            self._spawn(self.ws.close(action.code, action.reason))
        elif not self._gone:
            if self.ctx.faults.response_delay_ms:
                await asyncio.sleep(self.ctx.faults.response_delay_ms / 1000)
            self.ctx.log.append(self.ctx.pos, "sent", action.kind)
            try:
                await self.ws.send(action.text)
            except ConnectionClosed:
                self._gone = True  # the receiver sees the close and ends the session

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        return task

    async def _stalled(self) -> None:
        """Read nothing until the connection ends. A peer that does not read cannot see the
        client's close frame either, so when the server stops the connection is aborted
        rather than left to its close timeout."""
        waits = [asyncio.ensure_future(self.ws.wait_closed())]
        if self.ctx.server_stopping is not None:
            waits.append(asyncio.ensure_future(self.ctx.server_stopping.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if self.ctx.server_stopping is not None and self.ctx.server_stopping.is_set():
            self.ws.transport.abort()
