"""What the server saw on each connection, for tests to inspect.

A test of a client wants to assert on the server side too: which URL and headers arrived,
how many audio frames, which control messages in which order, what close code the server
sent. The event loop thread writes these records; test threads read them. Every write and
every read takes one lock, and readers get frozen snapshots, so a test never sees a record
half-updated and never races the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..credentials import SECRET_QUERY_KEYS

#: Items kept per tuple field of a record (the latest), and finished records kept per log.
MAX_ITEMS = 1000
MAX_RECORDS = 1000


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (repeated names joined by ``", "``) with credentials masked.

    ``Authorization: Token abc`` becomes ``Token ***`` (the scheme tells which auth was used);
    a raw key becomes ``***``; ``Sec-WebSocket-Protocol: token, abc`` becomes ``token, ***``.
    """
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower == "authorization":
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} ***" if rest and scheme.lower() in ("token", "bearer") else "***"
        elif lower == "sec-websocket-protocol":
            parts = [p.strip() for p in value.split(",")]
            if parts and parts[0].lower() in ("token", "bearer"):
                value = ", ".join([parts[0]] + ["***"] * (len(parts) - 1))
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def redact_query(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in pairs:
        query.setdefault(key, []).append("***" if key.lower() in SECRET_QUERY_KEYS else value)
    return query


@dataclass(frozen=True)
class SessionRecord:
    """A snapshot of one connection as the server saw it.

    ``index`` counts connections from 1. ``protocol`` is ``"deepgram"`` or ``"assemblyai"``.
    ``query`` maps each key to its values (credentials ``***``). ``headers`` are redacted.
    ``auth`` says how the client authenticated (``"token"``, ``"bearer"``, ``"subprotocol"``,
    ``"header"``, ``"query"`` or ``None``). ``controls`` are the client's text frames in order,
    parsed as JSON when they parse (else the raw text). ``sent`` are the ``type``s of the
    messages the server sent. ``close_code``/``close_reason`` are what the server's close frame
    carried (``None`` when it sent none); ``dropped`` is true when a fault aborted the TCP
    connection. ``faults_fired`` names each injected fault as it happened (``"connect_hang"``,
    ``"refuse_status"``, ``"drop"``, ``"stop_reading"``, ...), so a test can wait for the
    moment a fault took effect. ``done`` turns true when the server finished with the
    connection.
    """

    index: int
    protocol: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    request_id: str = ""
    auth: str | None = None
    authorized: bool = False
    subprotocol: str | None = None
    http_status: int | None = None
    faults_applied: bool = False
    audio_frames: int = 0
    audio_bytes: int = 0
    controls: tuple[Any, ...] = ()
    sent: tuple[str, ...] = ()
    close_code: int | None = None
    close_reason: str | None = None
    dropped: bool = False
    terminal_withheld: bool = False
    faults_fired: tuple[str, ...] = ()
    items_dropped: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    done: bool = False

    @property
    def control_types(self) -> tuple[str | None, ...]:
        """The ``type`` of each control message, in order (``None`` for unparseable text)."""
        return tuple(c.get("type") if isinstance(c, dict) else None for c in self.controls)


class SessionLog:
    """All records of one server (bounded, see the module docstring). Written by the loop
    thread, read from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: dict[int, SessionRecord] = {}  # by position, in opening order
        self._next = 0

    def open(self, **fields: Any) -> int:
        """Add a record; return its position for ``update``."""
        with self._cond:
            pos, self._next = self._next, self._next + 1
            self._records[pos] = SessionRecord(**fields)
            finished = [p for p, r in self._records.items() if r.done]
            for old in finished[: max(0, len(finished) - MAX_RECORDS)]:
                del self._records[old]
            self._cond.notify_all()
            return pos

    def update(self, pos: int, **changes: Any) -> None:
        with self._cond:
            self._records[pos] = replace(self._records[pos], **changes)
            self._cond.notify_all()

    def add_audio(self, pos: int, nbytes: int) -> None:
        with self._cond:
            rec = self._records[pos]
            self._records[pos] = replace(
                rec, audio_frames=rec.audio_frames + 1, audio_bytes=rec.audio_bytes + nbytes
            )

    def append(self, pos: int, name: str, item: Any) -> None:
        """Append ``item`` to a tuple field (``controls``, ``sent`` or ``faults_fired``)."""
        with self._cond:
            rec = self._records[pos]
            items = getattr(rec, name)
            changes: dict[str, Any] = {name: (*items[-(MAX_ITEMS - 1) :], item)}
            if len(items) >= MAX_ITEMS:
                dropped = dict(rec.items_dropped)
                dropped[name] = dropped.get(name, 0) + len(items) - (MAX_ITEMS - 1)
                changes["items_dropped"] = dropped
            self._records[pos] = replace(rec, **changes)
            self._cond.notify_all()

    def snapshot(self) -> list[SessionRecord]:
        with self._cond:
            return list(self._records.values())

    def wait(self, predicate, timeout: float) -> list[SessionRecord]:
        """Block until ``predicate(records)`` is true; return the records. Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(list(self._records.values())), timeout):
                raise TimeoutError(f"server sessions did not reach the state within {timeout} s")
            return list(self._records.values())
