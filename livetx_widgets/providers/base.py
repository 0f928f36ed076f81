"""What every provider codec offers the session layer, and the helpers they share.

A codec is sans-IO: it builds the connect request, encodes control messages and turns one
received text frame into normalized events. It never opens a socket, starts a thread or reads
a clock, so it can be tested by feeding it strings and can be driven by any transport.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..credentials import SECRET_QUERY_KEYS
from ..errors import ConfigurationError, LivetxError
from ..events import Event, ProviderErrorEvent


def redact_url(url: str) -> str:
    """Return ``url`` with every credential-bearing query value replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "***" if k.lower() in SECRET_QUERY_KEYS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@dataclass(frozen=True)
class ConnectRequest:
    """Everything a transport needs to open the provider's WebSocket.

    ``headers`` may hold the API key, so the repr shows only the header names and the URL is
    redacted: a request can be logged or put in an exception without leaking the key.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    subprotocols: tuple[str, ...] = ()

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.headers))
        return f"ConnectRequest(url={redact_url(self.url)!r}, headers=[{names}])"

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


def closest_name(name: str, valid: list[str] | tuple[str, ...] | frozenset[str]) -> str | None:
    """The valid option name most like ``name``, for "did you mean" messages."""
    matches = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_option_error(provider: str, name: str, valid) -> ConfigurationError:
    hint = closest_name(name, valid)
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    return ConfigurationError(
        f"{provider} has no option {name!r}.{suggestion} Valid options: {', '.join(sorted(valid))}."
    )


class ProviderCodec:
    """Interface of a provider codec. Subclasses: ``DeepgramCodec``, ``AssemblyAICodec``.

    The session layer drives a codec like this::

        req = codec.connect_request(api_key, base_url)      # open the socket with it
        events = codec.handshake_events(response_headers)   # after the 101
        for frame in received_text_frames:
            for event in codec.decode(frame): ...           # apply / dispatch
            if codec.finished: break                        # terminal message seen
        ws.send(codec.keepalive())                          # when idle
        for msg in codec.close_messages(): ws.send(msg)     # graceful stop

    Attributes every codec defines:
        name: ``"deepgram"`` or ``"assemblyai"``.
        sample_rate: audio sample rate the stream was opened with (Hz).
        model: the model name requested.
        params: the connection options as sent, without secrets (for metadata).
        min_chunk_ms / max_chunk_ms: audio chunk duration the provider accepts per frame.
        realtime_only: the provider refuses audio sent faster than real time, so the
            sender must pace it (AssemblyAI closes with 3007).
        finished: true once the provider's terminal message (Deepgram ``Metadata`` after
            CloseStream, AssemblyAI ``Termination``) has been decoded.

    Attributes the caller sets per connection, before decoding its frames:
        time_offset: seconds added to every decoded time. A session that reconnects starts a
            new provider stream whose clock restarts at zero; offsetting by the audio the
            earlier connections covered keeps one continuous clock.
        key_prefix: prepended to every segment key, because keys such as AssemblyAI's turn
            numbers restart on a new connection.
    Applying both while the events are built costs nothing extra per frame.
    """

    name: str = ""
    sample_rate: int = 16000
    model: str = ""
    realtime_only: bool = False
    min_chunk_ms: int = 20
    max_chunk_ms: int = 1000
    finished: bool = False
    time_offset: float = 0.0
    key_prefix: str = ""

    @property
    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def connect_request(self, api_key: str | None, base_url: str | None = None) -> ConnectRequest:
        """URL (default endpoint, or ``base_url`` + the provider's path) and auth headers."""
        raise NotImplementedError

    def handshake_events(self, headers: Mapping[str, str]) -> list[Event]:
        """Events implied by the HTTP 101 response (Deepgram has no greeting message)."""
        return []

    def handshake_error(self, status: int, headers: Mapping[str, str], body: str) -> LivetxError:
        """Typed error for a refused upgrade (HTTP status other than 101)."""
        raise NotImplementedError

    def close_error(self, code: int | None, reason: str) -> LivetxError | None:
        """Typed error for a close frame, or ``None`` when the close was the normal end."""
        raise NotImplementedError

    def error_from_event(self, event: ProviderErrorEvent) -> LivetxError:
        """Typed error for an error frame (AssemblyAI 1008 -> AuthenticationError)."""
        raise NotImplementedError

    def decode(self, text: str) -> list[Event]:
        """Events for one received text frame. Never raises on bad input: warns instead."""
        raise NotImplementedError

    def keepalive(self) -> str:
        raise NotImplementedError

    def finalize(self) -> str:
        """Ask the provider to commit what it has heard so far (Finalize / ForceEndpoint)."""
        raise NotImplementedError

    def close_messages(self) -> list[str]:
        """Text frames that start the graceful end of the stream, in order."""
        raise NotImplementedError
