"""Fault injection for ``livetx serve``: the failures a client must survive, on demand.

Real providers refuse keys, hang, drop connections, stall before their last message, stop
reading, and send things a client does not expect. Waiting for that to happen is no way to
test a client, so the local server can be told to misbehave in each of those ways,
deterministically, and only for the first K connections so that a reconnect test can break
connection 1 and let connection 2 succeed (``then`` chains a second set of faults for the
connections after those, e.g. "drop connection 1, refuse connection 2, serve connection 3").

Faults that happen inside an open session fire on a ``Trigger``, one of:

* ``frames:N``  right after the N-th audio frame arrived;
* ``seconds:S`` S seconds after the handshake (``seconds:0``: at once, after AssemblyAI's
  ``Begin``);
* ``finals:N``  right after the server sent its N-th non-empty final result (the client has
  seen a final: "mid-session");
* ``idle:S``    S seconds after the last audio frame, once audio has flowed and while the
  client has not ended the stream (a paused client sends no audio, only KeepAlive);
* ``end``       when the server handles the client's closing message (Deepgram
  ``CloseStream`` or an empty frame, AssemblyAI ``Terminate``), after the audio and control
  messages that preceded it and before the server's own ending.

``Faults`` is a plain frozen value: pass it to ``LocalServer(faults=...)``, swap it at run
time with ``LocalServer.set_faults`` or build it from ``livetx serve`` flags
(``add_fault_arguments`` / ``faults_from_args``).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, fields

from ..errors import ConfigurationError

#: Text sent by the ``malformed`` fault: a JSON object cut off mid-way.
MALFORMED_FRAME = '{"type": "Results", "channel_index": [0, 1], "is_final": tr'

#: ``type`` of the message sent by the ``unknown_type`` fault.
UNKNOWN_MESSAGE_TYPE = "LivetxUnknownMessage"

#: The ``oversized`` fault sends one valid JSON text frame of this many bytes: a message of
#: ``OVERSIZED_MESSAGE_TYPE`` (not part of either protocol) padded with spaces in a string.
OVERSIZED_BYTES = 1 << 20
OVERSIZED_MESSAGE_TYPE = "LivetxOversizedMessage"

#: The faults that fire on a ``Trigger`` inside a session, in the order they run when several
#: fire at the same moment (garbage first, so that it is sent before a close or a drop).
ACTIONS = (
    "malformed",
    "unknown_type",
    "oversized",
    "stop_reading",
    "unrequested_terminal",
    "close",
    "drop",
)


def oversized_frame() -> str:
    """The text frame of the ``oversized`` fault: valid JSON, exactly ``OVERSIZED_BYTES``."""
    head = json.dumps({"type": OVERSIZED_MESSAGE_TYPE, "padding": ""})
    pad = OVERSIZED_BYTES - len(head)
    return head[:-2] + " " * pad + head[-2:]


@dataclass(frozen=True)
class Trigger:
    """When an in-session fault fires: exactly one of the fields (see the module docstring).

    Written ``frames:N``, ``seconds:S``, ``finals:N``, ``idle:S`` or ``end`` on the command
    line (``Trigger.parse``; ``str()`` gives the same text back).
    """

    frames: int | None = None
    seconds: float | None = None
    finals: int | None = None
    idle_s: float | None = None
    on_end: bool = False

    def __post_init__(self) -> None:
        numbers = ("frames", "seconds", "finals", "idle_s")
        chosen = [name for name in numbers if getattr(self, name) is not None]
        if self.on_end:
            chosen.append("on_end")
        if len(chosen) != 1:
            raise ConfigurationError(
                "A fault Trigger needs exactly one of frames=, seconds=, finals=, idle_s= or "
                f"on_end=True (got {', '.join(chosen) or 'none'})."
            )
        for name in ("frames", "finals"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"Trigger {name}= counts from 1: give an int >= 1, not {value!r}."
                )
        for name in ("seconds", "idle_s"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigurationError(f"Trigger {name}= must be >= 0 seconds, not {value!r}.")

    @classmethod
    def parse(cls, text: str) -> Trigger:
        """``frames:N`` | ``seconds:S`` | ``finals:N`` | ``idle:S`` | ``end``."""
        kind, _, value = text.strip().partition(":")
        try:
            if kind == "end" and not value:
                return cls(on_end=True)
            if kind in ("frames", "finals"):
                return cls(**{kind: int(value)})
            if kind in ("seconds", "idle"):
                return cls(**{"seconds" if kind == "seconds" else "idle_s": float(value)})
        except ValueError:
            pass
        raise ConfigurationError(
            f"Bad fault trigger {text!r}: use frames:N, seconds:S, finals:N, idle:S or end."
        )

    def __str__(self) -> str:
        if self.on_end:
            return "end"
        if self.frames is not None:
            return f"frames:{self.frames}"
        if self.finals is not None:
            return f"finals:{self.finals}"
        if self.seconds is not None:
            return f"seconds:{self.seconds:g}"
        return f"idle:{self.idle_s:g}"


@dataclass(frozen=True)
class Faults:
    """What the server should do wrong. Every field defaults to "behave".

    At the upgrade (before any WebSocket exists):

    connect_hang:
        Accept the TCP connection, read the upgrade request and never answer it. The hang ends
        when the client gives up (closes the socket), when the server stops (HTTP 503) or after
        the server's 10 s opening timeout (websockets' ``open_timeout``; TCP closed).
    refuse_status:
        Refuse the upgrade with this HTTP status (400-599) and the provider's error body:
        Deepgram's ``{"err_code", "err_msg", "request_id"}`` with a ``dg-error`` header,
        AssemblyAI's ``{"error": ...}``. For 401 this is exactly what ``refuse_auth`` does on
        Deepgram.
    refuse_auth:
        Refuse the credentials whatever they are (Deepgram: HTTP 401; AssemblyAI: Error frame
        and close 1008), exactly as a wrong key would be refused.

    Inside the session, each on a ``Trigger`` (``*_when``; see the module docstring):

    drop_when:
        Abort the TCP connection without a close frame (the client sees a dropped link).
    close_when, close_code, close_reason, close_error_frame:
        Close the WebSocket with ``close_code``/``close_reason``. On AssemblyAI an ``Error``
        frame carrying the same code precedes the close (as the real service does) unless
        ``close_error_frame`` is false.
    unrequested_terminal_when:
        Send the terminal message (Deepgram ``Metadata``, AssemblyAI ``Termination``) although
        the client did not ask to end, then close with ``close_code``/``close_reason`` and no
        Error frame. This is what Deepgram does on its NET-0001 idle timeout (``Metadata``,
        then 1011): a terminal message alone does not mean the session ended normally.
    stop_reading_when:
        Stop reading client frames and stop answering: an unresponsive peer. The WebSocket
        library then stops reading the socket, TCP flow control fills the client's send buffer
        (loopback buffers hold ~90 s of 16 kHz audio) and the client's sends block; what was
        already queued is never processed and nothing more is sent. Held until the client or
        the server closes the connection.
    malformed_when / unknown_type_when / oversized_when:
        Send one text frame that is not valid JSON (``MALFORMED_FRAME``), one well-formed
        message of a type the protocol does not define, or one valid JSON frame of
        ``OVERSIZED_BYTES`` (1 MiB). The session then goes on normally.

    Shorthands kept from earlier versions (each is the same as the ``*_when`` form):
    ``close_after_s``/``close_after_frames`` (``close_when=seconds:S``/``frames:N``),
    ``drop_after_s``/``drop_after_frames``, ``malformed_after_frames``,
    ``unknown_type_after_frames``.

    At the end:

    terminal_delay_s:
        Wait this long before the terminal message (Deepgram ``Metadata``, AssemblyAI
        ``Termination``) and the normal close that follows it.
    never_terminal:
        Never send the terminal message and never close: the client's stop timeout must cope.

    Throughout:

    response_delay_ms:
        Hold every message the server sends for this long (a slow or distant server).

    Scope:

    connections:
        Apply the faults only to the first K connections (counted from server start or from
        the last ``set_faults``); ``None`` means every connection.
    then:
        The faults for the connections after those K (needs ``connections``); they may have
        their own ``connections`` and ``then``. Python only (no command-line flag).
    """

    connect_hang: bool = False
    refuse_status: int | None = None
    refuse_auth: bool = False
    drop_when: Trigger | None = None
    close_when: Trigger | None = None
    close_code: int = 1011
    close_reason: str = ""
    close_error_frame: bool = True
    unrequested_terminal_when: Trigger | None = None
    stop_reading_when: Trigger | None = None
    malformed_when: Trigger | None = None
    unknown_type_when: Trigger | None = None
    oversized_when: Trigger | None = None
    close_after_s: float | None = None
    close_after_frames: int | None = None
    drop_after_s: float | None = None
    drop_after_frames: int | None = None
    malformed_after_frames: int | None = None
    unknown_type_after_frames: int | None = None
    terminal_delay_s: float | None = None
    never_terminal: bool = False
    response_delay_ms: float = 0.0
    connections: int | None = None
    then: Faults | None = None

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
        for action in ACTIONS:
            value = getattr(self, f"{action}_when")
            if value is not None and not isinstance(value, Trigger):
                raise ConfigurationError(
                    f"Faults.{action}_when must be a Trigger (e.g. Trigger(frames=20) or "
                    f"Trigger.parse('end')), not {value!r}."
                )
        if self.unrequested_terminal_when is not None and self.unrequested_terminal_when.on_end:
            raise ConfigurationError(
                "Faults.unrequested_terminal_when cannot be 'end': once the client asks to end, "
                "the terminal message is requested."
            )
        status = self.refuse_status
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise ConfigurationError(
                f"Faults.refuse_status must be an HTTP error status 400-599, not {status!r}."
            )
        if self.connections is not None and self.connections < 0:
            raise ConfigurationError(
                f"Faults.connections must be >= 0 (or None for all), not {self.connections!r}."
            )
        if self.then is not None:
            if not isinstance(self.then, Faults):
                raise ConfigurationError(f"Faults.then must be a Faults, not {self.then!r}.")
            if self.connections is None:
                raise ConfigurationError(
                    "Faults.then needs connections=K: it applies to the connections after K."
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

    def for_connection(self, n: int) -> Faults:
        """The faults for the ``n``-th connection (from 1) since these faults were set."""
        if self.connections is None or n <= self.connections:
            return self
        if self.then is not None:
            return self.then.for_connection(n - self.connections)
        return NO_FAULTS

    def schedule(self) -> tuple[tuple[str, Trigger], ...]:
        """Every in-session fault as ``(action, trigger)``, shorthands included."""
        plan = [
            (action, trigger)
            for action in ACTIONS
            if (trigger := getattr(self, f"{action}_when")) is not None
        ]
        shorthands = (
            ("close", "seconds", self.close_after_s),
            ("close", "frames", self.close_after_frames),
            ("drop", "seconds", self.drop_after_s),
            ("drop", "frames", self.drop_after_frames),
            ("malformed", "frames", self.malformed_after_frames),
            ("unknown_type", "frames", self.unknown_type_after_frames),
        )
        plan += [(action, Trigger(**{kind: v})) for action, kind, v in shorthands if v is not None]
        plan.sort(key=lambda item: ACTIONS.index(item[0]))
        return tuple(plan)


NO_FAULTS = Faults()

#: ``Faults`` fields that have no command-line flag.
PYTHON_ONLY = ("then",)


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``livetx serve`` flags that build a ``Faults`` (see ``faults_from_args``)."""
    group = parser.add_argument_group(
        "fault injection",
        "make the server misbehave, to test how a client copes. TRIGGER is frames:N, "
        "seconds:S, finals:N (after the N-th final result), idle:S (S seconds without audio) "
        "or end (on the client's closing message)",
    )
    group.add_argument(
        "--connect-hang", action="store_true", help="accept TCP, never answer the upgrade"
    )
    group.add_argument(
        "--refuse-status",
        type=int,
        metavar="HTTP",
        help="refuse the upgrade with this status (401, 403, 429, 500, 503, ...)",
    )
    group.add_argument("--refuse-auth", action="store_true", help="refuse every key")
    trigger = Trigger.parse
    group.add_argument(
        "--drop-when", type=trigger, metavar="TRIGGER", help="abort TCP (no close frame)"
    )
    group.add_argument(
        "--close-when", type=trigger, metavar="TRIGGER", help="close with --close-code"
    )
    group.add_argument(
        "--close-code",
        type=int,
        default=1011,
        metavar="CODE",
        help="close code of --close-* and --unrequested-terminal-when (default 1011)",
    )
    group.add_argument("--close-reason", default="", metavar="TEXT")
    group.add_argument(
        "--no-close-error-frame",
        dest="close_error_frame",
        action="store_false",
        help="AssemblyAI: close without the Error frame that normally precedes it",
    )
    group.add_argument(
        "--unrequested-terminal-when",
        type=trigger,
        metavar="TRIGGER",
        help="send Metadata/Termination unasked, then close with --close-code",
    )
    group.add_argument(
        "--stop-reading-when",
        type=trigger,
        metavar="TRIGGER",
        help="stop reading the client's frames (its send buffer fills)",
    )
    group.add_argument("--malformed-when", type=trigger, metavar="TRIGGER")
    group.add_argument("--unknown-type-when", type=trigger, metavar="TRIGGER")
    group.add_argument(
        "--oversized-when", type=trigger, metavar="TRIGGER", help="send a 1 MiB JSON frame"
    )
    group.add_argument("--close-after-seconds", type=float, metavar="S", dest="close_after_s")
    group.add_argument("--close-after-frames", type=int, metavar="N")
    group.add_argument(
        "--drop-after-seconds",
        type=float,
        metavar="S",
        dest="drop_after_s",
        help="abort the TCP connection (no close frame)",
    )
    group.add_argument("--drop-after-frames", type=int, metavar="N")
    group.add_argument("--malformed-after-frames", type=int, metavar="N")
    group.add_argument("--unknown-type-after-frames", type=int, metavar="N")
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
    return Faults(
        **{f.name: getattr(args, f.name) for f in fields(Faults) if f.name not in PYTHON_ONLY}
    )
