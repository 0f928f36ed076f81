"""``livetx transcribe``: the terminal successor of the reference scripts.

The main thread owns all printing: it consumes ``session.events()`` while the session's own
threads do the streaming, so nothing is printed from a worker thread. Ctrl+C asks the
session to stop gracefully; the loop keeps printing until the session's last event, so
everything the provider sent is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from . import config
from .credentials import KEY_ENV
from .errors import (
    AudioDeviceError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    LivetxError,
)
from .events import FinalTranscript, PartialTranscript
from .extras import require

EXIT_OK = 0
EXIT_ERROR = 1  # any other provider or internal error
EXIT_USAGE = 2  # bad arguments or options (argparse uses 2 too)
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_AUDIO = 5

SUMMARY_KEYS = (
    "provider", "model", "session_id", "audio_duration_s", "session_duration_s", "reconnects",
    "dropped_audio_s", "finals", "terminal_message", "latency",
)  # fmt: skip


def exit_code_for(error: BaseException | None) -> int:
    if error is None:
        return EXIT_OK
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    if isinstance(error, AuthenticationError):
        return EXIT_AUTH
    if isinstance(error, ConnectError | ConnectionLostError):
        return EXIT_CONNECTION
    if isinstance(error, AudioDeviceError):
        return EXIT_AUDIO
    return EXIT_ERROR


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe a microphone, an audio file or a network stream live, in the terminal",
        description=(
            "Stream audio to Deepgram, AssemblyAI or the offline engine and print partials and "
            f"finals as they arrive. Keys come from {' / '.join(KEY_ENV.values())}. "
            "Exit codes: 0 ok, 2 bad arguments, 3 authentication, 4 connection, "
            "5 audio device, 1 other errors."
        ),
    )
    p.add_argument(
        "--provider",
        default="auto",
        choices=["deepgram", "assemblyai", "local", "auto"],
        help="auto: the provider whose key is set, else the offline engine (default)",
    )
    p.add_argument("input", nargs="?", metavar="FILE_OR_URL",
                   help="an audio file of any format (WAV; mp3, m4a, ogg, opus, flac, webm, a "
                        "video's sound with the formats extra) or an http(s):// stream "
                        "(Icecast, HLS .m3u8)")  # fmt: skip
    src = p.add_mutually_exclusive_group()
    src.add_argument("--mic", action="store_true", help="the kernel's microphone (default)")
    src.add_argument("--file", metavar="FILE_OR_URL", help="the same as the positional input")
    src.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace a --file at real time (default: as fast as the provider accepts)",
    )
    p.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="provider option, repeatable: -o diarize=true -o keyterm=foo -o keyterm=bar",
    )
    p.add_argument("--json", action="store_true", help="print one JSON event per line")
    p.add_argument("--out", metavar="FILE", help="save the transcript: .json .srt .vtt .csv .txt")
    config.add_arguments(p)  # --model --device --url --keyterm --record ... (one table)
    p.set_defaults(func=run)


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="transcribe the bundled recording live with the offline engine (no key needed)",
        description=(
            "Plays the 4 s speech recording shipped with the package at real time through the "
            "offline engine, printing partials and finals as they arrive: the quickest check "
            "that everything works."
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON event per line")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .data import demo_wav

    defaults = {p.name: p.default for p in config.PARAMS if p.flag is not None}
    demo = argparse.Namespace(**{
        **defaults, "keyterms": [], "provider": "local", "mic": False,
        "file": str(demo_wav()), "input": None, "list_devices": False, "realtime": True,
        "option": [],
        "json": args.json, "out": None,
    })  # fmt: skip
    return run(demo)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings to typed options; a repeated key becomes a list."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--option expects KEY=VALUE, got {pair!r}")
        value = _parse_value(raw)
        if key in options:
            prev = options[key]
            options[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            options[key] = value
    return options


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw


class Printer:
    """Renders events: a rewritten partial line on a TTY, plain final lines otherwise."""

    def __init__(self, out: TextIO, *, as_json: bool, tty: bool):
        self.out = out
        self.as_json = as_json
        self.tty = tty
        self._partial_shown = False

    def event(self, event: Any) -> None:
        if self.as_json:
            self._json(event)
        elif isinstance(event, FinalTranscript):
            if event.text:
                self._clear_partial()
                start = event.words[0].start if event.words else event.start
                self.out.write(f"[{_clock(start)}] {event.text}\n")
        elif isinstance(event, PartialTranscript) and self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)
            self.out.write("\r\033[K" + event.text[-width:])
            self._partial_shown = True
        self.out.flush()

    def _clear_partial(self) -> None:
        if self._partial_shown:
            self.out.write("\r\033[K")
            self._partial_shown = False

    def _json(self, event: Any) -> None:
        record = {"type": type(event).__name__}
        for name in getattr(event, "__dataclass_fields__", {}):
            if name == "raw":
                continue
            value = getattr(event, name)
            if name == "words":
                value = [w._asdict() for w in value]
            record[name] = value
        self.out.write(json.dumps(record, default=str) + "\n")

    def finish(self, metadata: dict[str, Any], error: BaseException | None, err: TextIO) -> None:
        self._clear_partial()
        if self.as_json:
            self.out.write(json.dumps({"type": "Metadata", **metadata}, default=str) + "\n")
            if error is not None:
                record = {"type": "Error", "error": type(error).__name__, "message": str(error)}
                self.out.write(json.dumps(record) + "\n")
        else:
            summary = ", ".join(f"{k}={_short(metadata.get(k))}" for k in SUMMARY_KEYS)
            err.write(f"-- session: {summary}\n")
            if error is not None:
                err.write(f"error: {error}\n")
        self.out.flush()
        err.flush()


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from . import audio
    from .session import TranscriptionSession

    try:
        args.file = _input(args)
        require_extras(args)
        if args.list_devices:
            for dev in audio.list_devices():
                out.write(f"{dev}\n")
            return EXIT_OK
        session = TranscriptionSession(
            args.provider,
            source=args.file or "kernel",
            realtime=args.realtime,
            options=parse_options(args.option),
            keep_audio=False,  # a terminal plays nothing back (--record keeps a copy)
            **config.from_arguments(args),
        )
    except LivetxError as exc:
        err.write(f"error: {exc}\n")
        return exit_code_for(exc)

    printer = Printer(out, as_json=args.json, tty=out.isatty() and not args.json)
    events = session.events()
    try:
        session.start()
    except LivetxError as exc:
        err.write(f"error: {exc}\n")
        return exit_code_for(exc)
    with _graceful_interrupt(session.request_stop):
        try:
            for event in events:
                printer.event(event)
        except BrokenPipeError:  # e.g. piped into `head`: stop quietly, nobody is reading
            session.stop()
            _silence_stdout()
            return EXIT_OK
    session.stop()
    metadata = session.metadata.to_dict()
    printer.finish(metadata, session.error, err)
    if args.out:
        try:
            session.transcript.save(args.out)
        except LivetxError as exc:
            err.write(f"error: {exc}\n")
            return exit_code_for(exc)
    return exit_code_for(session.error)


def _input(args: argparse.Namespace) -> str | None:
    """The file or URL to transcribe: the positional input or ``--file`` (not both)."""
    given = getattr(args, "input", None)
    if given and (args.file or args.mic or args.list_devices):
        raise ConfigurationError(
            f"give the input once: {given!r} or --file/--mic/--list-devices, not both"
        )
    return given or args.file


def require_extras(args: argparse.Namespace) -> None:
    """Raise ``MissingExtraError`` for everything this run needs that is not installed.

    Checked before anything starts so that one message names every extra at once (the
    microphone and the offline engine are the defaults, so a bare ``livetx transcribe`` on a
    base install needs both). The library checks the same needs where they arise.
    """
    from .session import endpoints

    needs: list[str] = []
    skip: tuple[str, ...] = ()
    what: list[str] = []
    if args.list_devices or not args.file:
        needs.append("mic")
        what.append("listing input devices" if args.list_devices else "the microphone")
    decoder = bool(args.file) and not args.list_devices and _needs_decoder(args.file)
    if decoder:
        what.append(f"reading {_shown(args.file)}")
    if not args.list_devices and args.url is None:  # with --url, nothing runs in-process
        try:
            endpoint = endpoints.resolve(args.provider)
        except LivetxError:  # e.g. no key: the session says so, after this check
            endpoint = None
        if endpoint is not None and endpoint.provider == "local":
            extras, skip = endpoints.local_needs(endpoint)
            needs.extend(extras)
            why = "" if args.provider == "local" else " (chosen: no provider key is set)"
            what.append(f"the offline engine{why}")
    if decoder:  # last: the offline extra brings PyAV too, so then it is all that is asked
        needs.append("formats")
    if needs:
        require(" with ".join(what), *needs, skip=skip)


def _shown(path: str) -> str:
    """A file's name, or a URL without its credentials and query values."""
    from .audio.fetch import redact
    from .audio.network import is_url

    return redact(path) if is_url(path) else os.path.basename(path) or path


def _needs_decoder(path: str) -> bool:
    """A URL, or a file that is not WAV, is decoded by PyAV (the formats extra)."""
    from .audio.decode import is_wav
    from .audio.network import is_url

    return is_url(path) or (os.path.isfile(path) and not is_wav(path))


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class _graceful_interrupt:
    """Turn Ctrl+C (and SIGTERM) into ``on_interrupt()`` while the block runs.

    The handler only asks the session to begin its graceful stop and returns, so the main
    thread goes on printing what the provider still sends. A second Ctrl+C is not swallowed.
    """

    def __init__(self, on_interrupt: Callable[[], None]):
        self.on_interrupt = on_interrupt
        self._previous: dict[int, Any] = {}
        self._hits = 0

    def _handler(self, signum, frame) -> None:
        self._hits += 1
        if self._hits > 1:
            raise KeyboardInterrupt
        self.on_interrupt()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
