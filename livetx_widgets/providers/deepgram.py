"""Deepgram live transcription (``/v1/listen``, Nova-3) as a sans-IO codec.

Written from ``shared/protocols/deepgram-live-v1.md``. What shapes this module:

* Deepgram has no greeting frame: the session starts with the HTTP 101, whose
  ``dg-request-id`` header is the only session id there is (``handshake_events``).
* ``Results`` restate a whole segment. Interims and the final of one segment share its
  ``start``, so ``channel:start`` is the key that lets a final replace its interims.
* ``Metadata`` is the terminal message after ``CloseStream``; it sets ``finished``.
* Bad credentials or options are refused at the HTTP upgrade (401/400/...), timeouts and
  undecodable audio end the stream with close codes 1011/1008 and a short reason code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..credentials import KEY_ENV
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    LivetxError,
    ProviderError,
)
from ..events import (
    ConfigureResult,
    Event,
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SessionEnded,
    SessionStarted,
    SpeechStarted,
    UtteranceEnd,
    Word,
)
from . import frames
from .base import ConnectRequest, ProviderCodec, unknown_option_error
from .endpoint import (
    USER_AGENT,
    bad_params_hint,
    build_url,
    clean_key,
    get_header,
    parse_body,
    short,
    transport_close,
)
from .options import (
    any_of,
    boolean,
    check_value,
    choice,
    choices,
    integer,
    json_object,
    strings,
    text,
    validate,
)

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
PATH = "/v1/listen"
ENV_VAR = KEY_ENV["deepgram"]
LABEL = "Deepgram"

ENCODINGS = (
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus",
    "speex", "g729",
)  # fmt: skip

#: Every query parameter of the protocol notes' table, in the order they are sent.
OPTIONS = {
    "model": text,
    "encoding": choice(*ENCODINGS),
    "sample_rate": integer(1, unit="Hz"),
    "channels": integer(1),
    "multichannel": boolean,
    "language": text,
    "punctuate": boolean,
    "smart_format": boolean,
    "interim_results": boolean,
    "endpointing": integer(0, unit="ms of silence", false_ok=True),
    "utterance_end_ms": integer(1, unit="ms"),
    "vad_events": boolean,
    "diarize": boolean,
    "diarize_model": text,
    "keyterm": strings(single_ok=True),
    "keywords": strings(single_ok=True),
    "numerals": boolean,
    "profanity_filter": boolean,
    "dictation": boolean,
    "filler_words": boolean,
    "detect_entities": boolean,
    "redact": choices("true", "pci", "numbers", "aggressive_numbers", "ssn", bool_ok=True),
    "replace": strings(single_ok=True),
    "search": strings(single_ok=True),
    "tag": strings(single_ok=True),
    "extra": strings(single_ok=True),
    "version": text,
    "mip_opt_out": boolean,
    "callback": text,
    "callback_method": text,
    "language_hint": any_of(
        "a dict, a list of str or one str", json_object, strings(single_ok=True)
    ),
}

#: Boolean features a ``Configure`` message may switch (the server answers ConfigureFailure
#: for one it cannot change mid-stream).
CONFIGURE_FEATURES = frozenset(name for name, check in OPTIONS.items() if check is boolean)

_KEEPALIVE = json.dumps({"type": "KeepAlive"})
_FINALIZE = json.dumps({"type": "Finalize"})
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def looks_like_jwt(key: str) -> bool:
    """Three dot-separated base64url parts: a temporary token, sent as ``Bearer``."""
    parts = key.split(".")
    return len(parts) == 3 and all(part and _B64URL.issuperset(part) for part in parts)


def _wire(value: Any) -> list[str]:
    """Query values for one option: bools ``true``/``false``, lists as repeated keys."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return [json.dumps(value, separators=(",", ":"))]
    return [str(value)]


class DeepgramCodec(ProviderCodec):
    """Codec for ``wss://api.deepgram.com/v1/listen``.

    Options are the documented query parameters, checked here (wrong names and values raise
    :class:`~livetx_widgets.errors.ConfigurationError`). ``None`` means "not sent"; the
    defaults are those of Deepgram's reference client: nova-3, raw 16 kHz mono linear16,
    punctuation and interim results on. Lists (``keyterm``, ``tag``, ...) are sent as repeated
    keys; ``endpointing`` is milliseconds of silence or ``False``.
    """

    name = "deepgram"
    min_chunk_ms = 20
    max_chunk_ms = 250  # the protocol notes recommend 20-250 ms per frame

    def __init__(
        self,
        *,
        model: str = "nova-3",
        encoding: str | None = "linear16",
        sample_rate: int | None = 16000,
        channels: int | None = 1,
        multichannel: bool | None = None,
        language: str | None = None,
        punctuate: bool | None = True,
        smart_format: bool | None = None,
        interim_results: bool | None = True,
        endpointing: int | bool | None = None,
        utterance_end_ms: int | None = None,
        vad_events: bool | None = None,
        diarize: bool | None = None,
        diarize_model: str | None = None,
        keyterm: list[str] | str | None = None,
        keywords: list[str] | str | None = None,
        numerals: bool | None = None,
        profanity_filter: bool | None = None,
        dictation: bool | None = None,
        filler_words: bool | None = None,
        detect_entities: bool | None = None,
        redact: bool | str | list[str] | None = None,
        replace: list[str] | str | None = None,
        search: list[str] | str | None = None,
        tag: list[str] | str | None = None,
        extra: list[str] | str | None = None,
        version: str | None = None,
        mip_opt_out: bool | None = None,
        callback: str | None = None,
        callback_method: str | None = None,
        language_hint: dict[str, Any] | list[str] | str | None = None,
        **unknown: Any,
    ):
        given = dict(locals())
        for internal in ("self", "unknown", "__class__"):
            given.pop(internal, None)
        if unknown:
            raise unknown_option_error(LABEL, next(iter(unknown)), OPTIONS.keys())
        if model is None:
            raise ConfigurationError("Deepgram option model is required, e.g. model='nova-3'.")
        self._options = validate(LABEL, OPTIONS, given)
        self._check_combinations()
        self.model = self._options["model"]
        self.sample_rate = self._options.get("sample_rate", 16000)
        self.finished = False

    def _check_combinations(self) -> None:
        opts = self._options
        if "utterance_end_ms" in opts and not opts.get("interim_results"):
            raise ConfigurationError(
                "Deepgram option utterance_end_ms needs interim_results=True "
                "(UtteranceEnd is computed from interim results)."
            )
        if "keywords" in opts and opts["model"].startswith("nova-3"):
            raise ConfigurationError(
                "Deepgram Nova-3 does not support keywords=; use keyterm=[...] instead."
            )
        if opts.get("diarize_model") == "v2":
            raise ConfigurationError(
                "Deepgram diarize_model='v2' is rejected on streaming; use 'v1' or 'latest'."
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"DeepgramCodec({args})"

    @property
    def params(self) -> dict[str, Any]:
        """The options as sent (Python values; Deepgram options hold no secrets)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._options.items()}

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query string as ``(name, value)`` pairs, lists repeated."""
        return [(name, item) for name, value in self._options.items() for item in _wire(value)]

    # -- connecting ------------------------------------------------------------------------

    def connect_request(self, api_key: str | None, base_url: str | None = None) -> ConnectRequest:
        """URL and headers. A key is required for the real endpoint, optional with base_url.

        ``Authorization: Token KEY``, or ``Bearer`` for a temporary (JWT) token.
        """
        key = clean_key(
            api_key,
            provider=LABEL,
            env_var=ENV_VAR,
            required=base_url is None,
            extra_hint=" (or a temporary token from /v1/auth/grant).",
        )
        url = build_url(DEFAULT_URL, PATH, base_url, self.query)
        headers = {"User-Agent": USER_AGENT}
        if key is not None:
            scheme = "Bearer" if looks_like_jwt(key) else "Token"
            headers["Authorization"] = f"{scheme} {key}"
        self.finished = False
        return ConnectRequest(url=url, headers=headers)

    def handshake_events(self, headers: Mapping[str, str]) -> list[Event]:
        request_id = get_header(headers, "dg-request-id")
        raw = {"dg-request-id": request_id} if request_id else {}
        return [
            SessionStarted(session_id=request_id, request_id=request_id, model=self.model, raw=raw)
        ]

    def handshake_error(self, status: int, headers: Mapping[str, str], body: str) -> LivetxError:
        info = parse_body(body)
        detail = short(
            get_header(headers, "dg-error")
            or info.get("err_msg")
            or info.get("message")
            or info.get("text")
            or ""
        )
        err_code = info.get("err_code") if isinstance(info.get("err_code"), str) else None
        request_id = get_header(headers, "dg-request-id") or info.get("request_id")
        said = (
            f"HTTP {status}"
            + (f" {err_code}" if err_code else "")
            + (f": {detail}" if detail else "")
        )
        ref = f" (request id {short(request_id, 60)})" if isinstance(request_id, str) else ""
        reason = detail or err_code or None
        if status == 401:
            return AuthenticationError(
                f"Deepgram refused the credentials ({said}){ref}. Check {ENV_VAR} or the "
                "api_key= argument; a temporary token must be used within 30 s of being granted.",
                code=status,
                reason=reason,
            )
        if status == 403:
            return AuthenticationError(
                f"Deepgram refused access ({said}){ref}: this key's project may not use "
                f"model={self.model!r} or one of the requested features. Check the key's "
                "permissions in the Deepgram console or use another key.",
                code=status,
                reason=reason,
            )
        if status == 400:
            if err_code == "KEYWORD_LIMIT_EXCEEDED":
                hint = " Too many keyterms: the limit is 500 tokens in total."
            else:
                hint = bad_params_hint(detail, self._options) or (
                    " Check the options passed to the codec against Deepgram's documentation "
                    "(for example model, language, encoding)."
                )
            return ProviderError(
                f"Deepgram rejected the connection options ({said}){ref}.{hint}",
                code=status,
                reason=reason,
            )
        if status == 402:
            advice = "the project has no balance left; add funds or use another project's key."
        elif status == 429:
            advice = (
                "too many concurrent streams for this project; close other sessions or wait, "
                "then retry."
            )
        elif status >= 500:
            advice = "a Deepgram server problem; retry in a moment."
        elif status == 404:
            advice = "no /v1/listen endpoint at this URL; check base_url."
        else:
            advice = "the connection was not accepted."
        return ProviderError(
            f"Deepgram refused the connection ({said}){ref}: {advice}", code=status, reason=reason
        )

    # -- ending ----------------------------------------------------------------------------

    def close_error(self, code: int | None, reason: str) -> LivetxError | None:
        reason = reason or ""
        handled, error = transport_close(LABEL, code, reason, self.finished)
        return error if handled else self._closing_error(code, reason)

    def _closing_error(self, code: int | str | None, reason: str) -> ProviderError:
        """The typed error for a close (or a ``Closing`` error frame) with reason ``reason``."""
        said = f"{code} {reason}".strip() if code is not None else reason
        # The service's close reason is the short code in its docs, but a sentence ending in
        # "https://dpgr.am/net0001" in captured traffic: recognise both.
        folded = reason.lower().replace("-", "")
        kind = next((c for c in ("NET-0001", "NET-0000") if c.lower().replace("-", "") in folded),
                    reason)  # fmt: skip
        if kind == "NET-0001":
            message = (
                f"Deepgram closed the stream because it received no audio for 10 s ({said}). "
                "Keep sending audio, or send KeepAlive every 3-5 s while audio is paused."
            )
        elif kind == "NET-0000":
            message = (
                f"Deepgram closed the stream: it produced no result in time ({said}), an "
                "internal problem or too little audio. Retry; if it repeats, check that audio "
                "reaches the stream."
            )
        elif reason == "DATA-0000":
            fmt = self._options.get("encoding")
            expect = (
                f"encoding={fmt!r} and sample_rate={self.sample_rate} match the audio you send"
                if fmt
                else "the audio is a container format Deepgram can detect, or set encoding="
            )
            message = (
                f"Deepgram could not decode the audio ({said}). Check that {expect}; raw "
                "audio must be 16-bit PCM for encoding='linear16'."
            )
        elif code == 1011:
            message = f"Deepgram ended the stream with an internal error ({said}). Retry."
        else:
            message = f"Deepgram closed the stream ({said or 'no reason given'})."
        return ProviderError(message, code=code, reason=reason or None)

    def error_from_event(self, event: ProviderErrorEvent) -> LivetxError:
        code = event.code
        if isinstance(code, str) and code in ("NET-0000", "NET-0001", "DATA-0000"):
            return self._closing_error(code, code)
        if code == "SchemaError":
            return ProviderError(
                f"Deepgram could not parse a message this client sent: {short(event.reason)}. "
                "This is a bug in livetx or in a Configure call; please report it.",
                code=code,
                reason=event.reason,
            )
        return ProviderError(
            f"Deepgram reported an error ({code}): {short(event.reason)}"
            if code is not None
            else f"Deepgram reported an error: {short(event.reason)}",
            code=code,
            reason=event.reason,
        )

    # -- control messages ------------------------------------------------------------------

    def keepalive(self) -> str:
        return _KEEPALIVE

    def finalize(self, channel: int | None = None) -> str:
        """``Finalize`` for all channels, or only ``channel`` (0-based)."""
        if channel is None:
            return _FINALIZE
        channel = check_value(LABEL, "Finalize channel", integer(0), channel)
        return json.dumps({"type": "Finalize", "channel": channel})

    def close_messages(self) -> list[str]:
        """Finalize (commit what is buffered) then CloseStream (Metadata, then close 1000)."""
        return [_FINALIZE, _CLOSE_STREAM]

    def configure(self, keyterms: list[str] | None = None, **features: bool) -> str:
        """A ``Configure`` message (Nova-3): replace the keyterms (``[]`` clears) or switch
        boolean features. Answered by ConfigureSuccess (no event) or ConfigureFailure
        (a ProviderWarning)."""
        message: dict[str, Any] = {"type": "Configure"}
        if keyterms is not None:
            message["keyterms"] = check_value(LABEL, "keyterms", strings(), keyterms)
        checked = {}
        for name, value in features.items():
            if name not in CONFIGURE_FEATURES:
                raise unknown_option_error("Deepgram Configure", name, CONFIGURE_FEATURES)
            checked[name] = check_value(LABEL, name, boolean, value)
        if checked:
            message["features"] = checked
        if len(message) == 1:
            raise ConfigurationError(
                "configure() needs keyterms=[...] or at least one feature, e.g. numerals=True."
            )
        return json.dumps(message)

    # -- receiving -------------------------------------------------------------------------

    def decode(self, text: str) -> list[Event]:
        data, warnings = frames.load(text, LABEL)
        if data is None:
            return warnings
        kind = data.get("type")
        return frames.dispatch(self, data, kind, _HANDLERS, LABEL)

    def _results(self, data: dict) -> list[Event]:
        where = "Results"
        channel = _channel(data, "channel_index", where)
        start = frames.number(data, "start", where)
        duration = frames.number(data, "duration", where)
        is_final = frames.boolean(data, "is_final", where)
        speech_final = frames.boolean(data, "speech_final", where)
        from_finalize = frames.boolean(data, "from_finalize", where)
        body = frames.mapping(data, "channel", where)
        alternatives = frames.array(body, "alternatives", "Results.channel")
        if alternatives:
            alt = frames.element(alternatives[0], "Results.channel.alternatives[0]")
            where_alt = "Results.channel.alternatives[0]"
            transcript = frames.string(alt, "transcript", where_alt)
            confidence = frames.optional_number(alt, "confidence", where_alt)
            words_raw = frames.array(alt, "words", where_alt, default=[])
        else:  # no hypothesis at all: an empty segment
            transcript, confidence, words_raw = "", None, []
        offset = self.time_offset
        fast = _words_fast(words_raw, offset) if type(words_raw) is list else None
        words, speakers = fast if fast is not None else _words_checked(words_raw, offset)
        cls = FinalTranscript if is_final else PartialTranscript
        extra = {"from_finalize": from_finalize} if is_final else {}
        return [
            cls(
                text=transcript,
                words=tuple(words),
                start=start + offset,
                end=_segment_end(start, duration) + offset,
                confidence=confidence,
                speaker=frames.speaker_of(speakers),
                channel=channel,
                segment_key=f"{self.key_prefix}{channel}:{start:.3f}",
                end_of_turn=speech_final,
                raw=data,
                **extra,
            )
        ]

    def _metadata(self, data: dict) -> list[Event]:
        """The terminal summary: always ends the session, even with odd fields."""
        self.finished = True
        problems: list[str] = []
        where = "Metadata"
        duration = frames.tolerant(problems, frames.optional_number, data, "duration", where)
        request_id = frames.tolerant(problems, frames.optional_string, data, "request_id", where)
        events: list[Event] = [
            SessionEnded(audio_duration_s=duration, request_id=request_id, raw=data)
        ]
        if problems:
            events.append(
                ProviderWarning(
                    f"Deepgram sent a Metadata message with {'; '.join(problems)}.", raw=data
                )
            )
        return events

    def _speech_started(self, data: dict) -> list[Event]:
        return [
            SpeechStarted(
                timestamp=frames.number(data, "timestamp", "SpeechStarted") + self.time_offset,
                channel=_channel(data, "channel", "SpeechStarted"),
                raw=data,
            )
        ]

    def _utterance_end(self, data: dict) -> list[Event]:
        return [
            UtteranceEnd(
                last_word_end=frames.number(data, "last_word_end", "UtteranceEnd")
                + self.time_offset,
                channel=_channel(data, "channel", "UtteranceEnd"),
                raw=data,
            )
        ]

    def _error(self, data: dict) -> list[Event]:
        variant = frames.optional_string(data, "variant", "Error")
        description = frames.optional_string(data, "description", "Error")
        code = data.get("code")
        if not isinstance(code, (str, int)) or isinstance(code, bool):
            code = None
        reason = description or variant or (str(code) if code is not None else "")
        return [
            ProviderErrorEvent(
                reason=reason or "unspecified error",
                code=code if code is not None else variant,
                fatal=variant != "SchemaError",
                raw=data,
            )
        ]

    def _configure_success(self, data: dict) -> list[Event]:
        return [ConfigureResult(ok=True, raw=data)]

    def _configure_failure(self, data: dict) -> list[Event]:
        code = frames.optional_string(data, "code", "ConfigureFailure")
        description = frames.optional_string(data, "description", "ConfigureFailure")
        said = f" ({code})" if code else ""
        return [
            ConfigureResult(
                ok=False,
                code=code,
                reason=f"Deepgram did not apply the Configure message{said}: "
                f"{short(description or 'no description')}. The previous settings stay.",
                raw=data,
            )
        ]


def _segment_end(start: float, duration: float) -> float:
    """``start + duration`` without float noise (5.99 + 1.98 is 7.970000000000001), to the
    microsecond, and never before ``start``."""
    end = start + duration
    return max(start, round(end, 6)) if duration >= 0 else end


def _channel(data: dict, key: str, where: str) -> int:
    """Channel number from ``[this_channel, total]`` (0 when absent)."""
    value = data.get(key)
    if value is None:
        return 0
    if (
        isinstance(value, list)
        and value
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
    ):
        return value[0]
    raise frames.Malformed(
        f"'{key}' of {where} should be [channel, channels], got {frames.short_repr(value)}"
    )


def _words_fast(items: list, offset: float) -> tuple[list[Word], list[str]] | None:
    """Words of a well-formed ``words`` list in one tight loop, or None at the first oddity.

    Results arrive several times a second, each restating its whole segment, so this loop is
    the codec's hot path. It does the same checks as ``_words_checked`` with exact type tests
    and no per-word message formatting; anything unexpected sends the frame to the checked
    path, which says precisely what is wrong.
    """
    words: list[Word] = []
    speakers: list[str] = []
    number, limit = frames.NUMBER_TYPES, frames.FINITE_LIMIT
    for w in items:
        if type(w) is not dict:
            return None
        text = w.get("punctuated_word")
        if text is None:
            text = w.get("word")
        start, end, confidence = w.get("start"), w.get("end"), w.get("confidence")
        if (
            type(text) is not str
            or type(start) not in number
            or type(end) not in number
            or not (-limit < start < limit and -limit < end < limit)
        ):
            return None
        if confidence is not None:
            if type(confidence) not in number or not (-limit < confidence < limit):
                return None
            confidence = float(confidence)
        speaker = w.get("speaker")
        if speaker is not None:
            if type(speaker) not in (int, str):
                return None
            speaker = str(speaker)
            speakers.append(speaker)
        words.append(Word(text, start + offset, end + offset, confidence, speaker))
    return words, speakers


def _words_checked(items: Any, offset: float) -> tuple[list[Word], list[str]]:
    """The validating path: raises ``frames.Malformed`` naming the first wrong field."""
    if not isinstance(items, list):
        raise frames.Malformed(
            f"'words' of Results.channel.alternatives[0] should be a list, "
            f"got {frames.short_repr(items)}"
        )
    words: list[Word] = []
    speakers: list[str] = []
    for i, item in enumerate(items):
        where_w = f"word {i} of Results"
        w = frames.element(item, where_w)
        display = frames.optional_string(w, "punctuated_word", where_w)
        if display is None:
            display = frames.string(w, "word", where_w)
        speaker = _speaker(w, where_w)
        if speaker is not None:
            speakers.append(speaker)
        words.append(
            Word(
                text=display,
                start=frames.number(w, "start", where_w) + offset,
                end=frames.number(w, "end", where_w) + offset,
                confidence=frames.optional_number(w, "confidence", where_w),
                speaker=speaker,
            )
        )
    return words, speakers


def _speaker(word: dict, where: str) -> str | None:
    value = word.get("speaker")
    if value is None:
        return None
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return str(value)
    raise frames.Malformed(
        f"'speaker' of {where} should be an integer, got {frames.short_repr(value)}"
    )


_HANDLERS = {
    "Results": DeepgramCodec._results,
    "Metadata": DeepgramCodec._metadata,
    "SpeechStarted": DeepgramCodec._speech_started,
    "UtteranceEnd": DeepgramCodec._utterance_end,
    "Error": DeepgramCodec._error,
    "ConfigureSuccess": DeepgramCodec._configure_success,
    "ConfigureFailure": DeepgramCodec._configure_failure,
}
