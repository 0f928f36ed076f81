"""The widget's menus: providers and their models, and the key each provider reads.

The checks of every argument (providers included) are ``livetx_widgets.config``'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..config import PROVIDERS
from ..credentials import KEY_ENV
from ..providers.assemblyai import SPEECH_MODELS

#: provider -> (label shown, models offered; the first is the default).
PROVIDER_MENU: dict[str, tuple[str, tuple[str, ...]]] = {
    "auto": ("Auto", ()),
    "deepgram": ("Deepgram", ("nova-3", "nova-3-medical", "nova-2", "nova-2-meeting", "enhanced")),
    "assemblyai": ("AssemblyAI", tuple(SPEECH_MODELS)),
    "local": ("Offline (livetx serve)", ()),
}
assert set(PROVIDER_MENU) == set(PROVIDERS), "the menu must offer every provider"

def models_for(provider: str) -> list[str]:
    return list(PROVIDER_MENU.get(provider, ("", ()))[1])


def env_key(provider: str, env: Mapping[str, str] | None = None) -> str | None:
    """The key the environment holds for ``provider`` (``None`` for local/auto or unset)."""
    env = os.environ if env is None else env
    var = KEY_ENV.get(provider)
    return (env.get(var) or None) if var else None
