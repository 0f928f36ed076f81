"""Server-wide settings and the per-connection context handed from the handshake to a session.

The HTTP upgrade (``app.LivetxServer.process_request``) decides everything that can be decided
before the 101: route, parsed query, credentials, which faults apply. It stores that in a
``ConnectionContext`` on the connection so the protocol session starts with it ready.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from .engine import Engine
from .faults import NO_FAULTS, Faults
from .records import SessionLog

#: AssemblyAI rate check: audio may run ahead of the wall clock (since the first audio frame)
#: by at most this many seconds before the session is closed with 3007. One second absorbs
#: network jitter and a client's small start-up buffer, and still catches a client that
#: streams a file faster than real time within the first seconds.
DEFAULT_RATE_BURST_S = 1.0

#: Deepgram closes with 1011/NET-0001 after this long without any client frame.
DEFAULT_IDLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ServerOptions:
    """How the server behaves, apart from its engine and faults.

    api_key:
        The only key accepted. ``None`` accepts any key, and no key at all.
    rate_limit, rate_burst_s:
        AssemblyAI: close with 3007 when audio arrives faster than real time by more than
        ``rate_burst_s`` seconds. Off for tests that stream files as fast as possible.
    idle_timeout_s:
        Deepgram: seconds without any client frame before close 1011 ``NET-0001`` (10 s on the
        real service; tests shorten it).
    inactivity_unit_s:
        AssemblyAI: seconds per unit of the ``inactivity_timeout`` query parameter. The
        parameter is still validated as 5-3600 like the real service's; tests set a small unit
        (0.1 makes ``inactivity_timeout=5`` expire after 0.5 s).
    inactivity_close_code:
        AssemblyAI, what an inactivity timeout does (the real service's behaviour is not
        documented): 1000 sends ``Termination`` and closes 1000 ``Session Ended``; any other
        code sends an ``Error`` frame with that code and closes with it.
    close_timeout_s:
        How long the server waits for the client's close frame after sending its own.
    """

    api_key: str | None = None
    rate_limit: bool = True
    rate_burst_s: float = DEFAULT_RATE_BURST_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    inactivity_unit_s: float = 1.0
    inactivity_close_code: int = 1000
    close_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key:
            raise ConfigurationError("api_key must be a non-empty string, or None to accept any.")
        for name in ("idle_timeout_s", "inactivity_unit_s", "close_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds.")
        if not self.rate_burst_s >= 0:
            raise ConfigurationError("rate_burst_s must be >= 0 seconds.")

    def __repr__(self) -> str:  # never show the key
        key = "None" if self.api_key is None else "'***'"
        return (
            f"ServerOptions(api_key={key}, rate_limit={self.rate_limit}, "
            f"idle_timeout_s={self.idle_timeout_s}, inactivity_unit_s={self.inactivity_unit_s})"
        )


@dataclass
class ConnectionContext:
    """Everything a protocol session needs about its connection, decided at the upgrade."""

    index: int
    protocol: str
    log: SessionLog
    pos: int  # this connection's record in ``log``
    engine: Engine
    executor: Executor
    options: ServerOptions
    faults: Faults = NO_FAULTS
    params: Any = None  # the protocol's parsed query (DeepgramParams / AssemblyAIParams)
    request_id: str = ""
    authorized: bool = True
    auth_error: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # raw request headers, lower-case
    #: Set when the server stops: a session that cannot take part in a close handshake (it
    #: hangs or stopped reading, by fault) aborts its connection instead.
    server_stopping: asyncio.Event | None = None

    def update(self, **changes: Any) -> None:
        self.log.update(self.pos, **changes)
