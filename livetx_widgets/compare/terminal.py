"""``livetx compare``: one WAV file, several providers at once, a table of how they did.

Built from the pieces of ``livetx transcribe`` (``terminal.py``): the same configuration
flags (``config.add_arguments``), ``--option``, exit codes and Ctrl+C handling. The main
thread owns all printing: the sessions' listeners only put finals in a queue, which the main
thread drains (to stderr, so stdout holds only the table or the JSON).

Exit code: 0 when every provider ran to the end; otherwise the code ``livetx transcribe``
gives for the first failing provider's error (in ``--providers`` order): 2 bad arguments,
3 authentication, 4 connection, 5 audio, 1 other.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
from pathlib import Path
from typing import Any, TextIO

from .. import config
from ..errors import ConfigurationError, LivetxError
from ..extras import require
from ..terminal import EXIT_OK, _clock, _graceful_interrupt, exit_code_for, parse_options

#: How often the main thread checks whether the comparison ended while no final arrives.
POLL_S = 0.2


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="transcribe one WAV file with several providers at once and compare them",
        description=(
            "Stream one WAV file to every provider in --providers at the same time (each "
            "hears the same audio on the same clock) and print one row per provider: word "
            "error rate (with --reference), latency of the first partial and of finals, "
            "revisions, finals, words, reconnects, errors. Exit codes as livetx transcribe: "
            "0 ok, 2 bad arguments, 3 authentication, 4 connection, 5 audio, 1 other."
        ),
    )
    p.add_argument("--file", metavar="X.wav", required=True, help="the WAV file to play")
    p.add_argument(
        "--providers",
        required=True,
        metavar="A,B,...",
        help="comma-separated: deepgram, assemblyai, local, auto (repeats allowed)",
    )
    p.add_argument("--reference", metavar="REF.txt", help="what was said, for the WER")
    p.add_argument(
        "--fast",
        action="store_true",
        help="play the file as fast as each provider accepts (default: real time; "
        "latencies then measure processing, not speech)",
    )
    p.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="provider option for every provider, repeatable",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: summary rows (and aligned rows), transcripts",
    )
    p.add_argument("--aligned", action="store_true", help="also print the finals lined up")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print finals as they come")
    config.add_arguments(p)  # --model --url --keyterm --record ... (one table)
    p.set_defaults(func=run)  # fmt: skip


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from .session import CompareSession

    names = [n.strip() for n in args.providers.split(",") if n.strip()]
    try:
        _require_extras(args, names)
        reference = None
        if args.reference:
            try:
                reference = Path(args.reference).read_text(encoding="utf-8")
            except OSError as exc:
                why = f"Cannot read --reference {args.reference}: {exc}"
                raise ConfigurationError(why) from exc
        shared = config.from_arguments(args)
        record = shared.pop("record_to", None)
        providers = []
        for name, label in zip(names, _labels(names), strict=True):
            own: dict[str, Any] = {"label": label}
            if record:
                path = Path(record)
                own["record_to"] = str(path.with_name(f"{path.stem}-{label}{path.suffix}"))
            providers.append((name, own))
        compare = CompareSession(
            providers, source=args.file, realtime=not args.fast, reference=reference,
            options=parse_options(args.option), keep_audio=False,  # nothing plays it back
            **shared,
        )  # fmt: skip
    except LivetxError as exc:
        err.write(f"error: {exc}\n")
        return exit_code_for(exc)

    finals: queue.SimpleQueue = queue.SimpleQueue()
    if not (args.quiet or args.json):
        compare.on("final", lambda label, segment: finals.put((label, segment)))
    try:
        compare.start()
    except LivetxError as exc:
        err.write(f"error: {exc}\n")
        return exit_code_for(exc)
    with _graceful_interrupt(compare.request_stop):
        while compare.running:  # bounded by the file's end (or Ctrl+C, or the stop timeout)
            _print_finals(finals, err, wait=POLL_S)
    compare.stop()
    _print_finals(finals, err, wait=0)

    summary = compare.summary()
    aligned = compare.aligned() if args.aligned else None
    if args.json:
        record_out: dict[str, Any] = {
            "summary": json.loads(summary.to_json(orient="records")),
            "transcripts": {label: t.text for label, t in compare.transcripts.items()},
            "speech": compare.speech_regions(),
        }
        if aligned is not None:
            record_out["aligned"] = json.loads(aligned.to_json(orient="records"))
        out.write(json.dumps(record_out) + "\n")
    else:
        out.write(summary.drop(columns=["name"]).to_string(index=False) + "\n")
        if aligned is not None:
            out.write("\n" + aligned.to_string(index=False) + "\n")
    out.flush()
    errors = [e for e in compare.errors.values() if e is not None]
    for label, error in compare.errors.items():
        if error is not None:
            err.write(f"error: {label}: {error}\n")
    return exit_code_for(errors[0]) if errors else EXIT_OK


def _labels(names: list[str]) -> list[str]:
    """Each name as its label; a repeated name gets -2, -3 (as CompareSession does)."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return labels


def _print_finals(finals: queue.SimpleQueue, err: TextIO, *, wait: float) -> None:
    try:
        item = finals.get(timeout=wait) if wait else finals.get_nowait()
    except queue.Empty:
        return
    for _ in range(10_000):  # bounded: what is queued now
        label, segment = item
        if segment.text:
            err.write(f"[{label}] [{_clock(segment.start)}] {segment.text}\n")
        try:
            item = finals.get_nowait()
        except queue.Empty:
            break
    err.flush()


def _require_extras(args: argparse.Namespace, names: list[str]) -> None:
    """Every extra the run needs, named at once (as ``livetx transcribe`` does)."""
    from ..session import endpoints

    needs: list[str] = []
    skip: tuple[str, ...] = ()
    if args.reference:
        needs.append("compare")
    if args.url is None:
        for name in names:
            try:
                endpoint = endpoints.resolve(name)
            except LivetxError:
                continue  # e.g. no key: that provider's row says so
            if endpoint.provider == "local":
                extras, skip = endpoints.local_needs(endpoint)
                needs.extend(e for e in extras if e not in needs)
    if needs:
        require("livetx compare", *needs, skip=skip)
