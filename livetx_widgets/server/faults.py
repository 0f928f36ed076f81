"""Fault injection for ``livetx serve``: the failures a client must survive, on demand.

Real providers refuse keys, drop connections, stall before their last message and send things
a client does not expect. Waiting for that to happen is no way to test a client, so the local
server can be told to misbehave in each of those ways, deterministically (after N audio frames)
or on a wall-clock timer (after N seconds), and only for the first K connections so that a
reconnect test can break connection 1 and let connection 2 succeed.

``Faults`` is a plain frozen value: pass it to ``LocalServer(faults=...)``, swap it at run
time with ``LocalServer.set_faults`` or build it from ``livetx serve`` flags
(``add_fault_arguments`` / ``faults_from_args``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..errors import ConfigurationError

#: Text sent by the ``malformed_after_frames`` fault: a JSON object cut off mid-way.
MALFORMED_FRAME = '{"type": "Results", "channel_index": [0, 1], "is_final": tr'

#: ``type`` of the message sent by the ``unknown_type_after_frames`` fault.
UNKNOWN_MESSAGE_TYPE = "LivetxUnknownMessage"


@dataclass(frozen=True)
class Faults:
    """What the server should do wrong. Every field defaults to "behave".

    refuse_auth:
        Refuse the credentials whatever they are (Deepgram: HTTP 401; AssemblyAI: Error frame
        and close 1008), exactly as a wrong key would be refused.
    close_after_s / close_after_frames, close_code, close_reason:
        Close the WebSocket with ``close_code``/``close_reason`` that many seconds after the
        handshake, or right after that many audio frames arrived. On AssemblyAI an ``Error``
        frame carrying the same code precedes the close (as the real service does) unless
        ``close_error_frame`` is false.
    drop_after_s / drop_after_frames:
        Abort the TCP connection without a close frame (the client sees a dropped link).
    terminal_delay_s:
        Wait this long before the terminal message (Deepgram ``Metadata``, AssemblyAI
        ``Termination``) and the normal close that follows it.
    never_terminal:
        Never send the terminal message and never close: the client's stop timeout must cope.
    malformed_after_frames / unknown_type_after_frames:
        After that many audio frames, send one text frame that is not valid JSON, or one
        well-formed message of a type the protocol does not define.
    response_delay_ms:
        Hold every message the server sends for this long (a slow or distant server).
    connections:
        Apply the faults only to the first K connections (counted from server start or from
        the last ``set_faults``); ``None`` means every connection.
    """

    refuse_auth: bool = False
    close_after_s: float | None = None
    close_after_frames: int | None = None
    close_code: int = 1011
    close_reason: str = ""
    close_error_frame: bool = True
    drop_after_s: float | None = None
    drop_after_frames: int | None = None
    terminal_delay_s: float | None = None
    never_terminal: bool = False
    malformed_after_frames: int | None = None
    unknown_type_after_frames: int | None = None
    response_delay_ms: float = 0.0
    connections: int | None = None

    def __post_init__(self) -> None:
        for name in ("close_after_s", "drop_after_s", "terminal_delay_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"Faults.{name} must be >= 0 seconds, not {value!r}.")
        for name in (
            "close_after_frames",
            "drop_after_frames",
            "malformed_after_frames",
            "unknown_type_after_frames",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigurationError(
                    f"Faults.{name} counts audio frames: give an int >= 1, not {value!r}."
                )
        if self.connections is not None and self.connections < 0:
            raise ConfigurationError(
                f"Faults.connections must be >= 0 (or None for all), not {self.connections!r}."
            )
        if self.response_delay_ms < 0:
            raise ConfigurationError("Faults.response_delay_ms must be >= 0.")
        if not (1000 <= self.close_code <= 4999) or self.close_code in (1004, 1005, 1006, 1015):
            raise ConfigurationError(
                f"Faults.close_code {self.close_code} cannot be sent in a close frame; "
                "use 1000-1003, 1007-1014 or 3000-4999."
            )
        if len(self.close_reason.encode()) > 123:
            raise ConfigurationError("Faults.close_reason must fit in 123 bytes (WebSocket limit).")


NO_FAULTS = Faults()


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``livetx serve`` flags that build a ``Faults`` (see ``faults_from_args``)."""
    group = parser.add_argument_group(
        "fault injection", "make the server misbehave, to test how a client copes"
    )
    group.add_argument("--refuse-auth", action="store_true", help="refuse every key")
    group.add_argument("--close-after-seconds", type=float, metavar="S", dest="close_after_s")
    group.add_argument("--close-after-frames", type=int, metavar="N")
    group.add_argument(
        "--close-code",
        type=int,
        default=1011,
        metavar="CODE",
        help="close code for --close-after-* (default 1011)",
    )
    group.add_argument("--close-reason", default="", metavar="TEXT")
    group.add_argument(
        "--no-close-error-frame",
        dest="close_error_frame",
        action="store_false",
        help="AssemblyAI: close without the Error frame that normally precedes it",
    )
    group.add_argument(
        "--drop-after-seconds",
        type=float,
        metavar="S",
        dest="drop_after_s",
        help="abort the TCP connection (no close frame)",
    )
    group.add_argument("--drop-after-frames", type=int, metavar="N")
    group.add_argument(
        "--terminal-delay",
        type=float,
        metavar="S",
        dest="terminal_delay_s",
        help="delay Metadata/Termination by S seconds",
    )
    group.add_argument(
        "--no-terminal",
        action="store_true",
        dest="never_terminal",
        help="never send Metadata/Termination and never close",
    )
    group.add_argument("--malformed-after-frames", type=int, metavar="N")
    group.add_argument("--unknown-type-after-frames", type=int, metavar="N")
    group.add_argument("--response-delay-ms", type=float, default=0.0, metavar="MS")
    group.add_argument(
        "--fault-connections",
        type=int,
        metavar="K",
        dest="connections",
        help="apply the faults to the first K connections only",
    )


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The ``Faults`` that the flags added by ``add_fault_arguments`` describe."""
    return Faults(**{f.name: getattr(args, f.name) for f in fields(Faults)})
