"""The asyncio server behind ``livetx serve``: route by path, decide the upgrade, run sessions.

``LivetxServer`` owns one ``websockets`` server, one engine, one thread pool for engine calls
and one ``SessionLog``. The upgrade is decided in ``process_request`` before any WebSocket
exists: the path picks the protocol (``/v1/listen`` Deepgram, ``/v3/ws`` AssemblyAI, anything
else 404), the query is parsed (400 on a bad value), credentials are checked (Deepgram refuses
with 401; AssemblyAI is told after the 101, as the real services do) and the faults that apply
to this connection are fixed. Two faults act here, before any WebSocket: ``refuse_status``
answers with an HTTP error in the provider's shape, and ``connect_hang`` returns a coroutine
that never answers (websockets awaits it) until the client leaves or the server stops. The
session then runs in the connection's handler task; an exception there ends that connection
only.

It is driven either by ``LocalServer`` (a background thread, for tests and the widget) or by
``run_until_stopped`` (the ``livetx serve`` command).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from . import assemblyai_protocol, deepgram_protocol
from .context import ConnectionContext, ServerOptions
from .core import ProtocolCore
from .engine import Engine
from .faults import NO_FAULTS, Faults
from .params import QueryError
from .records import SessionLog, SessionRecord, redact_headers, redact_query
from .shell import SessionShell, logger

#: Protocol of each path, and the core that speaks each protocol (one shell drives both).
ROUTES = {deepgram_protocol.PATH: "deepgram", assemblyai_protocol.PATH: "assemblyai"}
CORES: dict[str, type[ProtocolCore]] = {
    "deepgram": deepgram_protocol.DeepgramCore,
    "assemblyai": assemblyai_protocol.AssemblyAICore,
}

#: Engine calls run here; a few threads keep several sessions decoding at once.
ENGINE_THREADS = 4

# websockets logs request lines and headers at DEBUG; they can hold keys. Never below INFO.
_ws_logger = logging.getLogger("livetx_widgets.server.websockets")
_ws_logger.setLevel(max(_ws_logger.level, logging.INFO))


class LivetxServer:
    """One listening socket serving both protocols. Use from a running event loop."""

    def __init__(self, engine: Engine, options: ServerOptions | None = None,
                 faults: Faults | None = None):  # fmt: skip
        self.engine = engine
        self.options = options or ServerOptions()
        self.log = SessionLog()
        self._faults = faults or NO_FAULTS
        self._faults_from = 0  # faults count connections after this index
        self._count = 0
        self._executor: ThreadPoolExecutor | None = None
        self._server: Server | None = None
        self._stopping: asyncio.Event | None = None  # ends connect_hang waits

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(ENGINE_THREADS, thread_name_prefix="livetx-engine")
        try:
            self._server = await serve(
                self._handler,
                host,
                port,
                process_request=self._process_request,
                process_response=self._process_response,
                select_subprotocol=self._select_subprotocol,
                compression=None,
                close_timeout=self.options.close_timeout_s,
                logger=_ws_logger,
            )
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001) and the socket, wait for the sessions, join threads."""
        if self._stopping is not None:
            self._stopping.set()  # hanging upgrades answer 503 now
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    # ---------------------------------------------------------------- inspection
    def set_faults(self, faults: Faults | None) -> None:
        """Apply ``faults`` to connections opened from now on (``connections`` counts from now)."""
        self._faults = faults or NO_FAULTS
        self._faults_from = self._count

    @property
    def faults(self) -> Faults:
        return self._faults

    def sessions(self) -> list[SessionRecord]:
        return self.log.snapshot()

    # ------------------------------------------------------------------ handshake
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        protocol = ROUTES.get(path)
        if protocol is None:
            return connection.respond(404, f"No such endpoint: {path}. Use /v1/listen or /v3/ws.\n")
        self._count += 1
        index = self._count
        faults = self._faults.for_connection(index - self._faults_from)
        pairs = parse_qsl(query, keep_blank_values=True)
        request_id = str(uuid.uuid4())
        ctx = ConnectionContext(
            index=index,
            protocol=protocol,
            log=self.log,
            pos=self.log.open(
                index=index,
                protocol=protocol,
                path=path,
                query=redact_query(pairs),
                headers=redact_headers(request.headers.raw_items()),
                faults_applied=faults is not NO_FAULTS,
                request_id=request_id,
            ),
            engine=self.engine,
            executor=self._executor,
            options=self.options,
            faults=faults,
            server_stopping=self._stopping,
            request_id=request_id,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
        )
        connection.livetx = ctx  # read by the subprotocol selector and the handler
        if faults.connect_hang:
            return self._hang(connection, ctx)
        if protocol == "deepgram":
            return self._deepgram_upgrade(connection, request, ctx, pairs)
        return self._assemblyai_upgrade(connection, request, ctx, pairs)

    async def _hang(self, connection: ServerConnection, ctx: ConnectionContext) -> Response:
        """The connect_hang fault: never answer the upgrade while the client waits.

        Ends when the client closes the TCP connection, when the server stops (then a 503,
        as websockets answers upgrades still open at shutdown) or when websockets' opening
        timeout cancels it; the record is marked done in every case.
        """
        ctx.log.append(ctx.pos, "faults_fired", "connect_hang")
        assert ctx.server_stopping is not None
        stopping = asyncio.ensure_future(ctx.server_stopping.wait())
        try:
            await asyncio.wait(
                [stopping, connection.connection_lost_waiter],
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
            ctx.update(done=True, closed_at=time.time())
        return connection.respond(503, "livetx serve is shutting down.\n")

    def _deepgram_upgrade(self, connection, request, ctx, pairs) -> Response | None:
        def refuse(status: int, err_code: str, err_msg: str) -> Response:
            body = deepgram_protocol.refusal_body(err_code, err_msg, ctx.request_id)
            return _json_response(connection, status, body, {"dg-error": err_msg})

        try:
            ctx.params = deepgram_protocol.parse_query(pairs)
        except QueryError as exc:
            return refuse(400, "INVALID_QUERY_PARAMETER", str(exc))
        if ctx.faults.refuse_status is not None:
            ctx.log.append(ctx.pos, "faults_fired", "refuse_status")
            return refuse(ctx.faults.refuse_status,
                          *deepgram_protocol.refusal(ctx.faults.refuse_status))  # fmt: skip
        ok, method = deepgram_protocol.authenticate(request.headers, self.options.api_key)
        if ok and ctx.faults.refuse_auth:
            ok = False
            ctx.log.append(ctx.pos, "faults_fired", "refuse_auth")
        ctx.authorized = ok
        ctx.update(auth=method, authorized=ok)
        if not ok:
            return refuse(401, "INVALID_AUTH", deepgram_protocol.INVALID_AUTH)
        return None

    def _assemblyai_upgrade(self, connection, request, ctx, pairs) -> Response | None:
        try:
            ctx.params = assemblyai_protocol.parse_query(pairs)
        except QueryError as exc:
            return _json_response(connection, 400, {"error": str(exc)})
        if ctx.faults.refuse_status is not None:
            ctx.log.append(ctx.pos, "faults_fired", "refuse_status")
            status = ctx.faults.refuse_status
            body = {"error": assemblyai_protocol.refusal(status)}
            return _json_response(connection, status, body)
        ok, method, error = assemblyai_protocol.authenticate(
            request.headers, pairs, self.options.api_key
        )
        if ok and ctx.faults.refuse_auth:
            ok, error = False, assemblyai_protocol.INVALID_KEY
            ctx.log.append(ctx.pos, "faults_fired", "refuse_auth")
        ctx.authorized, ctx.auth_error = ok, error
        ctx.update(auth=method, authorized=ok)
        return None

    @staticmethod
    def _select_subprotocol(connection: ServerConnection, offered) -> str | None:
        ctx = getattr(connection, "livetx", None)
        if ctx is None or ctx.protocol != "deepgram":
            return None
        return deepgram_protocol.select_subprotocol(list(offered))

    @staticmethod
    def _process_response(connection: ServerConnection, request: Request, response: Response):
        ctx: ConnectionContext | None = getattr(connection, "livetx", None)
        if ctx is None:
            return None
        if connection.transport.is_closing():
            return None  # the client left while the upgrade hung: nothing was answered
        if ctx.protocol == "deepgram":
            response.headers["dg-request-id"] = ctx.request_id
        refused = response.status_code != 101
        ctx.update(
            http_status=response.status_code,
            subprotocol=response.headers.get("Sec-WebSocket-Protocol"),
            done=refused,
            closed_at=time.time() if refused else None,
        )
        return None

    # -------------------------------------------------------------------- session
    async def _handler(self, connection: ServerConnection) -> None:
        ctx: ConnectionContext = connection.livetx
        logger.info("%s session %d opened", ctx.protocol, ctx.index)
        try:
            await SessionShell(connection, ctx, CORES[ctx.protocol](ctx)).run()
        finally:
            ctx.update(done=True, closed_at=time.time())
            logger.info("%s session %d ended", ctx.protocol, ctx.index)


def _json_response(
    connection: ServerConnection, status: int, payload: dict, headers: dict | None = None
) -> Response:
    """An HTTP refusal with a JSON body (both services refuse upgrades with JSON)."""
    response = connection.respond(status, json.dumps(payload))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def run_until_stopped(
    server: LivetxServer, host: str, port: int, stop: asyncio.Event,
    on_listening: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """Start ``server``, report its URL, serve until ``stop`` is set, then stop cleanly."""
    await server.start(host, port)
    try:
        if on_listening is not None:
            on_listening(f"ws://{host}:{server.port}")
        await stop.wait()
    finally:
        await server.stop()
