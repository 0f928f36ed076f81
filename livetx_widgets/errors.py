"""Every exception livetx raises, in one tree.

Remote faults (the provider or the network did something) are told apart from local
misuse (the caller passed something wrong), because the user's fix is different:

    LivetxError                      base of everything below
    ├── ConfigurationError           local misuse: unknown option, bad value, bad source
    │   │                            (also a ValueError, so ``except ValueError`` works)
    │   ├── SessionStateError        an action that means nothing in the session's state
    │   │                            (pause() after stop(), start() twice, ...)
    │   ├── SegmentNotFoundError     segment_audio(): no segment with that id
    │   └── AudioFileError           a file that is not audio, has no audio track, or is
    │                                truncated or damaged (``stopped_at_s``: where it ended)
    ├── AudioNotKeptError            segment_audio()/audio_span(): the session does not keep
    │   │                            its audio (keep_audio=False, or released by close())
    │   └── AudioDroppedError        ...that audio was, but is older than keep_audio_max_s
    ├── AudioDeviceError             pyaudio missing, no input device, device vanished
    │   └── AudioStreamError         a network stream (``NetworkStream``) that cannot be
    │                                opened, or was lost and could not be reopened
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


class AudioFileError(ConfigurationError):
    """An audio file cannot be played as asked: not audio, no audio track, or damaged.

    ``path`` is the file. For a truncated or damaged file, raised after the audio it holds
    has been played: ``stopped_at_s`` is where that audio ended (seconds of the file) and
    ``duration_s`` the length its header announced (``None`` when unknown).
    """

    def __init__(
        self,
        message: str,
        path: str = "",
        stopped_at_s: float | None = None,
        duration_s: float | None = None,
    ):
        super().__init__(message)
        self.path = path
        self.stopped_at_s = stopped_at_s
        self.duration_s = duration_s


class AudioDeviceError(LivetxError):
    """An audio input could not be opened or read."""


class AudioStreamError(AudioDeviceError):
    """A network audio stream could not be opened, or dropped and could not be reopened.

    ``url`` is the stream (without credentials), ``attempts`` how many times it was tried in
    a row before giving up, ``status`` the HTTP status when the server refused (else ``None``).
    """

    def __init__(self, message: str, url: str = "", attempts: int = 0, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.attempts = attempts
        self.status = status


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
