"""The fault matrix: every fault ``livetx serve`` injects x the phase it hits x provider, with
the outcome the client is designed to reach. This one table is the source of the pytest cells
(``test_matrix.py``) and of the README's "Faults and what happens" table::

    python -m tests.faults.matrix --markdown

A cell is (provider, fault, phase). ``FAULTS`` lists each fault with, per phase, either its
designed ``Outcome`` or a ``Skip`` that says why the combination is not a cell of its own.
Nothing here imports pytest or starts anything: it is data and the functions that read it.

Phases, and the server-side moment each one injects an in-session fault at (``TRIGGERS``):

* ``connecting``: the first upgrade (hang, refusal) or at once after it (``seconds:0``);
* ``before_first_result``: after the 2nd audio frame, before any result (``frames:2``);
* ``mid_session``: right after the first final result (``finals:1``); for upgrade faults, the
  reconnect that follows a drop there;
* ``paused``: the client pauses at 2.2 s of audio; the fault fires after 0.3 s without audio
  (``idle:0.3``), then the client resumes;
* ``stopping``: when the server reaches the client's closing message (``end``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from livetx_widgets.errors import (
    AuthenticationError,
    ConnectError,
    LivetxError,
    ProviderError,
)
from livetx_widgets.server import Faults, Trigger

PROVIDERS = ("deepgram", "assemblyai")
PHASES = ("connecting", "before_first_result", "mid_session", "paused", "stopping")
FRONTENDS = ("widget", "cli")
PHASE_TITLES = {
    "connecting": "connecting",
    "before_first_result": "before the first result",
    "mid_session": "mid-session",
    "paused": "paused",
    "stopping": "while stopping",
}

#: When each phase fires an in-session fault (see the module docstring).
TRIGGERS = {
    "connecting": Trigger(seconds=0),
    "before_first_result": Trigger(frames=2),
    "mid_session": Trigger(finals=1),
    "paused": Trigger(idle_s=0.3),
    "stopping": Trigger(on_end=True),
}

#: Seconds of audio where the source stops (after the first final at 1.8 s, inside the second
#: utterance): the client pauses there in the ``paused`` phase; in the other phases before
#: ``stopping`` the source holds there until the client has answered the fault, so that a
#: client streaming as fast as it can is still mid-session when the fault comes.
PAUSE_AT_S = 2.2

#: What the script engine says, on the audio's own clock (the audio is ``timecode_pcm``, so a
#: reconnected stream hears the script from where the replay starts). The audio is 3.2 s:
#: the first sentence is final at 1.8 s; the second only when the client's closing message
#: flushes it (its endpoint would be at 3.5 s), so a fault while stopping can cost it.
SCRIPT = {
    "turns": [
        {"text": "Hello there, first sentence.", "start": 0.3, "end": 1.3},
        {"text": "And the second one.", "start": 2.0, "end": 3.0},
    ]
}
AUDIO_S = 3.2
#: The source for faults that need the client's send buffer to fill (a peer that stops
#: reading): loopback TCP buffers take ~4 MB (~125 s of 16 kHz audio) before a send blocks.
LONG_AUDIO_S = 300.0


@dataclass(frozen=True)
class Outcome:
    """What the client must end with.

    kind:
        ``recover``: reconnects, replays, ends with ``error is None`` and the whole script on
        continuous times. ``error``: ends with ``error`` (a class), ``code`` if given, and
        keeps what it received. ``warn``: ``ProviderWarning``s counted in
        ``metadata.warnings``, the session goes on and completes. ``clean``: completes, with
        the terminal message. ``typed_or_recover``: either ``recover`` or a typed error with
        what was received kept - never ``error is None`` with words missing. ``bounded``: ends
        within its stop timeout with what was received kept; the error may be ``None`` or any
        ``LivetxError``.
    reconnects / connections:
        ``metadata.reconnects`` and the connections the server saw (``None``: not checked).
    """

    kind: str
    error: type[LivetxError] | None = None
    code: int | str | None = None
    reconnects: int | None = None
    connections: int | None = None

    def describe(self) -> str:
        """Plain words for the README."""
        if self.kind == "recover":
            return "reconnects, replays, completes"
        if self.kind == "error":
            code = f" {self.code}" if self.code is not None else ""
            assert self.error is not None
            once = " at once" if self.connections == 1 else ""
            return f"`{self.error.__name__}`{code}{once}"
        return {
            "warn": "warning, completes",
            "clean": "completes normally",
            "typed_or_recover": "completes, or a typed error",
            "bounded": "ends within the stop timeout",
        }[self.kind]


@dataclass(frozen=True)
class Skip:
    """A combination that is not a cell of its own, and why."""

    reason: str


def recover(reconnects: int | None = 1, connections: int | None = 2) -> Outcome:
    return Outcome("recover", reconnects=reconnects, connections=connections)


def error(cls: type[LivetxError], code=None, connections: int | None = 1) -> Outcome:
    return Outcome("error", error=cls, code=code, connections=connections)


WARN = Outcome("warn", reconnects=0, connections=1)
CLEAN = Outcome("clean", reconnects=0, connections=1)
TYPED_OR_RECOVER = Outcome("typed_or_recover")
BOUNDED = Outcome("bounded", connections=1)

UPGRADE_ONLY = Skip(
    "an upgrade happens only when connecting or reconnecting: 'connecting' is the first "
    "upgrade, 'mid_session' the reconnect after a drop (the drop row covers the other phases)"
)
AT_END_ONLY = Skip("the terminal message exists only at the end of a session")
REQUESTED = Skip("once the client asked to end, the terminal message is requested")
CLI_PAUSE = "the CLI cannot pause"


@dataclass(frozen=True)
class Fault:
    """One row: a fault, how the server injects it in a phase, and the outcome per phase.

    ``server(phase)`` builds the ``Faults`` for a phase. ``drivers`` maps a phase to what the
    test does besides letting the source play: ``stop_when_hung`` (stop while the upgrade
    hangs) or ``stop_when_stalled`` (stop once the client's sends block). ``stop_timeout`` is
    the session's; ``long_phases`` play the long source. ``hold``: the source stops at
    ``PAUSE_AT_S`` until the client has answered the fault (false for a fault with no moment).
    ``connect_timeout`` is the session's too (short, so that hang cells are quick; long where
    a stop must beat it). ``group`` merges rows in the README.
    """

    name: str
    label: str
    server: Callable[[str], Faults]
    outcomes: dict[str, Outcome | Skip]
    providers: tuple[str, ...] = PROVIDERS
    drivers: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 2.0
    connect_timeout: float = 1.0
    long_phases: frozenset[str] = frozenset()
    skips: dict[str, Skip] = field(default_factory=dict)  # provider -> why not a cell
    group: str = ""
    hold: bool = True  # hold the source at PAUSE_AT_S until the fault is answered

    def outcome(self, provider: str, phase: str) -> Outcome | Skip:
        if provider in self.skips:
            return self.skips[provider]
        return self.outcomes.get(phase, Skip("not applicable"))


def in_session(action: str, **extra) -> Callable[[str], Faults]:
    """Faults that fire ``action`` at the phase's trigger, on the first connection only."""
    return lambda phase: Faults(**{f"{action}_when": TRIGGERS[phase]}, connections=1, **extra)


def at_upgrade(**upgrade) -> Callable[[str], Faults]:
    """An upgrade fault on the first connection (connecting) or on the reconnect after a drop."""

    def build(phase: str) -> Faults:
        if phase == "connecting":
            return Faults(**upgrade, connections=1)
        return Faults(
            drop_when=TRIGGERS[phase], connections=1, then=Faults(**upgrade, connections=1)
        )

    return build


def every_phase(outcome: Outcome, *, stopping: Outcome | Skip | None = None) -> dict:
    phases = dict.fromkeys(PHASES, outcome)
    if stopping is not None:
        phases["stopping"] = stopping
    return phases


def only(phase: str, outcome: Outcome, why: str) -> dict:
    return {p: (outcome if p == phase else Skip(why)) for p in PHASES}


def upgrade_phases(connecting: Outcome, mid_session: Outcome) -> dict:
    phases = dict.fromkeys(PHASES, UPGRADE_ONLY)
    phases.update(connecting=connecting, mid_session=mid_session)
    return phases


# ------------------------------------------------------------------ close codes, per provider
#: Every close code in shared/protocols: (code, reason, outcome). Retryable: the link or the
#: server failed (1001 going away, 1011 NET-0000/NET-0001, 1012 restart, 1013 try again later,
#: AssemblyAI 3005). 1000 without the terminal message the client asked for: the source still
#: had audio, so it is a reconnect or an error, never a clean end.
DEEPGRAM_CLOSES = (
    (1000, "", TYPED_OR_RECOVER),
    (1001, "", recover()),
    (1002, "DATA-0000", error(ProviderError, 1002)),
    (1008, "DATA-0000", error(ProviderError, 1008)),
    (1011, "NET-0000", recover()),
    (1011, "NET-0001", recover()),
    (1012, "", recover()),
    (1013, "", recover()),
)
ASSEMBLYAI_CLOSES = (
    (1000, "Session Ended", TYPED_OR_RECOVER),
    (1001, "", recover()),
    (1008, "Unauthorized Connection: Invalid API key", error(AuthenticationError, 1008)),
    (1008, "Unauthorized connection: Too many concurrent sessions", error(ProviderError, 1008)),
    (1012, "", recover()),
    (1013, "", recover()),
    (3005, "Session Cancelled: An error occurred", recover()),
    (3006, "Invalid Message Type: Bogus", error(ProviderError, 3006)),
    (3007, "Input duration violation: 20 ms. Expected between 50 and 1000 ms",
     error(ProviderError, 3007)),
    (3007, "Audio Transmission Rate Exceeded: Received 9.0 sec. audio in 3.0 sec",
     error(ProviderError, 3007)),
    (3008, "Session Expired: Maximum session duration exceeded", error(ProviderError, 3008)),
    (3009, "Unauthorized Connection: Too many concurrent sessions", error(ProviderError, 3009)),
    # Legacy (v2) codes the SDK still maps; treated as the provider's errors.
    (4000, "Sample rate must be a positive integer", error(ProviderError, 4000)),
    (4001, "Not Authorized", error(AuthenticationError, 4001)),
    (4002, "Insufficient Funds", error(ProviderError, 4002)),
    (4003, "This feature is paid-only", error(ProviderError, 4003)),
    (4004, "Session not found", error(ProviderError, 4004)),
    (4008, "Session Expired", error(ProviderError, 4008)),
    (4010, "Session previously closed", error(ProviderError, 4010)),
    (4029, "Client sent audio too fast", error(ProviderError, 4029)),
    (4030, "Session is handled by another websocket", error(ProviderError, 4030)),
    (4031, "Session idle for too long", error(ProviderError, 4031)),
    (4032, "Audio duration is too short", error(ProviderError, 4032)),
    (4033, "Audio duration is too long", error(ProviderError, 4033)),
    (4034, "Audio too small to transcode", error(ProviderError, 4034)),
    (4100, "Endpoint received invalid JSON", error(ProviderError, 4100)),
    (4101, "Endpoint received a message with an invalid schema", error(ProviderError, 4101)),
    (4102, "This account has exceeded the number of allowed streams",
     error(ProviderError, 4102)),
    (4103, "The session has been reconnected", error(ProviderError, 4103)),
)  # fmt: skip

#: The codes that run in every phase (one retryable, one refusal, the unasked 1000); the
#: other codes run mid-session only, since a code changes the outcome, not the code path.
PHASE_COVERAGE = {
    "deepgram": {(1011, "NET-0000"), (1008, "DATA-0000"), (1000, "")},
    "assemblyai": {(3005, ""), (3006, ""), (1000, "")},
}


def _close_name(code: int, reason: str, provider: str) -> str:
    words = reason.replace(":", "").split()
    tag = ""
    if provider == "deepgram" and reason:
        tag = f"-{reason}"
    elif code == 1008:
        tag = "-concurrency" if "concurrent" in reason.lower() else "-auth"
    elif code == 3007:
        tag = "-rate" if "Rate" in words else "-duration"
    return f"close-{code}{tag}"


def _close_rows(provider: str) -> Iterator[Fault]:
    closes = DEEPGRAM_CLOSES if provider == "deepgram" else ASSEMBLYAI_CLOSES
    covered = PHASE_COVERAGE[provider]
    for code, reason, outcome in closes:
        name = _close_name(code, reason, provider)
        key = (code, reason if provider == "deepgram" else "")
        if key in covered:
            stopping = outcome if outcome.kind == "error" else TYPED_OR_RECOVER
            outcomes = every_phase(outcome, stopping=stopping)
        else:
            rep = sorted(f"close-{c}" + (f"-{r}" if r else "") for c, r in covered)
            outcomes = only(
                "mid_session", outcome, f"phases are covered by {', '.join(rep)} (same path)"
            )
        label = f"close {code}" + (f" `{reason}`" if reason else "")
        group = "close 4000-4103 (legacy v2 codes)" if code >= 4000 else ""
        yield Fault(name, label, in_session("close", close_code=code, close_reason=reason),
                    outcomes, providers=(provider,), group=group)  # fmt: skip


def _unrequested_rows() -> Iterator[Fault]:
    terminal = {"deepgram": "`Metadata`", "assemblyai": "`Termination`"}
    rows = {
        "deepgram": ((1011, "NET-0001", recover()), (1008, "DATA-0000", error(ProviderError, 1008)),
                     (1000, "", TYPED_OR_RECOVER)),
        "assemblyai": ((3005, "Session Cancelled: An error occurred", recover()),
                       (3006, "Invalid Message Type: Bogus", error(ProviderError, 3006)),
                       (1000, "Session Ended", TYPED_OR_RECOVER)),
    }  # fmt: skip
    for provider, variants in rows.items():
        for i, (code, reason, outcome) in enumerate(variants):
            if i == 0:  # the retryable one (Deepgram's own idle timeout) in every phase
                outcomes = every_phase(outcome, stopping=REQUESTED)
            else:
                outcomes = {p: Skip(f"phases are covered by the {variants[0][0]} variant")
                            for p in PHASES}  # fmt: skip
                outcomes.update(mid_session=outcome, paused=outcome, stopping=REQUESTED)
            tag = f"-{reason}" if provider == "deepgram" and reason else ""
            yield Fault(
                f"unrequested-terminal-{code}{tag}",
                f"unrequested {terminal[provider]}, then close {code}"
                + (f" `{reason}`" if provider == "deepgram" and reason else ""),
                in_session("unrequested_terminal", close_code=code, close_reason=reason),
                outcomes,
                providers=(provider,),
            )


def _rows() -> Iterator[Fault]:
    yield Fault(
        "connect-hang", "connect hang (TCP accepted, no upgrade)",
        lambda phase: (Faults(connect_hang=True) if phase == "connecting" else
                       at_upgrade(connect_hang=True)(phase)),
        upgrade_phases(error(ConnectError), recover(1, 3)),
    )  # fmt: skip
    yield Fault(
        "connect-hang-stop", "connect hang, then `stop(timeout=1)`",
        lambda phase: Faults(connect_hang=True),
        only("connecting", BOUNDED, "a stop can meet a hanging upgrade only while connecting"),
        drivers={"connecting": "stop_when_hung"}, stop_timeout=1.0, connect_timeout=10.0,
    )  # fmt: skip
    for status in (401, 403):
        yield Fault(
            f"refuse-{status}", f"upgrade refused with HTTP {status}",
            at_upgrade(refuse_status=status),
            upgrade_phases(error(AuthenticationError, status),
                           error(AuthenticationError, status, connections=2)),
        )  # fmt: skip
    # 429 is a concurrency/rate limit. On the first connect nothing is lost by stopping and
    # retrying would only hit the limit again: an error the user acts on. On a reconnect the
    # dropped connection may still count against the limit until the provider notices it is
    # gone: a retry with backoff is the designed answer.
    yield Fault(
        "refuse-429", "upgrade refused with HTTP 429", at_upgrade(refuse_status=429),
        upgrade_phases(error(ProviderError, 429), recover(1, 3)),
    )  # fmt: skip
    for status in (500, 503):
        yield Fault(
            f"refuse-{status}", f"upgrade refused with HTTP {status}",
            at_upgrade(refuse_status=status),
            upgrade_phases(recover(None, 2), recover(1, 3)),
        )  # fmt: skip
    yield Fault(
        "refuse-auth", "key refused (AssemblyAI: `Error` + close 1008 after the 101)",
        at_upgrade(refuse_auth=True),
        upgrade_phases(error(AuthenticationError, 1008),
                       error(AuthenticationError, 1008, connections=2)),
        skips={"deepgram": Skip("Deepgram refuses a key with HTTP 401: see refuse-401")},
    )  # fmt: skip
    yield Fault(
        "drop", "TCP drop without a close frame", in_session("drop"),
        every_phase(recover(), stopping=TYPED_OR_RECOVER),
    )  # fmt: skip
    for provider in PROVIDERS:
        yield from _close_rows(provider)
    yield from _unrequested_rows()
    yield Fault(
        "stop-reading", "server stops reading (the client's send buffer fills)",
        in_session("stop_reading"),
        {
            "connecting": Skip("same as before_first_result: nothing is read after frame 2"),
            "before_first_result": TYPED_OR_RECOVER,
            "mid_session": TYPED_OR_RECOVER,
            "paused": Skip("a paused client sends only KeepAlive: nothing fills"),
            "stopping": TYPED_OR_RECOVER,
        },
        drivers={"before_first_result": "stop_when_stalled", "mid_session": "stop_when_stalled"},
        long_phases=frozenset({"before_first_result", "mid_session"}), stop_timeout=1.0,
    )  # fmt: skip
    yield Fault(
        "terminal-late", "terminal message 0.5 s late (stop timeout 2 s)",
        lambda phase: Faults(terminal_delay_s=0.5),
        only("stopping", CLEAN, AT_END_ONLY.reason),
    )  # fmt: skip
    yield Fault(
        "terminal-never", "terminal message never sent (stop timeout 1 s)",
        lambda phase: Faults(never_terminal=True),
        only("stopping", BOUNDED, AT_END_ONLY.reason), stop_timeout=1.0,
    )  # fmt: skip
    yield Fault("malformed", "malformed JSON frame", in_session("malformed"), every_phase(WARN))
    yield Fault(
        "unknown-type", "message of an unknown type", in_session("unknown_type"),
        every_phase(WARN),
    )  # fmt: skip
    yield Fault(
        "oversized", "1 MiB text frame (valid JSON)", in_session("oversized"), every_phase(WARN)
    )
    yield Fault(
        "slow", "slow server (every message 50 ms late)",
        lambda phase: Faults(response_delay_ms=50),
        only("mid_session", CLEAN, "a slow server is slow in every phase: one cell covers it"),
        hold=False,
    )  # fmt: skip


FAULTS: tuple[Fault, ...] = tuple(_rows())


@dataclass(frozen=True)
class Cell:
    provider: str
    fault: Fault
    phase: str
    frontend: str
    outcome: Outcome | Skip

    pause_at_s: float = PAUSE_AT_S

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.fault.name}-{self.phase}-{self.frontend}"


def cells() -> Iterator[Cell]:
    """Every (provider, fault, phase, frontend), skips included, in table order."""
    for fault in FAULTS:
        for provider in fault.providers:
            for phase in PHASES:
                outcome = fault.outcome(provider, phase)
                for frontend in FRONTENDS:
                    if frontend == "cli" and phase == "paused" and not isinstance(outcome, Skip):
                        yield Cell(provider, fault, phase, frontend, Skip(CLI_PAUSE))
                    else:
                        yield Cell(provider, fault, phase, frontend, outcome)


# ------------------------------------------------------------------------------ the README
def _who(providers: list[str]) -> str:
    if len(providers) == len(PROVIDERS):
        return "both"
    return ", ".join("Deepgram" if p == "deepgram" else "AssemblyAI" for p in providers)


def _merged(outcomes: list[Outcome | Skip]) -> str:
    """One README cell for a group of codes: the common outcome, then the exceptions."""
    ran = [o for o in outcomes if not isinstance(o, Skip)]
    if not ran:
        return "-"
    by_text: dict[str, list[str]] = {}
    for o in ran:
        plain = Outcome(o.kind, o.error, None, o.reconnects, o.connections).describe()
        by_text.setdefault(plain, []).append(str(o.code))
    (common, _), *others = sorted(by_text.items(), key=lambda item: -len(item[1]))
    extra = "".join(f"; {', '.join(codes)}: {text}" for text, codes in others)
    return f"{common} (with the code){extra}"


def markdown() -> str:
    """The README table: one row per fault, one column per phase, the designed outcome."""
    head = "| fault | provider | " + " | ".join(PHASE_TITLES[p] for p in PHASES) + " |"
    lines = [head, "|" + "---|" * (len(PHASES) + 2)]
    done_groups: set[str] = set()
    for fault in FAULTS:
        if fault.group:
            if fault.group in done_groups:
                continue
            done_groups.add(fault.group)
            members = [f for f in FAULTS if f.group == fault.group]
            providers = list(dict.fromkeys(p for f in members for p in f.providers))
            texts = [
                _merged([f.outcome(p, phase) for f in members for p in f.providers])
                for phase in PHASES
            ]
            lines.append(f"| {fault.group} | {_who(providers)} | " + " | ".join(texts) + " |")
            continue
        rows: dict[tuple, list[str]] = {}
        for provider in fault.providers:
            row = tuple(fault.outcome(provider, phase) for phase in PHASES)
            if not all(isinstance(o, Skip) for o in row):
                rows.setdefault(row, []).append(provider)
        for row, providers in rows.items():
            texts = [("-" if isinstance(o, Skip) else o.describe()) for o in row]
            lines.append(f"| {fault.label} | {_who(providers)} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def summary() -> str:
    counted = list(cells())
    run = [c for c in counted if not isinstance(c.outcome, Skip)]
    return f"{len(run)} cells run, {len(counted) - len(run)} combinations skipped with a reason"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown())
    else:
        for cell in cells():
            what = cell.outcome.reason if isinstance(cell.outcome, Skip) else cell.outcome
            print(cell.id, what, sep="\t")
        print(summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
