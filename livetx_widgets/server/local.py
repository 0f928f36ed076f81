"""``LocalServer``: the server on a free loopback port, in a background thread, as a context
manager.

Tests and the widget's ``provider="local"`` need a server they can start and stop from
synchronous code (a Jupyter kernel already runs its own loop, so ``asyncio.run`` is not an
option there). ``LocalServer`` runs a private event loop in one thread that it owns:
``start()`` returns once the socket listens (it waits on an event, not a sleep) and
``close()``/``__exit__`` always stops the loop, closes every connection and the socket, shuts
the engine thread pool and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError, LivetxError
from .app import LivetxServer
from .context import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_RATE_BURST_S, ServerOptions
from .engine import Engine
from .engines import make_engine
from .faults import Faults
from .records import SessionRecord

#: Bounds on starting (engine load excluded: it happens before the thread) and stopping.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0


class LocalServer:
    """A ``livetx serve`` instance in this process.

    ::

        with LocalServer(engine="script", script={"text": "Hello there."}) as srv:
            url = srv.url                  # "ws://127.0.0.1:PORT"; providers add their path
            ...
            srv.sessions                   # [SessionRecord, ...] one per connection

    ``engine`` is ``"script"``, ``"whisper"`` or an ``Engine`` instance (then ``script``/
    ``model`` must be omitted, and the caller keeps ownership of it). Other arguments: see
    ``ServerOptions`` and ``Faults``.
    """

    def __init__(
        self,
        engine: str | Engine = "script",
        *,
        script: Any = None,
        model: str | None = None,
        api_key: str | None = None,
        faults: Faults | None = None,
        rate_limit: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        inactivity_unit_s: float = 1.0,
        inactivity_close_code: int = 1000,
        rate_burst_s: float = DEFAULT_RATE_BURST_S,
        engine_options: dict | None = None,
    ):
        if isinstance(engine, Engine) and (
            script is not None or model is not None or engine_options
        ):
            raise ConfigurationError("script/model/engine_options apply only to an engine name.")
        if not isinstance(engine, (str, Engine)):
            raise ConfigurationError(f"engine must be a name or an Engine, not {engine!r}.")
        self._engine_spec = engine
        self._engine_kwargs = {"script": script, "model": model, **(engine_options or {})}
        self.options = ServerOptions(
            api_key=api_key,
            rate_limit=rate_limit,
            rate_burst_s=rate_burst_s,
            idle_timeout_s=idle_timeout_s,
            inactivity_unit_s=inactivity_unit_s,
            inactivity_close_code=inactivity_close_code,
        )
        self._initial_faults = faults
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._app: LivetxServer | None = None
        self._engine: Engine | None = None
        self._owns_engine = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self.port else "not started"
        return f"<LocalServer engine={self.engine_name!r} {state}>"

    @property
    def engine_name(self) -> str:
        spec = self._engine_spec
        return spec if isinstance(spec, str) else (spec.name or type(spec).__name__)

    @property
    def url(self) -> str:
        """``ws://HOST:PORT`` (no path: each provider appends ``/v1/listen`` or ``/v3/ws``)."""
        if self.port is None:
            raise LivetxError("LocalServer is not started; use it as a context manager or start().")
        return f"ws://{self.host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalServer:
        """Load the engine, start the thread, return once the socket is listening."""
        if self._thread is not None:
            raise LivetxError("LocalServer is already started.")
        if isinstance(self._engine_spec, Engine):
            self._engine, self._owns_engine = self._engine_spec, False
        else:
            self._engine = make_engine(self._engine_spec, **self._engine_kwargs)
            self._owns_engine = True
        self._app = LivetxServer(self._engine, self.options, self._initial_faults)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="livetx-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            error = self._error
            self.close()
            if error is None:
                raise LivetxError(f"LocalServer did not start within {START_TIMEOUT_S} s.")
            raise ConfigurationError(
                f"LocalServer cannot listen on {self.host}:{self._requested_port}: {error}"
            ) from error
        return self

    def close(self) -> None:
        """Stop serving (open connections get close 1001), join the thread, free the engine."""
        thread, self._thread = self._thread, None
        if thread is not None:
            loop, stop = self._loop, self._stop
            if loop is not None and stop is not None:
                # RuntimeError: the loop already ended (it failed to start).
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                raise LivetxError(f"LocalServer thread did not stop within {STOP_TIMEOUT_S} s.")
        if self._owns_engine and self._engine is not None:
            self._engine.close()
        self._engine = None
        self.port = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); after start there is no caller
            self._error = exc
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        assert self._app is not None
        await self._app.start(self.host, self._requested_port)
        try:
            self.port = self._app.port
            self._ready.set()
            await self._stop.wait()
        finally:
            await self._app.stop()

    # ---------------------------------------------------------------- inspection
    @property
    def sessions(self) -> list[SessionRecord]:
        """A snapshot of every connection so far (thread-safe; frozen records)."""
        return self._app.sessions() if self._app is not None else []

    def wait_for(self, predicate: Callable[[list[SessionRecord]], bool],
                 timeout: float) -> list[SessionRecord]:  # fmt: skip
        """Block until ``predicate(sessions)`` holds; ``TimeoutError`` after ``timeout`` s."""
        if self._app is None:
            raise LivetxError("LocalServer is not started.")
        return self._app.log.wait(predicate, timeout)

    def wait_idle(self, timeout: float) -> list[SessionRecord]:
        """Block until the server is done with every connection so far; return the records."""
        return self.wait_for(lambda records: all(r.done for r in records), timeout)

    def set_faults(self, faults: Faults | None) -> None:
        """Use ``faults`` for connections opened from now on (``connections=K``: the next K)."""
        if self._loop is None or self._app is None or self._thread is None:
            self._initial_faults = faults
            return

        async def apply() -> None:
            self._app.set_faults(faults)

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(START_TIMEOUT_S)
