"""One configuration for ``TranscriptionSession``, ``LiveTranscriber`` and the CLI.

Why one table: the widget, the session and ``livetx transcribe`` used to take different
arguments with different checks, and each list was kept by hand. Here every parameter is
written down once, with its default, its check and its command-line flag; the classes build
their signatures from it (``signature``), validate with it (``resolve``), and the CLI adds its
flags from it (``add_arguments`` / ``from_arguments``). A misspelled keyword gets a
``TypeError`` naming the closest valid one, everywhere.

A leaf module: it checks values, it builds nothing (sources are resolved by
``audio.resolve_source``, endpoints by ``session.endpoints``).
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError

PROVIDERS = ("auto", "deepgram", "assemblyai", "local")
SOURCE_WORDS = ("auto", "kernel", "browser", "file")
#: The connection option that carries ``model=`` for each provider (``local``: the engine's).
MODEL_OPTION = {"deepgram": "model", "assemblyai": "speech_model"}


def check_provider(value: Any) -> str:
    name = str(value or "").lower()
    if name not in PROVIDERS:
        raise ConfigurationError(
            f"Unknown provider {value!r}{suggest(str(value), PROVIDERS)}. "
            f"Use one of: {', '.join(PROVIDERS)}."
        )
    return name


def _optional_str(name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str | os.PathLike):
            raise ConfigurationError(f"{name}= must be a string, not {type(value).__name__}.")
        return os.fspath(value)

    return check


def _mapping(name: str) -> Callable[[Any], dict[str, Any]]:
    def check(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"{name}= must be a dict of option names to values, not {type(value).__name__}."
            )
        return dict(value)

    return check


def _seconds(name: str, *, minimum: float = 0.0, allow_zero: bool = True):
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"{name}= must be a number of seconds, not {value!r}.")
        value = float(value)
        if value < minimum or (not allow_zero and value == 0) or value != value:
            bound = f"> {minimum:g}" if not allow_zero else f">= {minimum:g}"
            raise ConfigurationError(f"{name}= must be {bound} seconds, not {value!r}.")
        return value

    return check


def _count(name: str):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"{name}= must be a whole number >= 0, not {value!r}.")
        return value

    return check


def _bool(name: str):
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name}= must be True or False, not {value!r}.")
        return value

    return check


def _optional_bool(name: str):
    def check(value: Any) -> bool | None:
        return None if value is None else _bool(name)(value)

    return check


def _listener(name: str):
    def check(value: Any) -> Callable[..., Any] | None:
        if value is not None and not callable(value):
            raise ConfigurationError(f"{name}= must be callable, not {type(value).__name__}.")
        return value

    return check


def _device(value: Any) -> int | str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        return int(value) if value.strip().isdigit() else value
    raise ConfigurationError(f"device= must be an index or part of a name, not {value!r}.")


def _keyterms(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Iterable) or not all(isinstance(t, str) for t in value):
        raise ConfigurationError("keyterms= must be a list of words or phrases.")
    return tuple(t.strip() for t in value if t.strip())


@dataclass(frozen=True)
class Param:
    """One configuration parameter: default, check, and how the CLI spells it (if at all)."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    help: str
    flag: str | None = None  # the CLI flag; None: not on the command line
    cli_type: Callable[[str], Any] | None = None


PARAMS: tuple[Param, ...] = (
    Param("provider", "auto", check_provider,
          "deepgram, assemblyai, local (the offline engine) or auto (a set key, else local)"),
    Param("model", None, _optional_str("model"),
          "the provider's model (Deepgram model, AssemblyAI speech_model, offline: whisper)",
          "--model", str),
    Param("source", "auto", lambda v: v,
          "auto, kernel, browser, file (with file=), a path, a numpy array or an AudioSource"),
    Param("device", None, _device, "kernel microphone: an index or part of a name",
          "--device", str),
    Param("file", None, _optional_str("file"), "the audio file for source='file'"),
    Param("realtime", True, _bool("realtime"),
          "play a file at the pace of speech (False: as fast as the provider accepts)"),
    Param("api_key", None, _optional_str("api_key"),
          "the provider's key (default: DEEPGRAM_API_KEY / ASSEMBLYAI_API_KEY)"),
    Param("url", None, _optional_str("url"),
          "another endpoint, e.g. ws://127.0.0.1:8765 (a livetx serve)", "--url", str),
    Param("options", None, _mapping("options"), "provider connection options"),
    Param("keyterms", (), _keyterms,
          "words to recognise better (Deepgram keyterm, AssemblyAI keyterms_prompt); "
          "can be changed while live", "--keyterm", str),
    Param("local_engine", "whisper", _optional_str("local_engine"),
          "the offline engine: whisper, or script (deterministic)"),
    Param("local_options", None, _mapping("local_options"), "options of the offline engine"),
    Param("record_to", None, _optional_str("record_to"),
          "a WAV file that receives exactly the audio sent", "--record", str),
    Param("keep_audio", True, _bool("keep_audio"),
          "keep the audio sent in a temporary file, for segment_audio() and play()"),
    Param("keep_audio_max_s", 3600.0, _seconds("keep_audio_max_s", allow_zero=False),
          "the newest audio kept for playback (older audio is dropped; 1 h is 115 MB)"),
    Param("keepalive_s", 4.0, _seconds("keepalive_s", allow_zero=False),
          "send KeepAlive when nothing went out for this long"),
    Param("max_reconnects", 5, _count("max_reconnects"),
          "reconnection attempts in a row without progress (0: never reconnect)",
          "--max-reconnects", int),
    Param("replay_buffer_s", 120.0, _seconds("replay_buffer_s"),
          "unacknowledged audio kept for replay after a drop"),
    Param("connect_timeout", 10.0, _seconds("connect_timeout", allow_zero=False),
          "seconds for each connection attempt (DNS, TCP, TLS, upgrade)",
          "--connect-timeout", float),
    Param("stop_timeout", 10.0, _seconds("stop_timeout"),
          "seconds a stop may take, waiting for the provider's last results",
          "--stop-timeout", float),
    Param("pace", None, _optional_bool("pace"),
          "send audio no faster than real time (None: where the protocol requires it)"),
    Param("on_partial", None, _listener("on_partial"), "called with each PartialTranscript"),
    Param("on_final", None, _listener("on_final"), "called with each final Segment"),
    Param("on_event", None, _listener("on_event"), "called with every event"),
    Param("on_error", None, _listener("on_error"), "called with the error that ends a session"),
    Param("on_status", None, _listener("on_status"), "called with each new state, in order"),
)  # fmt: skip
BY_NAME = {p.name: p for p in PARAMS}
NAMES = tuple(BY_NAME)
LISTENERS = ("on_partial", "on_final", "on_event", "on_error", "on_status")


@dataclass(frozen=True)
class Config:
    """Validated values of every parameter (see ``PARAMS``). The key is kept out of reprs."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        shown = {
            k: ("***" if k == "api_key" and v else v)
            for k, v in self.values.items()
            if not _is_default(v, BY_NAME[k].default)
        }
        return f"Config({shown})"

    def listeners(self) -> dict[str, Callable[..., Any]]:
        return {k: self.values[k] for k in LISTENERS if self.values[k] is not None}

    def provider_options(self, provider: str) -> dict[str, Any]:
        """``options`` plus what ``model=`` and ``keyterms=`` mean for ``provider``."""
        options = dict(self.options)
        name = MODEL_OPTION.get(provider)
        if name and self.model and name not in options:
            options[name] = self.model
        if self.keyterms:
            key = {"deepgram": "keyterm", "local": "keyterm", "assemblyai": "keyterms_prompt"}
            options.setdefault(key.get(provider, "keyterm"), list(self.keyterms))
        return options

    def engine_options(self) -> dict[str, Any]:
        """``local_options`` plus the offline engine's model from ``model=``."""
        options = dict(self.local_options)
        if self.model and self.provider == "local":
            options.setdefault("model", self.model)
        return options


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    try:
        return bool(value == default)
    except (ValueError, TypeError):  # e.g. a numpy array
        return False


def suggest(word: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""``."""
    close = difflib.get_close_matches(str(word), list(valid), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reject_unknown(owner: str, names: Iterable[str], valid: Iterable[str]) -> None:
    """``TypeError`` naming the closest valid keyword for the first unknown one."""
    valid = list(valid)
    for name in names:
        if name not in valid:
            raise TypeError(
                f"{owner}() got an unexpected keyword argument {name!r}{suggest(name, valid)}. "
                f"Valid keywords: {', '.join(valid)}."
            )


def resolve(owner: str, given: Mapping[str, Any], *, extra: Iterable[str] = ()) -> Config:
    """Validate ``given`` (any subset of ``NAMES``) and fill in the defaults.

    ``extra`` names keywords the owner takes besides the shared ones (they are not checked
    here, only allowed).
    """
    extra = tuple(extra)
    reject_unknown(owner, given, (*NAMES, *extra))
    values = {}
    for param in PARAMS:
        raw = given.get(param.name, param.default)
        values[param.name] = param.check(raw)
    if isinstance(values["source"], str) and values["source"] == "file" and not values["file"]:
        raise ConfigurationError('source="file" needs file="path/to/audio" as well.')
    return Config(values)


def signature(*, extra: Iterable[inspect.Parameter] = ()) -> inspect.Signature:
    """The keyword-only signature the classes show (``help()``, IDEs): provider may be
    positional, everything else keyword-only, with the table's defaults."""
    params = [
        inspect.Parameter(
            p.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD
            if p.name == "provider"
            else inspect.Parameter.KEYWORD_ONLY,
            default=p.default,
        )
        for p in PARAMS
    ]
    return inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
                              *params, *extra])  # fmt: skip


def add_arguments(parser: Any) -> None:
    """Add the CLI flags of every parameter that has one (``Param.flag``)."""
    for p in PARAMS:
        if p.flag is None:
            continue
        if p.name == "keyterms":
            parser.add_argument(p.flag, dest="keyterms", action="append", default=[],
                                metavar="TERM", help=f"{p.help} (repeatable)")  # fmt: skip
            continue
        default = p.default
        shown = f" (default {default})" if default is not None else ""
        parser.add_argument(p.flag, dest=p.name, type=p.cli_type, default=default,
                            help=p.help + shown)  # fmt: skip


def from_arguments(args: Any) -> dict[str, Any]:
    """The configuration keywords given by the CLI flags that ``add_arguments`` added."""
    return {p.name: getattr(args, p.name) for p in PARAMS if p.flag is not None}
