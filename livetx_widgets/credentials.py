"""Where credentials come from and where they must never show: one table for the client, the
widget, the CLI and the server's records.

Stdlib only, like ``errors`` and ``events``, so that every layer can import it. Kept in one
place because copies drift: the server's connection records once masked fewer query keys than
the client's URLs (``webhook_auth_header_value`` showed in the records).
"""

from __future__ import annotations

#: The environment variable that holds each provider's API key.
KEY_ENV: dict[str, str] = {"deepgram": "DEEPGRAM_API_KEY", "assemblyai": "ASSEMBLYAI_API_KEY"}

#: Query parameters that carry a credential: their values are shown as ``***`` wherever a URL
#: or a query is shown or recorded (AssemblyAI ``?token=``, a webhook's auth header value, and
#: the usual names of keys and tokens, for safety).
SECRET_QUERY_KEYS: frozenset[str] = frozenset(
    {"token", "key", "api_key", "access_token", "webhook_auth_header_value"}
)
