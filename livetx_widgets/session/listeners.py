"""Listener registry and event iterators for a session (the pyee pattern).

Handlers are copied under the lock and called outside it, so a handler may add or remove
handlers, and a slow handler never blocks registration. An exception in one handler is caught
and reported; it never kills the receiver thread and never stops the other handlers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("livetx_widgets.session")

KINDS = ("partial", "final", "event", "error", "status")
_END = object()


class Listeners:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Callable[..., Any]]] = {k: [] for k in KINDS}
        self._subscribers: list[queue.SimpleQueue] = []
        self._closed = False
        self.failures: deque[BaseException] = deque(maxlen=20)

    def add(self, kind: str, handler: Callable[..., Any]) -> None:
        if kind not in self._handlers:
            raise ValueError(f"unknown listener kind {kind!r}; use one of {', '.join(KINDS)}")
        if not callable(handler):
            raise TypeError(f"on_{kind} handler must be callable, got {type(handler).__name__}")
        with self._lock:
            self._handlers[kind].append(handler)

    def remove(self, kind: str, handler: Callable[..., Any]) -> None:
        with self._lock:
            if handler in self._handlers.get(kind, []):
                self._handlers[kind].remove(handler)

    def emit(self, kind: str, payload: Any) -> None:
        with self._lock:
            handlers = list(self._handlers[kind])
            subscribers = list(self._subscribers) if kind == "event" else []
        for q in subscribers:
            q.put(payload)
        for handler in handlers:
            try:
                handler(payload)
            except Exception as exc:
                self.failures.append(exc)
                log.warning("on_%s handler %r raised %r", kind, handler, exc)
                if kind != "error":
                    self.emit("error", exc)

    def subscribe(self) -> Iterator[Any]:
        """A blocking iterator over every event from now until the session ends."""
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if self._closed:
                return iter(())
            self._subscribers.append(q)
        return self._drain(q)

    def _drain(self, q: queue.SimpleQueue) -> Iterator[Any]:
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                yield item
        finally:
            with self._lock:
                if q in self._subscribers:
                    self._subscribers.remove(q)

    def close(self) -> None:
        """The session ended: every ``events()`` iterator finishes after its backlog."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(_END)
