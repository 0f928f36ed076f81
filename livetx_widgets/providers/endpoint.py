"""Connect-request helpers shared by the codecs: endpoint URLs, credentials, provider text.

Why a module of its own: both providers follow the same base-URL convention as their official
SDKs (a ``ws://host:port`` base gets the provider's path appended, a URL with a path is used
as is), both need the same care with API keys (never echoed, never sent with stray
whitespace), and both quote the provider's own words in errors, which must stay short and
single-line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import __version__
from ..errors import AuthenticationError, ConfigurationError, ConnectionLostError, LivetxError
from .base import redact_url

USER_AGENT = f"livetx-widgets/{__version__}"

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def build_url(
    default_url: str,
    path: str,
    base_url: str | None,
    query: Sequence[tuple[str, str]],
) -> str:
    """The WebSocket URL: ``default_url`` or ``base_url`` (+ ``path`` when it has none) + query.

    ``http``/``https`` bases map to ``ws``/``wss``. Query parameters already in ``base_url``
    are kept unless the codec sets the same name (the codec's options win).
    """
    if base_url is None:
        scheme, netloc, url_path, base_query = (*urlsplit(default_url)[:3], "")
    else:
        if not isinstance(base_url, str) or not base_url.strip():
            raise ConfigurationError(
                "base_url must be a URL such as 'ws://127.0.0.1:8765'; "
                f"got {base_url!r} ({type(base_url).__name__})."
            )
        parts = urlsplit(base_url.strip())
        scheme = _SCHEMES.get(parts.scheme.lower(), "")
        if not scheme or not parts.netloc:
            raise ConfigurationError(
                "base_url must start with ws://, wss://, http:// or https:// and name a host, "
                f"e.g. 'ws://127.0.0.1:8765'; got {redact_url(base_url)!r}."
            )
        netloc = parts.netloc
        url_path = parts.path if parts.path not in ("", "/") else path
        base_query = parts.query
    ours = {name for name, _ in query}
    pairs = [(k, v) for k, v in parse_qsl(base_query, keep_blank_values=True) if k not in ours]
    pairs.extend(query)
    return urlunsplit((scheme, netloc, url_path, urlencode(pairs), ""))


def clean_key(
    api_key: Any,
    *,
    provider: str,
    env_var: str,
    required: bool,
    extra_hint: str = "",
    what: str = "API key",
) -> str | None:
    """The key (or token: ``what``), stripped; ``None`` when absent and allowed.

    Never quotes the key itself, not even a part of it.
    """
    if api_key is None or (isinstance(api_key, str) and not api_key.strip()):
        if required:
            raise AuthenticationError(
                f"No {provider} API key: set the {env_var} environment variable or pass "
                f"api_key=...{extra_hint}"
            )
        return None
    if not isinstance(api_key, str):
        raise ConfigurationError(
            f"api_key must be a str, got {type(api_key).__name__}; pass the {provider} key "
            f"as text or set {env_var}."
        )
    key = api_key.strip()
    if any(not ("!" <= c <= "~") for c in key):
        raise AuthenticationError(
            f"The {provider} {what} contains spaces, control or non-ASCII characters, so it "
            f"cannot be sent. Copy it again (check {env_var} or the argument you passed)."
        )
    return key


def get_header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup over any mapping (dict, websockets Headers, ...)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


#: Close codes that say the link failed (going away, no status, abnormal, restart, try again
#: later), not that the provider refused anything: the same for both protocols.
TRANSPORT_CLOSE_CODES = frozenset({1001, 1005, 1006, 1012, 1013})


def transport_close(
    label: str, code: int | None, reason: str, finished: bool
) -> tuple[bool, LivetxError | None]:
    """``(handled, error)`` for the closes both protocols share.

    A normal close (1000, or 1005 after the terminal message) is handled with no error; a
    dropped link (no close frame, or a transport code) is a ``ConnectionLostError`` worth a
    reconnect. Anything else is the provider's own code: ``handled`` is false.
    """
    if code == 1000 or (code == 1005 and finished):
        return True, None
    if code is None or code in TRANSPORT_CLOSE_CODES:
        said = "without a close frame" if code is None else f"with code {code}"
        detail = f": {short(reason)}" if reason else ""
        return True, ConnectionLostError(
            f"The connection to {label} was lost ({said}{detail}). Reconnecting usually helps.",
            code=code,
            reason=reason or None,
        )
    return False, None


def short(value: Any, limit: int = 300) -> str:
    """Provider text fit for a one-line message: whitespace collapsed, at most ``limit`` chars."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_body(body: Any) -> dict[str, Any]:
    """An HTTP error body as a dict: the JSON object, or ``{"text": body}`` for anything else."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {"text": short(body)}
    return data if isinstance(data, dict) else {"text": short(body)}


def bad_params_hint(detail: str, params: Mapping[str, Any]) -> str:
    """' The problem is option X (you sent X=...).' when the provider's text names an option."""
    if not detail:
        return ""
    named = [name for name in params if name in detail]
    if not named:
        return ""
    # prefer the longest match: "sample_rate" over "rate"-like prefixes of other names
    name = max(named, key=len)
    return f" The problem is the {name!r} option (you sent {name}={params[name]!r})."
