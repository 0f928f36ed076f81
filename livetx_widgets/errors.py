"""Every exception livetx raises, in one tree.

Remote faults (the provider or the network did something) are told apart from local
misuse (the caller passed something wrong), because the user's fix is different:

    LivetxError                      base of everything below
    ├── ConfigurationError           local misuse: unknown option, bad value, bad source
    │   │                            (also a ValueError, so ``except ValueError`` works)
    │   ├── SessionStateError        an action that means nothing in the session's state
    │   │                            (pause() after stop(), start() twice, ...)
    │   └── SegmentNotFoundError     segment_audio(): no segment with that id
    ├── AudioNotKeptError            segment_audio()/audio_span(): the session does not keep
    │   │                            its audio (keep_audio=False, or released by close())
    │   └── AudioDroppedError        ...that audio was, but is older than keep_audio_max_s
    ├── AudioDeviceError             pyaudio missing, no input device, device vanished
    ├── ConnectError                 could not open the WebSocket (refused, DNS, TLS, timeout)
    ├── ConnectionLostError          an open connection died without a clean close
    ├── ProviderError(code, reason)  the provider said no: an error frame or close code
    │   └── AuthenticationError      the key was missing, wrong or not allowed
    └── CodecError                   a bug in livetx while decoding a provider message

A frame that does not follow its protocol is not an error here: the codecs report it as a
``ProviderWarning`` event and the session carries on (the warning is logged and counted in
``metadata.warnings``). Anything else that goes wrong inside a codec is a bug of ours: it is
logged with its traceback and ends the session with a ``CodecError``.

Messages say what happened and what to do about it. They never contain an API key:
nothing in this package passes a key to an exception, and URLs are redacted before
they are quoted (see ``providers.base.redact_url``).
"""

from __future__ import annotations


class LivetxError(Exception):
    """Base class of every error raised by livetx-widgets."""


class ConfigurationError(LivetxError, ValueError):
    """The caller asked for something that cannot work (a local mistake, not a remote fault)."""


class SessionStateError(ConfigurationError):
    """The session cannot do that in its current state (``state`` says which it was in)."""

    def __init__(self, message: str, state: str | None = None):
        super().__init__(message)
        self.state = state


class SegmentNotFoundError(ConfigurationError):
    """``segment_audio(segment_id)``: the transcript has no segment with that id."""


class AudioNotKeptError(LivetxError):
    """The audio asked for is not kept: the session runs with ``keep_audio=False``, or its
    kept audio was released (``close()``, or the widget started a new session)."""


class AudioDroppedError(AudioNotKeptError):
    """The audio asked for was kept, but is older than the ``keep_audio_max_s`` newest
    seconds the session keeps: the oldest audio is dropped first."""


class AudioDeviceError(LivetxError):
    """An audio input could not be opened or read."""


class ConnectError(LivetxError):
    """The WebSocket could not be opened at all."""


class ConnectionLostError(LivetxError):
    """An open connection ended without the provider's normal closing sequence.

    ``code`` and ``reason`` are the WebSocket close code and reason when there was a close
    frame, or ``None`` when the TCP connection simply dropped.
    """

    def __init__(self, message: str, code: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason


class ProviderError(LivetxError):
    """The provider reported an error (an error frame, a close code or an HTTP refusal).

    ``code`` is the provider's code (a close code such as 3007, an HTTP status such as 402,
    or a string such as ``"NET-0001"``); ``reason`` is the provider's own words.
    """

    def __init__(self, message: str, code: int | str | None = None, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason


class AuthenticationError(ProviderError):
    """The provider refused the credentials. Retrying with the same key will not help."""


class CodecError(LivetxError):
    """A provider message made livetx's own decoding code fail: a bug, not bad input.

    The traceback is logged (logger ``livetx_widgets.session``); please report it with the
    message type named here. The transcript received until then is kept.
    """
