"""Check that a base install (``pip install livetx-widgets``, no extras) works.

What a base install promises: the package and every public name import, ``livetx --help`` and
each subcommand's ``--help`` print all their flags, the cloud providers run (over
websocket-client), and whatever needs an extra stops with exit code 2 and one sentence naming
the exact ``pip install "livetx-widgets[...]"``, never a traceback.

Run it with the python of a venv that holds only the base install (CI does, in ``.ci/run``)::

    python3 -m venv /tmp/livetx-base && /tmp/livetx-base/bin/pip install -q .
    /tmp/livetx-base/bin/python scripts/check_base_install.py

``--livetx "CMD"`` runs another command instead of the venv's ``livetx`` console script;
``tests/cli/test_base_install.py`` uses it to run these same checks with the extras' modules
hidden. Plain asserts-and-exit-code, no pytest: the base venv does not have it. Exits 1 and
lists every failed check.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from livetx_widgets.extras import EXTRAS, installed

TIMEOUT_S = 60  # per command; each takes well under a second
NO_KEYS = ("DEEPGRAM_API_KEY", "ASSEMBLYAI_API_KEY", "LIVETX_SERVE_API_KEY")


def missing_extra_cases(wav: str, mp3: str) -> list[tuple[list[str], str]]:
    """(argv, the extras its pip line must name) for every command that needs an extra.

    ``mp3`` is any file that is not WAV: without PyAV nothing can decode it, so the contents
    do not matter (a base install cannot make a real one)."""
    stream = "http://127.0.0.1:9/radio.mp3"  # never contacted: the extra is checked first
    return [
        (["serve"], "offline,server"),  # the default engine is whisper
        (["serve", "--engine", "script"], "server"),
        (["serve", "--engine", "whisper", "--model", "/some/model"], "offline,server"),
        (["demo"], "offline"),
        (["transcribe"], "mic,offline"),  # microphone and (no key set) the offline engine
        (["transcribe", "--file", wav], "offline"),
        (["transcribe", "--provider", "local", "--file", wav], "offline"),
        (["transcribe", "--provider", "deepgram", "--mic"], "mic"),
        (["transcribe", "--list-devices"], "mic"),
        (["transcribe", "--provider", "deepgram", "--file", mp3], "formats"),
        (["transcribe", "--provider", "deepgram", mp3], "formats"),
        (["transcribe", "--provider", "assemblyai", stream], "formats"),
        (["transcribe", mp3], "offline"),  # the offline extra brings PyAV along
    ]


class Checker:
    def __init__(self, livetx: list[str]):
        self.livetx = livetx
        self.failures: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if k not in NO_KEYS}

    def expect(self, ok: bool, what: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failures.append(what)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.livetx, *argv],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )

    # -- the checks ------------------------------------------------------------------------

    def no_extras_installed(self) -> bool:
        present = sorted({m for mods in EXTRAS.values() for m in mods if installed(m)})
        self.expect(not present, f"no extra's module imports here (found: {present or 'none'})")
        return not present

    def imports(self) -> None:
        import livetx_widgets
        from livetx_widgets import LiveTranscriber, TranscriptionSession, WavFile  # noqa: F401

        for name in livetx_widgets.__all__:
            try:
                getattr(livetx_widgets, name)
            except Exception as exc:
                self.expect(False, f"livetx_widgets.{name} imports ({exc!r})")
                return
        self.expect(True, f"import livetx_widgets and its {len(livetx_widgets.__all__)} names")
        try:
            LiveTranscriber(provider="deepgram")
        except Exception as exc:
            self.expect(False, f"LiveTranscriber() without pyaudio ({exc!r})")
        else:
            self.expect(True, "LiveTranscriber() builds without pyaudio")

    def library_errors(self, wav: str, mp3: str) -> None:
        from livetx_widgets import AudioDeviceError, ConfigurationError, Microphone, WavFile
        from livetx_widgets.session import TranscriptionSession

        session = TranscriptionSession("local", source=WavFile(wav)).start()
        for _ in session.events():
            pass
        error = session.error
        self.expect(
            isinstance(error, ConfigurationError)
            and 'pip install "livetx-widgets[offline]"' in str(error),
            f'TranscriptionSession("local") fails naming [offline] ({error!r})',
        )
        from livetx_widgets.extras import MissingExtraError

        for source in (mp3, "https://127.0.0.1:9/live.m3u8"):
            try:
                TranscriptionSession("deepgram", source=source, api_key="unused")
            except MissingExtraError as exc:
                self.expect(
                    'pip install "livetx-widgets[formats]"' in str(exc),
                    f"source={source!r} names [formats] ({exc})",
                )
            except Exception as exc:
                self.expect(False, f"source={source!r} raises MissingExtraError ({exc!r})")
            else:
                self.expect(False, f"source={source!r} without PyAV raises")
        try:
            Microphone().start()
        except ConfigurationError as exc:
            self.expect(
                isinstance(exc, AudioDeviceError)
                and 'pip install "livetx-widgets[mic]"' in str(exc),
                f"Microphone().start() names [mic] ({exc!r})",
            )
        except Exception as exc:
            self.expect(False, f"Microphone().start() raises a ConfigurationError ({exc!r})")
        else:
            self.expect(False, "Microphone().start() raises without pyaudio")

    def helps(self) -> None:
        from livetx_widgets.cli import SUBCOMMANDS, build_parser

        try:  # the flags each help must show, from the parser itself
            parser = build_parser()
            parsers = {(): parser, **{(n,): _subparser(parser, n) for n in SUBCOMMANDS}}
            expected = {
                argv: [s for a in p._actions for s in a.option_strings if s.startswith("--")]
                for argv, p in parsers.items()
            }
        except Exception as exc:
            self.expect(False, f"livetx's parser builds ({exc!r})")
            expected = {(): [], **{(name,): [] for name in SUBCOMMANDS}}
        for argv, flags in expected.items():
            done = self.run([*argv, "--help"])
            absent = [f for f in flags if f not in done.stdout]
            shown = " ".join(["livetx", *argv, "--help"])
            self.expect(
                done.returncode == 0 and not absent and "Traceback" not in done.stderr,
                f"{shown} exits 0 with its {len(flags)} flags (exit {done.returncode}, "
                f"flags missing: {absent or 'none'}){_tail(done.stderr)}",
            )

    def missing_extras(self, wav: str, mp3: str) -> None:
        for argv, extras in missing_extra_cases(wav, mp3):
            done = self.run(argv)
            pip = f'pip install "livetx-widgets[{extras}]"'
            lines = done.stderr.strip().splitlines()
            self.expect(
                done.returncode == 2 and len(lines) == 1 and pip in lines[0],
                f"livetx {' '.join(argv)} exits 2 with one line naming {pip} "
                f"(exit {done.returncode}){_tail(done.stderr)}",
            )

    def cloud_providers(self, wav: str) -> None:
        """Deepgram and AssemblyAI need no extra: they get as far as the network. A bound
        socket that does not listen refuses the connection: exit 4, not a missing module."""
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            url = f"ws://127.0.0.1:{closed.getsockname()[1]}"
            for provider in ("deepgram", "assemblyai"):
                argv = ["transcribe", "--provider", provider, "--url", url, "--file", wav]
                done = self.run(argv)
                self.expect(
                    done.returncode == 4
                    and "refused" in done.stderr
                    and "pip install" not in done.stderr
                    and "Traceback" not in done.stderr,
                    f"livetx transcribe --provider {provider} reaches the network with no extra "
                    f"(exit {done.returncode}, want 4){_tail(done.stderr)}",
                )


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise LookupError(name)


def _tail(stderr: str) -> str:
    last = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    return f"; stderr: {last[0]}" if last else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(sys.executable).with_name("livetx")
    parser.add_argument(
        "--livetx", default=str(default), help=f"the command to check (default {default})"
    )
    args = parser.parse_args(argv)
    checker = Checker(shlex.split(args.livetx))
    if not checker.no_extras_installed():
        print("not a base install: every check below would prove nothing", file=sys.stderr)
        return 1
    from livetx_widgets.data import demo_wav

    wav = str(demo_wav())
    scratch = tempfile.mkdtemp(prefix="livetx-base-")
    mp3 = os.path.join(scratch, "podcast.mp3")
    with open(mp3, "wb") as f:
        f.write(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(1000))
    checks = [
        checker.imports,
        lambda: checker.library_errors(wav, mp3),
        checker.helps,
        lambda: checker.missing_extras(wav, mp3),
        lambda: checker.cloud_providers(wav),
    ]
    try:
        for check in checks:
            try:
                check()
            except Exception as exc:  # one broken check must not hide the others' results
                checker.expect(False, f"a check raised {exc!r}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if checker.failures:
        print(f"{len(checker.failures)} base-install check(s) failed", file=sys.stderr)
        return 1
    print("base install: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
