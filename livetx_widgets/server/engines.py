"""``make_engine``: the engine names ``livetx serve`` and ``LocalServer`` understand.

The whisper engine pulls in faster-whisper and a model, so it is imported only when asked for;
the script engine is pure Python and always available.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .engine import Engine

ENGINE_NAMES = ("whisper", "script")


def make_engine(
    name: str = "script",
    *,
    script: Any = None,
    model: str | None = None,
    endpoint_s: float | None = None,
    cpu_threads: int = 2,
    compute_type: str = "int8",
    timecode: bool = False,
) -> Engine:
    """Build the engine called ``name``.

    ``script`` (a dict, a JSON/YAML path or text), ``endpoint_s`` and ``timecode`` (read the
    audio's position from ``timecode_pcm`` audio, for reconnect tests) configure the script
    engine; ``model``, ``cpu_threads`` and ``compute_type`` configure whisper.
    """
    if name == "script":
        if model is not None:
            raise ConfigurationError("model= applies to engine='whisper', not 'script'.")
        from .script_engine import DEFAULT_ENDPOINT_S, ScriptEngine

        return ScriptEngine(
            script,
            endpoint_s=DEFAULT_ENDPOINT_S if endpoint_s is None else endpoint_s,
            timecode=timecode,
        )
    if name == "whisper":
        if script is not None:
            raise ConfigurationError("script= applies to engine='script', not 'whisper'.")
        if timecode:
            raise ConfigurationError("timecode= applies to engine='script', not 'whisper'.")
        try:
            from .whisper_engine import WhisperEngine
        except ImportError as exc:
            raise ConfigurationError(
                f"the whisper engine is not available ({exc}). Install it with "
                "pip install 'livetx-widgets[offline]', or use engine='script'."
            ) from exc
        return WhisperEngine(model, cpu_threads=cpu_threads, compute_type=compute_type)
    raise ConfigurationError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}.")
