"""Runs one cell of the fault matrix and checks everything a cell promises.

A cell starts ``livetx serve`` (``LocalServer``, script engine reading the audio's timecode)
with the cell's faults, runs one session through a front end - the widget
(``LiveTranscriber``, kernel-less) or the CLI (``livetx transcribe`` in-process) - drives the
phase (pause at the gate, stop while hung or stalled), and then checks:

* the designed outcome: error type and code, reconnects, connections the server saw,
  warnings, the terminal message;
* time: the session ends within ``CELL_BOUND``; once stopping it ends within its stop timeout
  plus ``MARGIN``; a ``stop()`` the test calls returns within its timeout plus ``MARGIN``;
* nothing left: no ``livetx-*`` thread and no socket the cell opened;
* nothing received lost: every word the client received (finals and partials, seen through
  listeners) is in the final transcript, the transcript is the script's words in order on
  the script's times (continuous across reconnects), and the whole script when recovered;
* the reason is visible: the widget's ``status``/``status_text``/``error``, or the CLI's exit
  code, ``error:`` line and summary; the API key in neither.

The widget and the CLI build their ``TranscriptionSession`` themselves. The harness replaces
the class they call with a factory that builds the real one, with the cell's
``connect_timeout`` (neither front end has that option) and ``pace=False`` where the session
has it (AssemblyAI refuses faster-than-real-time audio, but this server does not check); it
wraps the source they chose (the widget's array, the CLI's ``WavFile``) in a ``Gate`` where
the phase needs one; and it listens to the session: that is how a cell sees what the client
received.
"""

from __future__ import annotations

import inspect
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np

import livetx_widgets.session as session_pkg
import livetx_widgets.ui.widget as widget_mod
from livetx_widgets import ArraySource, LiveTranscriber
from livetx_widgets.audio.base import AudioSource
from livetx_widgets.audio.resolve import resolve_source
from livetx_widgets.cli import main as cli_main
from livetx_widgets.credentials import KEY_ENV
from livetx_widgets.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
    ProviderError,
)
from livetx_widgets.events import PartialTranscript, ProviderWarning
from livetx_widgets.server import LocalServer, timecode_pcm
from livetx_widgets.session.session import TranscriptionSession

#: The timing unit a slow CI machine can scale (every bound below is a multiple of it).
TIMING_UNIT = support.TIMING
#: What a stop may take beyond its timeout (joining threads, a last flush of the widget).
MARGIN = 1.0 * TIMING_UNIT
#: A whole session of this matrix ends within this, whatever the fault.
CELL_BOUND = 12.0 * TIMING_UNIT
#: Waiting for a fault to fire or for the client to react to it.
REACT_BOUND = 6.0 * TIMING_UNIT
#: Word times against the script: one 50 ms chunk plus rounding.
TIME_TOLERANCE_S = 0.06
KEY = "sk-livetx-fault-matrix-0123456789abcdef"
HEADLINES = (
    (AuthenticationError, "API key refused"),
    (ConnectError, "Could not connect"),
    (ConnectionLostError, "Connection lost"),
    (ProviderError, "The provider reported an error"),
)
EXIT_CODES = ((AuthenticationError, 3), (ConnectError, 4), (ConnectionLostError, 4))
SESSION_PARAMETERS = inspect.signature(TranscriptionSession).parameters
_PUNCTUATION = re.compile(r"[^\w']+")


def norm(text: str) -> str:
    return _PUNCTUATION.sub("", text).lower()


# ------------------------------------------------------------------------------ audio
def timecode_array(seconds: float) -> np.ndarray:
    return np.frombuffer(timecode_pcm(seconds), dtype="<i2")


write_wav = support.write_wav


class Gate(AudioSource):
    """Wraps the source a front end plays and stops it at ``gate_s`` seconds of audio.

    There it calls ``on_gate`` (the pause of the ``paused`` phase: exactly there, before the
    server can notice any silence) and, with ``hold``, delivers nothing more until
    ``release()``, like a microphone that has nothing yet. Holding keeps the client
    mid-session until the fault has happened and the client has answered it: without it a
    client that streams a short file as fast as it can may be stopping already when the
    server reaches the first final, and "mid-session" would be a race.
    """

    def __init__(self, inner: AudioSource, gate_s: float, *, hold: bool,
                 on_gate: Callable[[], Any] | None = None):  # fmt: skip
        super().__init__()
        self.inner = inner
        self.live, self.realtime = inner.live, inner.realtime
        self.chunk_ms, self.duration_s = inner.chunk_ms, inner.duration_s
        self.hold = hold
        self.on_gate = on_gate
        self._gate_bytes = int(gate_s * 32000)
        self._taken = 0
        self.reached = threading.Event()
        self.released = threading.Event()
        self._stopped = threading.Event()
        self._wake = threading.Event()  # set by release() and stop()

    @property
    def position_s(self) -> float:
        return self.inner.position_s

    @position_s.setter
    def position_s(self, value: float) -> None:  # AudioSource.__init__ sets it
        pass

    def start(self) -> None:
        self._stopped.clear()
        self.inner.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self.inner.stop()

    def release(self) -> None:
        self.released.set()
        self._wake.set()

    def read(self, timeout: float | None = None) -> bytes | None:
        if self._taken >= self._gate_bytes and not self.reached.is_set():
            self.reached.set()
            if self.on_gate is not None:
                self.on_gate()
        if self.hold and self.reached.is_set() and not self.released.is_set():
            self._wake.wait(0.1 if timeout is None else timeout)
            if self._stopped.is_set():
                return None
            if not self.released.is_set():
                return b""
        chunk = self.inner.read(timeout)
        if chunk:
            self._taken += len(chunk)
        return chunk


socket_inodes = support.socket_inodes
wait_until = support.wait_until


# ------------------------------------------------------------------------------ the probe
class Probe:
    """Builds the sessions the front ends ask for, and records what each one received."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self.gate_spec: dict | None = None  # Gate(...) keywords for the next session's source
        self.gate: Gate | None = None
        self.sessions: list[TranscriptionSession] = []
        self.created = threading.Event()
        self.finals: dict[int, Any] = {}  # segment id -> latest Segment received
        self.partials: dict[str, PartialTranscript] = {}  # key -> latest partial received
        self.warnings = 0
        self.statuses: list[tuple[float, str]] = []
        self.ended_at: float | None = None

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(widget_mod, "TranscriptionSession", self.factory)
        monkeypatch.setattr(session_pkg, "TranscriptionSession", self.factory)

    def factory(self, *args: Any, **kwargs: Any) -> TranscriptionSession:
        # The front ends pass every configuration value; these two are the harness's own.
        kwargs["connect_timeout"] = self.connect_timeout
        if kwargs.get("pace") is None:
            kwargs["pace"] = False
        if self.gate_spec is not None:
            source = resolve_source(
                kwargs.get("source", "auto"), file=kwargs.get("file"),
                device=kwargs.get("device"), realtime=kwargs.get("realtime", True),
            )  # fmt: skip
            self.gate = Gate(source, **self.gate_spec)
            kwargs["source"] = self.gate
        session = TranscriptionSession(*args, **kwargs)
        session.on("final", self._final)
        session.on("partial", self._partial)
        session.on("event", self._event)
        session.on("status", self._status)
        self.sessions.append(session)
        self.created.set()
        return session

    @property
    def session(self) -> TranscriptionSession:
        return self.sessions[-1]

    def _final(self, segment) -> None:
        self.finals[segment.segment_id] = segment

    def _partial(self, event: PartialTranscript) -> None:
        self.partials[event.segment_key] = event

    def _event(self, event) -> None:
        if isinstance(event, ProviderWarning):
            self.warnings += 1

    def _status(self, state: str) -> None:
        now = time.monotonic()
        self.statuses.append((now, state))
        if state in ("stopped", "error"):
            self.ended_at = now

    def first(self, state: str) -> float | None:
        return next((t for t, s in self.statuses if s == state), None)

    def received_words(self) -> list[tuple[str, float]]:
        """Every word received: those of finals, and of the partials no final replaced."""
        words = [(w.text, w.start) for s in self.finals.values() for w in s.words]
        final_keys = {s.key for s in self.finals.values()}
        for key, partial in self.partials.items():
            if key not in final_keys:
                words += [(w.text, w.start) for w in partial.words]
        return words


# ------------------------------------------------------------------------------ one run
@dataclass
class Run:
    """What one front end ended with."""

    error: LivetxError | None
    transcript: Any
    metadata: Any
    started_at: float
    stop_called_at: float | None = None
    stop_returned_at: float | None = None
    widget: dict[str, str] = field(default_factory=dict)
    rc: int | None = None
    out: str = ""
    err: str = ""
    notes: list[str] = field(default_factory=list)


def fired(srv: LocalServer, name: str | None = None) -> bool:
    records = srv.sessions
    return bool(records) and (
        bool(records[0].faults_fired) if name is None else name in records[0].faults_fired
    )


def wait_stalled(probe: Probe, run: Run) -> None:
    """Wait until the client's sends block (audio sent stops growing); bounded."""
    session = probe.session
    samples: list[float] = []

    def stalled() -> bool:
        samples.append(session.metadata.audio_sent_s)
        return len(samples) >= 4 and samples[-1] == samples[-4] and not session.wait(0)

    if not wait_until(stalled, REACT_BOUND, interval=0.1):
        run.notes.append(f"the client's sends never stalled (sent {samples[-1:]} s)")


def plan_gate(cell, probe: Probe, pause: Callable[[], Any]) -> None:
    """Which source gate the cell's session gets (see ``Gate``), before it is built."""
    if cell.phase == "paused":
        probe.gate_spec = {"gate_s": cell.pause_at_s, "hold": False, "on_gate": pause}
    elif cell.fault.hold and cell.phase != "stopping" and not cell.fault.drivers.get(cell.phase):
        probe.gate_spec = {"gate_s": cell.pause_at_s, "hold": True}


def answered(srv: LocalServer, probe: Probe) -> Callable[[], bool]:
    """Has the client answered the fault: ended, reconnected, warned, or is it live on a later
    connection (after an upgrade fault)?"""

    def check() -> bool:
        session = probe.session
        if session.wait(0):
            return True
        meta = session.metadata
        later = len(srv.sessions) >= 2 and session.state in ("live", "paused")
        return meta.reconnects >= 1 or probe.warnings >= 1 or later

    return check


def drive(cell, srv: LocalServer, probe: Probe, run: Run, stop: Callable[[], Any],
          resume: Callable[[], Any]) -> None:  # fmt: skip
    """The phase's actions besides playing the source; ``stop``/``resume`` are the front
    end's. Every wait is bounded; what did not happen goes into ``run.notes``."""
    driver = cell.fault.drivers.get(cell.phase, "")
    gate = probe.gate
    if cell.phase == "paused" and gate is not None:
        settle_paused(srv, probe, run)
        resume()
    elif gate is not None:
        if not wait_until(lambda: fired(srv), REACT_BOUND):
            run.notes.append("the fault never fired")
        if not wait_until(answered(srv, probe), REACT_BOUND):
            run.notes.append(f"the client never answered the fault ({probe.session.state!r})")
        gate.release()
    if driver == "stop_when_hung":
        if not wait_until(lambda: fired(srv, "connect_hang"), REACT_BOUND):
            run.notes.append("the upgrade never hung")
    elif driver == "stop_when_stalled":
        if not wait_until(lambda: fired(srv, "stop_reading"), REACT_BOUND):
            run.notes.append("the server never stopped reading")
        wait_stalled(probe, run)
    if driver:
        run.stop_called_at = time.monotonic()
        stop()
        run.stop_returned_at = time.monotonic()


def settle_paused(srv: LocalServer, probe: Probe, run: Run) -> None:
    """After the pause, wait for the fault and the client's answer to it, still paused."""
    session, gate = probe.session, probe.gate
    if not wait_until(gate.reached.is_set, REACT_BOUND) and not session.wait(0):
        run.notes.append("playback never reached the pause point")
    if not wait_until(lambda: fired(srv), REACT_BOUND):
        run.notes.append("the fault never fired during the pause")
    states = [state for _, state in probe.statuses]
    if "paused" not in states:  # the gate pauses before the audio stops: before the fault
        run.notes.append(f"the session never paused (states {states})")

    def paused_answer() -> bool:
        if session.wait(0):
            return True
        meta = session.metadata
        return session.state == "paused" and (meta.reconnects >= 1 or probe.warnings >= 1)

    if not wait_until(paused_answer, REACT_BOUND):
        run.notes.append(f"no answer to the fault while paused (state {session.state!r})")


def run_widget(cell, srv: LocalServer, probe: Probe, audio: dict) -> Run:
    long = cell.phase in cell.fault.long_phases
    holder: dict[str, LiveTranscriber] = {}
    plan_gate(cell, probe, lambda: holder["w"].pause())
    source = ArraySource(audio["long" if long else "short"])
    w = LiveTranscriber(provider=cell.provider, url=srv.url, api_key=KEY, source=source,
                        stop_timeout=cell.fault.stop_timeout)  # fmt: skip
    holder["w"] = w
    try:
        run = Run(None, None, None, started_at=time.monotonic())
        w.start()
        drive(cell, srv, probe, run, lambda: w.stop(timeout=cell.fault.stop_timeout), w.resume)
        if not w.wait(CELL_BOUND):
            run.notes.append(f"the session did not end within {CELL_BOUND} s")
        w.stop(timeout=cell.fault.stop_timeout)
        session = w.session
        run.error, run.transcript, run.metadata = session.error, w.transcript, session.metadata
        run.widget = {"status": w.status, "status_text": w.status_text, "error": w.error}
        return run
    finally:
        w.close()


def run_cli(cell, srv: LocalServer, probe: Probe, audio: dict, capsys, monkeypatch) -> Run:
    long = cell.phase in cell.fault.long_phases
    monkeypatch.setenv(KEY_ENV[cell.provider], KEY)
    argv = ["transcribe", "--provider", cell.provider, "--url", srv.url,
            "--file", str(audio["long_wav" if long else "short_wav"]),
            "--stop-timeout", str(cell.fault.stop_timeout)]  # fmt: skip
    plan_gate(cell, probe, lambda: None)  # the CLI cannot pause: no paused cells
    run = Run(None, None, None, started_at=time.monotonic())

    # The CLI holds this thread until the session ends: drive from another one. Its Ctrl+C
    # calls ``session.request_stop()``, so that is the stop.
    def driver() -> None:
        if probe.created.wait(REACT_BOUND):
            drive(cell, srv, probe, run, lambda: probe.session.request_stop(), lambda: None)

    driver_thread = threading.Thread(target=driver, name="fault-matrix-driver")
    driver_thread.start()
    try:
        run.rc = cli_main(argv)
        returned = time.monotonic()
    finally:
        if probe.gate is not None:
            probe.gate.release()  # never leave the driver waiting on a session that ended
        driver_thread.join(CELL_BOUND)
    if run.stop_called_at is not None:
        run.stop_returned_at = returned  # Ctrl+C returns at once; the CLI when the stop is done
    run.out, run.err = capsys.readouterr()
    session = probe.session
    run.error, run.transcript, run.metadata = session.error, session.transcript, session.metadata
    return run


# ------------------------------------------------------------------------------ checks
def check_outcome(outcome, run: Run, srv: LocalServer, script_words) -> None:
    err, meta = run.error, run.metadata
    full = [norm(w.text) for w in run.transcript.words()] == [norm(t) for t, _ in script_words]
    kind = outcome.kind
    if kind in ("recover", "clean", "warn"):
        assert err is None, f"designed: no error; got {type(err).__name__}: {err}"
        assert full, f"designed: the whole script; got {run.transcript.text!r}"
    if kind == "clean":
        assert meta.terminal_message, "designed: the terminal message arrived"
    if kind == "warn":
        warnings = getattr(meta, "warnings", None)
        assert warnings is not None, "SessionMetadata has no 'warnings' count"
        assert warnings >= 1, f"designed: the ProviderWarning counted; warnings={warnings}"
    if kind == "error":
        got = f"{type(err).__name__}: {err}" if err else "no error"
        assert isinstance(err, outcome.error), f"designed: {outcome.error.__name__}; got {got}"
        if outcome.code is not None:
            assert err.code == outcome.code, f"designed code {outcome.code}; got {err.code!r}"
    if kind == "typed_or_recover":
        got = run.transcript.text
        assert (err is None and full) or isinstance(err, LivetxError), (
            f"designed: the whole script or a typed error; got no error and {got!r}"
        )
    if kind == "bounded":
        assert err is None or isinstance(err, LivetxError), f"untyped error {err!r}"
    if err is not None:
        assert str(err).strip(), "the error says nothing"
        if outcome.code is not None:
            assert str(outcome.code) in str(err), f"the error does not name {outcome.code}: {err}"
    if outcome.reconnects is not None and (kind != "typed_or_recover" or err is None):
        assert meta.reconnects == outcome.reconnects, (
            f"designed reconnects={outcome.reconnects}; got {meta.reconnects}"
        )
    if outcome.connections is not None:
        seen = len(srv.sessions)
        assert seen == outcome.connections, (
            f"designed: the server saw {outcome.connections} connection(s); it saw {seen}"
        )


def check_transcript(run: Run, probe: Probe, script_words) -> None:
    words = list(run.transcript.words())
    got = [(norm(w.text), w.start) for w in words]
    # On the script's clock: a prefix of the script's words, each at its scripted time.
    assert len(got) <= len(script_words), f"more words than scripted: {run.transcript.text!r}"
    for (text, start), (want, want_start) in zip(got, script_words, strict=False):
        assert text == norm(want), f"words out of order or repeated: {run.transcript.text!r}"
        assert abs(start - want_start) <= TIME_TOLERANCE_S, (
            f"{text!r} at {start:.3f} s, scripted at {want_start:.3f} s: times not continuous"
        )
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    kept = {(t, round(s, 2)) for t, s in got}
    for text, start in probe.received_words():
        assert (norm(text), round(start, 2)) in kept, (
            f"received {text!r} at {start:.2f} s, missing from the final transcript"
        )


def check_timing(cell, run: Run, probe: Probe) -> None:
    ended = probe.ended_at
    assert ended is not None and ended - run.started_at <= CELL_BOUND, "the session never ended"
    stop_timeout = cell.fault.stop_timeout
    if run.stop_called_at is not None:
        assert run.stop_returned_at is not None
        took = run.stop_returned_at - run.stop_called_at
        assert took <= stop_timeout + MARGIN, (
            f"stop(timeout={stop_timeout}) took {took:.2f} s (bound {stop_timeout + MARGIN:.2f})"
        )
    stopping = probe.first("stopping")
    if stopping is not None:
        took = ended - stopping
        assert took <= stop_timeout + MARGIN, (
            f"ended {took:.2f} s after it began stopping (stop timeout {stop_timeout} s)"
        )
    outcome = cell.outcome
    if outcome.kind == "error" and outcome.error is ConnectError:
        took = ended - run.started_at
        bound = cell.fault.connect_timeout + MARGIN
        assert took <= bound, f"ConnectError after {took:.2f} s (bound {bound:.2f} s)"


def check_widget(run: Run, error: LivetxError | None) -> None:
    shown = run.widget
    assert KEY not in repr(shown)
    if error is None:
        assert (shown["status"], shown["error"]) == ("stopped", ""), shown
        assert shown["status_text"] == "Stopped", shown
        return
    assert shown["status"] == "error" and shown["status_text"] == "Error", shown
    headline = next(h for cls, h in HEADLINES if isinstance(error, cls))
    assert shown["error"].startswith(f"{headline}: "), shown["error"]
    assert str(error).strip() in shown["error"], shown["error"]


def check_cli(run: Run, error: LivetxError | None, outcome, script: dict) -> None:
    assert KEY not in run.out + run.err
    want_rc = 0 if error is None else next((c for k, c in EXIT_CODES if isinstance(error, k)), 1)
    assert run.rc == want_rc, f"exit code {run.rc}, expected {want_rc} for {error!r}: {run.err}"
    if error is not None:
        assert f"error: {error}" in run.err, run.err
        if outcome.code is not None:
            assert str(outcome.code) in run.err
    lines = [line for line in run.out.splitlines() if line.strip()]
    expected = [f"[{_clock(turn['start'])}] {turn['text']}" for turn in script["turns"]]
    assert lines == expected[: len(lines)], f"printed {lines}, expected a prefix of {expected}"
    if outcome.kind in ("recover", "clean", "warn"):
        assert lines == expected, f"printed {lines}"
    if outcome.reconnects is not None and error is None:
        assert f"reconnects={outcome.reconnects}" in run.err, run.err


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def script_words(script: dict) -> list[tuple[str, float]]:
    """(text, start) of every scripted word, laid out as the script engine does for turns."""
    words = []
    for turn in script["turns"]:
        tokens = turn["text"].split()
        slot = (turn["end"] - turn["start"]) / len(tokens)
        words += [(tok, turn["start"] + k * slot) for k, tok in enumerate(tokens)]
    return words


# ------------------------------------------------------------------------------ a cell
def run_cell(cell, matrix, audio: dict, monkeypatch, capsys) -> Run:
    """Run ``cell`` and check it; returns the run (for a report)."""
    words = script_words(matrix.SCRIPT)
    threads_before, sockets_before = set(threading.enumerate()), socket_inodes()
    probe = Probe(cell.fault.connect_timeout)
    probe.install(monkeypatch)
    srv = LocalServer(engine="script", script=matrix.SCRIPT, rate_limit=False, api_key=KEY,
                      faults=cell.fault.server(cell.phase),
                      engine_options={"timecode": True})  # fmt: skip
    srv.start()
    try:
        if cell.frontend == "widget":
            run = run_widget(cell, srv, probe, audio)
        else:
            run = run_cli(cell, srv, probe, audio, capsys, monkeypatch)
    finally:
        srv.close()
    assert probe.sessions, "no session was started"
    checks: list[tuple[str, Callable[[], None]]] = [
        ("outcome", lambda: check_outcome(cell.outcome, run, srv, words)),
        ("timing", lambda: check_timing(cell, run, probe)),
        ("transcript", lambda: check_transcript(run, probe, words)),
    ]
    if cell.frontend == "widget":
        checks.append(("widget", lambda: check_widget(run, run.error)))
    else:
        checks.append(("cli", lambda: check_cli(run, run.error, cell.outcome, matrix.SCRIPT)))
    checks.append(("leaks", lambda: check_leaks(threads_before, sockets_before)))
    failures = [f"phase: {note}" for note in run.notes]  # the phase did not happen as planned
    for name, check in checks:  # every check runs: a cell reports all that is wrong at once
        try:
            check()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        error = f"{type(run.error).__name__}: {run.error}" if run.error else "none"
        raise AssertionError(
            f"[{cell.id}]\n  " + "\n  ".join(failures) + f"\n  session error: {error}"
        )
    return run


def check_leaks(threads_before: set, sockets_before: set) -> None:
    left = support.livetx_threads(besides=threads_before)
    assert not left, f"threads left: {left}"
    leaked = socket_inodes() - sockets_before
    assert not leaked, f"{len(leaked)} socket(s) left open"
