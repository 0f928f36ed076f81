"""The widget's menus and its argument checks: providers, models, sources, misspelled names.

Kept apart from the widget so that the choices the front end offers and the checks the
constructor runs come from one table.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping

from ..credentials import KEY_ENV
from ..errors import ConfigurationError
from ..providers.assemblyai import SPEECH_MODELS
from ..session.endpoints import PROVIDERS

#: provider -> (label shown, models offered; the first is the default).
PROVIDER_MENU: dict[str, tuple[str, tuple[str, ...]]] = {
    "auto": ("Auto", ()),
    "deepgram": ("Deepgram", ("nova-3", "nova-3-medical", "nova-2", "nova-2-meeting", "enhanced")),
    "assemblyai": ("AssemblyAI", tuple(SPEECH_MODELS)),
    "local": ("Offline (livetx serve)", ()),
}
assert set(PROVIDER_MENU) == set(PROVIDERS), "the menu must offer every provider"

#: The connection option that carries the model for each provider.
MODEL_OPTION = {"deepgram": "model", "assemblyai": "speech_model"}

#: What ``source=`` accepts as a word; anything else is an AudioSource or a WAV path.
SOURCE_WORDS = ("auto", "kernel", "browser", "file")


def models_for(provider: str) -> list[str]:
    return list(PROVIDER_MENU.get(provider, ("", ()))[1])


def check_provider(provider: str) -> str:
    name = (provider or "").lower()
    if name not in PROVIDER_MENU:
        raise ConfigurationError(
            f"Unknown provider {provider!r}{suggest(provider, PROVIDER_MENU)}. "
            f"Use one of: {', '.join(PROVIDER_MENU)}."
        )
    return name


def env_key(provider: str, env: Mapping[str, str] | None = None) -> str | None:
    """The key the environment holds for ``provider`` (``None`` for local/auto or unset)."""
    env = os.environ if env is None else env
    var = KEY_ENV.get(provider)
    return (env.get(var) or None) if var else None


def suggest(word: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""``."""
    close = difflib.get_close_matches(str(word), list(valid), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reject_unknown_kwargs(cls_name: str, unknown: Mapping[str, object], valid: Iterable[str]):
    """Raise ``TypeError`` naming the closest valid keyword for the first unknown one."""
    if not unknown:
        return
    valid = list(valid)
    name = next(iter(unknown))
    hint = suggest(name, valid)
    raise TypeError(
        f"{cls_name}() got an unexpected keyword argument {name!r}{hint}. "
        f"Valid keywords: {', '.join(valid)}."
    )
