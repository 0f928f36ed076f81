"""Provider codecs: the wire protocols of Deepgram and AssemblyAI, without any I/O.

``make_codec("deepgram", model="nova-3")`` is how the session layer (and users) get a codec by
provider name; the classes can also be built directly. See ``base.ProviderCodec`` for the
interface and how a transport drives it.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .assemblyai import AssemblyAICodec
from .base import ConnectRequest, ProviderCodec, redact_url
from .deepgram import DeepgramCodec

#: Provider name -> codec class.
CODECS: dict[str, type[ProviderCodec]] = {
    "deepgram": DeepgramCodec,
    "assemblyai": AssemblyAICodec,
}


def make_codec(provider: str, **options: Any) -> ProviderCodec:
    """A codec for ``provider`` ("deepgram" or "assemblyai") built with ``options``.

    Raises ConfigurationError for another provider name, an unknown option or a bad value.
    """
    cls = CODECS.get(provider.strip().lower()) if isinstance(provider, str) else None
    if cls is None:
        raise ConfigurationError(
            f"Unknown provider {provider!r}: choose one of {', '.join(repr(p) for p in CODECS)}."
        )
    return cls(**options)


__all__ = [
    "CODECS",
    "AssemblyAICodec",
    "ConnectRequest",
    "DeepgramCodec",
    "ProviderCodec",
    "make_codec",
    "redact_url",
]
