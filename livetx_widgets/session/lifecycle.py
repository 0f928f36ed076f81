"""The states of a ``TranscriptionSession`` and the only transitions allowed between them.

Why a table: the session is driven from four threads (the caller's, the sender, the receiver
and the control thread) and from listeners running on two of them. Writing every allowed move
down once, and refusing every other move as a bug, is what keeps "pause after stop" or "live
after stopping" from ever being shown. ``Lifecycle`` holds no lock of its own: the session
moves it under its one lock, and the status events it queues are emitted, in order, by the
control thread alone.

::

    idle ──start──> connecting ──upgrade──> live <──resume/pause──> paused
      │                 │                    │  \\                    │
      │                 │                    │   drop ──> reconnecting (back to live/paused)
      └──stop──> stopped <── stopping <──────┴── stop / end of source ─┘
                               error <── any state before the end (a typed error)

A first connection refused with "try again" (HTTP 5xx) goes ``connecting -> reconnecting``.
``stopping`` is sticky: a reconnect while stopping (to replay unacknowledged audio) keeps it.
A session only reaches ``stopped`` through ``stopping`` (it was asked to end, or its source
ended), so it can never end with no error while its source still had audio.
"""

from __future__ import annotations

from collections import deque

from ..errors import SessionStateError

IDLE = "idle"
CONNECTING = "connecting"
LIVE = "live"
PAUSED = "paused"
RECONNECTING = "reconnecting"
STOPPING = "stopping"
STOPPED = "stopped"
ERROR = "error"

ENDED = frozenset({STOPPED, ERROR})
#: States in which the session runs (its threads are alive or about to be).
ACTIVE = frozenset({CONNECTING, LIVE, PAUSED, RECONNECTING, STOPPING})

TRANSITIONS: dict[str, frozenset[str]] = {
    IDLE: frozenset({CONNECTING, STOPPED, ERROR}),
    CONNECTING: frozenset({LIVE, PAUSED, RECONNECTING, STOPPING, ERROR}),
    LIVE: frozenset({PAUSED, RECONNECTING, STOPPING, ERROR}),
    PAUSED: frozenset({LIVE, RECONNECTING, STOPPING, ERROR}),
    RECONNECTING: frozenset({LIVE, PAUSED, STOPPING, ERROR}),
    STOPPING: frozenset({STOPPED, ERROR}),
    STOPPED: frozenset(),
    ERROR: frozenset(),
}


class Lifecycle:
    """The current state and the status events not yet emitted (guarded by the caller)."""

    def __init__(self) -> None:
        self.state = IDLE
        self._unsent: deque[str] = deque()

    def to(self, state: str) -> bool:
        """Move to ``state``; False if already there. An illegal move is a bug: it raises."""
        if state == self.state:
            return False
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"livetx bug: session state {self.state} -> {state} is not allowed")
        self.state = state
        self._unsent.append(state)
        return True

    def connected(self, paused: bool) -> None:
        """A connection is up: live or paused, unless the session is already stopping."""
        if self.state in (CONNECTING, RECONNECTING, LIVE, PAUSED):
            self.to(PAUSED if paused else LIVE)

    def take_unsent(self) -> list[str]:
        """Status events to emit, oldest first (the control thread calls this)."""
        unsent = list(self._unsent)
        self._unsent.clear()
        return unsent

    def require(self, action: str, allowed: frozenset[str] | set[str]) -> None:
        """Raise a ``SessionStateError`` that says why ``action`` means nothing now."""
        if self.state in allowed:
            return
        if self.state == IDLE:
            why = "the session has not been started; call start() first"
        elif self.state == STOPPING:
            why = "the session is stopping"
        elif self.state in ENDED:
            why = "the session has ended; start a new one to record again"
        else:
            why = f"the session is {self.state}"
        raise SessionStateError(f"Cannot {action}: {why}.", state=self.state)
