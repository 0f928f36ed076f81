"""AssemblyAI Universal-Streaming v3 (``/v3/ws``, u3-rt-pro) as a sans-IO codec.

Written from ``shared/protocols/assemblyai-streaming-v3.md``. What shapes this module:

* Authentication is checked *after* the 101: a bad key arrives as an ``Error`` frame and a
  1008 close, so ``error_from_event`` / ``close_error`` map 1008 to AuthenticationError.
* A ``Turn`` restates the whole turn; all partials and the final of one turn share its
  ``turn_order``, which is therefore the segment key. Turns carry no times of their own:
  the segment spans its first to last word. Word times are integer milliseconds on the wire
  and float seconds in events.
* ``Termination`` is the terminal message after ``Terminate``; it sets ``finished``.
* With ``speaker_labels`` a word whose speaker is not settled yet says ``"PENDING"`` and a
  turn too short to tell says ``"UNKNOWN"``: placeholders, decoded as ``None`` (not known),
  never as a speaker. A later ``SpeakerRevision`` (possibly at the end of the session)
  re-labels words of turns it names by ``turn_order``; it becomes a ``SpeakerRevision`` event
  keyed and timed like the turns' own updates, for ``Transcript.apply``.
* Query arrays and objects are JSON-encoded strings; a temporary ``token`` travels in the
  query and is therefore redacted wherever the URL is shown.
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
    Event,
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SegmentSpeakers,
    SessionEnded,
    SessionStarted,
    SpeakerRevision,
    SpeechStarted,
)
from . import frames
from .assemblyai_words import PLACEHOLDER_SPEAKERS as PLACEHOLDER_SPEAKERS  # part of this API
from .assemblyai_words import TurnWords, known, shifted, words_checked
from .base import ConnectRequest, ProviderCodec, unknown_option_error
from .endpoint import (
    USER_AGENT,
    bad_params_hint,
    build_url,
    clean_key,
    parse_body,
    short,
    transport_close,
)
from .options import (
    boolean,
    check_value,
    choice,
    integer,
    json_object,
    number,
    strings,
    text,
    validate,
)

DEFAULT_URL = "wss://streaming.assemblyai.com/v3/ws"
PATH = "/v3/ws"
ENV_VAR = KEY_ENV["assemblyai"]
LABEL = "AssemblyAI"

SPEECH_MODELS = (
    "u3-rt-pro", "universal-streaming-english", "universal-streaming-multilingual",
    "whisper-rt", "u3-rt-pro-beta-1", "universal-3-5-pro", "universal-3-6",
    "universal-3-6-pro", "u3-pro",
)  # fmt: skip

#: Every connection parameter of the protocol notes (the table and the newer u3/SDK list).
OPTIONS = {
    "speech_model": choice(*SPEECH_MODELS),
    "sample_rate": integer(1, unit="Hz"),
    "encoding": choice("pcm_s16le", "pcm_mulaw", "opus", "ogg_opus", "aac"),
    "format_turns": boolean,
    "end_of_turn_confidence_threshold": number(0, 1),
    "min_turn_silence": integer(0, unit="ms"),
    "min_end_of_turn_silence_when_confident": integer(0, unit="ms"),
    "max_turn_silence": integer(0, unit="ms"),
    "vad_threshold": number(0, 1),
    "keyterms_prompt": strings(max_items=100, max_chars=50),
    "prompt": text,
    "language_detection": boolean,
    "language_code": text,
    "language_codes": strings(),
    "inactivity_timeout": integer(5, 3600, unit="s"),
    "speaker_labels": boolean,
    "max_speakers": integer(1, 10),
    "filter_profanity": boolean,
    "token": text,
    "interruption_delay": integer(0, unit="ms"),
    "continuous_partials": boolean,
    "mode": choice("min_latency", "balanced", "max_accuracy"),
    "turn_left_pad_ms": integer(0, unit="ms"),
    "agent_context": text,
    "session_heartbeat": boolean,
    "acknowledge_silence": boolean,
    "include_partial_turns": boolean,
    "speaker_labels_revision_interval_ms": integer(1, unit="ms"),
    "voice_focus": choice("near-field", "far-field"),
    "voice_focus_threshold": number(),
    "domain": text,
    "redact_pii": boolean,
    "redact_pii_policies": strings(),
    "redact_pii_sub": text,
    "webhook_url": text,
    "webhook_auth_header_name": text,
    "webhook_auth_header_value": text,
    "llm_gateway": json_object,
    "customer_support_audio_capture": boolean,
}

#: Options that are credentials: sent, but never in ``params``, reprs or messages.
SECRET_OPTIONS = frozenset({"token", "webhook_auth_header_value"})

#: What ``UpdateConfiguration`` may change (u3: prompt, keyterms_prompt, turn silences,
#: agent_context; Universal-Streaming adds end_of_turn_confidence_threshold).
UPDATABLE = (
    "prompt",
    "keyterms_prompt",
    "min_turn_silence",
    "max_turn_silence",
    "agent_context",
    "end_of_turn_confidence_threshold",
)

_KEEPALIVE = json.dumps({"type": "KeepAlive"}, separators=(",", ":"))
_FORCE_ENDPOINT = json.dumps({"type": "ForceEndpoint"}, separators=(",", ":"))
_TERMINATE = json.dumps({"type": "Terminate"}, separators=(",", ":"))


def _wire(value: Any) -> str:
    """A query value: bools ``true``/``false``, arrays and objects as JSON strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class AssemblyAICodec(ProviderCodec):
    """Codec for ``wss://streaming.assemblyai.com/v3/ws``.

    Options are the documented connection parameters, checked here (wrong names and values
    raise :class:`~livetx_widgets.errors.ConfigurationError`); ``None`` means "not sent".
    Defaults are those of AssemblyAI's reference client: ``speech_model="u3-rt-pro"``,
    ``sample_rate=16000``. ``token=`` (a temporary token) replaces the API key and is sent in
    the query. The deprecated ``min_end_of_turn_silence_when_confident`` is sent as
    ``min_turn_silence``, as the official SDK does.
    """

    name = "assemblyai"
    min_chunk_ms = 50
    max_chunk_ms = 1000
    realtime_only = True  # "Audio Transmission Rate Exceeded" closes with 3007

    def __init__(
        self,
        *,
        speech_model: str = "u3-rt-pro",
        sample_rate: int = 16000,
        encoding: str | None = None,
        format_turns: bool | None = None,
        end_of_turn_confidence_threshold: float | None = None,
        min_turn_silence: int | None = None,
        min_end_of_turn_silence_when_confident: int | None = None,
        max_turn_silence: int | None = None,
        vad_threshold: float | None = None,
        keyterms_prompt: list[str] | None = None,
        prompt: str | None = None,
        language_detection: bool | None = None,
        language_code: str | None = None,
        language_codes: list[str] | None = None,
        inactivity_timeout: int | None = None,
        speaker_labels: bool | None = None,
        max_speakers: int | None = None,
        filter_profanity: bool | None = None,
        token: str | None = None,
        interruption_delay: int | None = None,
        continuous_partials: bool | None = None,
        mode: str | None = None,
        turn_left_pad_ms: int | None = None,
        agent_context: str | None = None,
        session_heartbeat: bool | None = None,
        acknowledge_silence: bool | None = None,
        include_partial_turns: bool | None = None,
        speaker_labels_revision_interval_ms: int | None = None,
        voice_focus: str | None = None,
        voice_focus_threshold: float | None = None,
        domain: str | None = None,
        redact_pii: bool | None = None,
        redact_pii_policies: list[str] | None = None,
        redact_pii_sub: str | None = None,
        webhook_url: str | None = None,
        webhook_auth_header_name: str | None = None,
        webhook_auth_header_value: str | None = None,
        llm_gateway: dict[str, Any] | None = None,
        customer_support_audio_capture: bool | None = None,
        **unknown: Any,
    ):
        given = dict(locals())
        for internal in ("self", "unknown", "__class__"):
            given.pop(internal, None)
        if unknown:
            raise unknown_option_error(LABEL, next(iter(unknown)), OPTIONS.keys())
        for required in ("speech_model", "sample_rate"):
            if given[required] is None:
                raise ConfigurationError(
                    f"AssemblyAI option {required} is required "
                    "(e.g. speech_model='u3-rt-pro', sample_rate=16000)."
                )
        opts = validate(LABEL, OPTIONS, given, secrets=SECRET_OPTIONS)
        old = opts.pop("min_end_of_turn_silence_when_confident", None)
        if old is not None:
            if "min_turn_silence" in opts:
                raise ConfigurationError(
                    "AssemblyAI: pass min_turn_silence only; "
                    "min_end_of_turn_silence_when_confident is its deprecated name."
                )
            opts["min_turn_silence"] = old
        if "max_speakers" in opts and not opts.get("speaker_labels"):
            raise ConfigurationError("AssemblyAI option max_speakers needs speaker_labels=True.")
        if "token" in opts:
            token = clean_key(
                opts["token"], provider=LABEL, env_var=ENV_VAR, required=False, what="token"
            )
            if token is None:
                raise ConfigurationError(
                    "AssemblyAI option token= is blank; pass the temporary token or leave it out."
                )
            opts["token"] = token
        self._options = opts
        self.model = opts["speech_model"]
        self.sample_rate = opts["sample_rate"]
        self.finished = False
        self._clock = 0.0  # end of the latest word seen: where a wordless turn is placed
        self._turn_words = TurnWords()  # reuses the words a turn's last update had

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        for secret in sorted(SECRET_OPTIONS & self._options.keys()):
            args += f", {secret}='***'"
        return f"AssemblyAICodec({args})"

    @property
    def params(self) -> dict[str, Any]:
        """The options as sent, without credentials (``token``, webhook auth value)."""
        return {
            k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in self._options.items()
            if k not in SECRET_OPTIONS
        }

    # -- connecting ------------------------------------------------------------------------

    def connect_request(self, api_key: str | None, base_url: str | None = None) -> ConnectRequest:
        """URL and headers: the raw key in ``Authorization``, or the ``token`` option in the
        query (then no key is sent). A key is optional with ``base_url`` (a local server)."""
        headers = {"User-Agent": USER_AGENT}
        if "token" not in self._options:
            key = clean_key(
                api_key,
                provider=LABEL,
                env_var=ENV_VAR,
                required=base_url is None,
                extra_hint=", or a temporary token with token=... .",
            )
            if key is not None:
                headers["Authorization"] = key
        query = [(name, _wire(value)) for name, value in self._options.items()]
        url = build_url(DEFAULT_URL, PATH, base_url, query)
        self.finished = False
        self._clock = 0.0
        self._turn_words.reset()
        return ConnectRequest(url=url, headers=headers)

    def handshake_events(self, headers: Mapping[str, str]) -> list[Event]:
        return []  # the session starts with the Begin frame

    def handshake_error(self, status: int, headers: Mapping[str, str], body: str) -> LivetxError:
        info = parse_body(body)
        detail = info.get("error") or info.get("message") or info.get("detail") or info.get("text")
        detail = short(detail) if detail else ""
        said = f"HTTP {status}" + (f": {detail}" if detail else "")
        reason = detail or None
        if status in (401, 403):
            return AuthenticationError(
                f"AssemblyAI refused the credentials ({said}). Check {ENV_VAR} or the api_key= "
                "argument (a temporary token= must not have expired).",
                code=status,
                reason=reason,
            )
        if status == 400:
            hint = bad_params_hint(detail, self.params) or (
                " Check the options passed to the codec (speech_model, sample_rate, encoding, ...)."
            )
            return ProviderError(
                f"AssemblyAI rejected the connection request ({said}).{hint}",
                code=status,
                reason=reason,
            )
        if status == 402:
            advice = "the account has insufficient funds; add funds or use another key."
        elif status == 429:
            advice = (
                "too many new sessions were started in the last minute; wait a minute, then retry."
            )
        elif status >= 500:
            advice = "an AssemblyAI server problem; retry in a moment."
        elif status == 404:
            advice = "no /v3/ws endpoint at this URL; check base_url."
        else:
            advice = "the connection was not accepted."
        return ProviderError(
            f"AssemblyAI refused the connection ({said}): {advice}", code=status, reason=reason
        )

    # -- ending ----------------------------------------------------------------------------

    def close_error(self, code: int | None, reason: str) -> LivetxError | None:
        reason = reason or ""
        handled, error = transport_close(LABEL, code, reason, self.finished)
        return error if handled else self._explain(code, reason)

    def error_from_event(self, event: ProviderErrorEvent) -> LivetxError:
        code = event.code
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        return self._explain(code if isinstance(code, int) else None, event.reason or "")

    def _explain(self, code: int | None, reason: str) -> ProviderError:
        """The typed error for an error frame or close ``code`` with the provider's ``reason``.

        The reason text is checked before the code because older servers used 3005 for every
        session error, with the same texts that now come with 3006-3009.
        """
        low = reason.lower()
        said = f"{code}: {short(reason)}" if code is not None else short(reason)
        said = said or "no reason given"
        chunk = f"{self.min_chunk_ms}-{self.max_chunk_ms} ms"
        if "too many concurrent" in low or code in (3009, 4102):
            return ProviderError(
                f"AssemblyAI refused a new session ({said}): too many sessions were started "
                "in the last minute for this account. Wait a minute, then retry.",
                code=code,
                reason=reason,
            )
        if "unauthorized" in low or "api key" in low or code in (1008, 4001):
            extra = (
                " The account needs funds: add them in the AssemblyAI dashboard."
                if "balance" in low or "fund" in low
                else ""
            )
            return AuthenticationError(
                f"AssemblyAI refused the credentials ({said}). Check {ENV_VAR} or the api_key= "
                f"argument (or the temporary token=).{extra}",
                code=code,
                reason=reason,
            )
        if "input duration" in low or code in (4032, 4033, 4034):
            advice = f"each audio message must hold {chunk} of audio; send ~50 ms chunks."
        elif "rate exceeded" in low or code == 4029:
            advice = "audio was sent faster than real time; stream recorded files at 1x speed."
        elif code == 3007:
            advice = f"audio messages must hold {chunk} of audio and be sent at real-time speed."
        elif "session expired" in low or code in (3008, 4008):
            advice = (
                "the session reached its maximum duration (3 h, or the temporary token's "
                "max_session_duration_seconds); start a new session."
            )
        elif ("invalid" in low and ("json" in low or "message" in low)) or code in (
            3006,
            4100,
            4101,
        ):
            advice = (
                "the server could not understand a message this client sent. If you called "
                "update_configuration, check its values; otherwise please report it."
            )
        elif code == 4000:
            advice = "the sample rate is not supported; check sample_rate."
        elif code == 4002:
            advice = "the account has insufficient funds; add funds in the AssemblyAI dashboard."
        elif code == 4003:
            advice = "this feature is only available to paid accounts."
        elif code in (4004, 4010, 4030, 4103):
            advice = "the session is gone or taken over by another connection; start a new one."
        elif code == 4031:
            advice = "the session was idle too long; send audio or KeepAlive messages."
        elif code == 3005 or "cancelled" in low:
            advice = "a server error ended the session; retry."
        else:
            advice = "the session ended with an error."
        return ProviderError(
            f"AssemblyAI ended the session ({said}): {advice}", code=code, reason=reason
        )

    # -- control messages ------------------------------------------------------------------

    def keepalive(self) -> str:
        """Resets ``inactivity_timeout``; only useful when that option is set."""
        return _KEEPALIVE

    def finalize(self) -> str:
        """``ForceEndpoint``: end the current turn now (a final Turn follows)."""
        return _FORCE_ENDPOINT

    def close_messages(self) -> list[str]:
        """``Terminate``: the server flushes its turns, sends Termination, closes 1000."""
        return [_TERMINATE]

    def update_configuration(self, **params: Any) -> str:
        """An ``UpdateConfiguration`` message for the updatable settings (see UPDATABLE).

        ``keyterms_prompt=[]`` clears the list. The codec remembers the new values, so a
        reconnect opens the next stream with them and ``params`` shows them.
        """
        for name in params:
            if name not in UPDATABLE:
                raise unknown_option_error("AssemblyAI UpdateConfiguration", name, UPDATABLE)
        checked = {
            name: check_value(LABEL, name, OPTIONS[name], value)
            for name, value in params.items()
            if value is not None
        }
        if not checked:
            raise ConfigurationError(
                "update_configuration() needs at least one setting, e.g. max_turn_silence=2000 "
                f"(updatable: {', '.join(UPDATABLE)})."
            )
        for name, value in checked.items():
            if value == [] and name == "keyterms_prompt":
                self._options.pop(name, None)
            else:
                self._options[name] = value
        return json.dumps({"type": "UpdateConfiguration", **checked}, separators=(",", ":"))

    # -- receiving -------------------------------------------------------------------------

    def decode(self, text: str) -> list[Event]:
        data, warnings = frames.load(text, LABEL)
        if data is None:
            return warnings
        kind = data.get("type")
        if kind is None and "error" in data:
            kind = "Error"  # legacy shape: {"error": "..."} without a type
        return frames.dispatch(self, data, kind, _HANDLERS, LABEL)

    def _begin(self, data: dict) -> list[Event]:
        """The session's greeting; accepted even with odd fields (they are reported)."""
        problems: list[str] = []
        session_id = frames.tolerant(problems, frames.optional_string, data, "id", "Begin")
        expires_at = frames.tolerant(problems, frames.optional_number, data, "expires_at", "Begin")
        config = frames.tolerant(problems, frames.mapping, data, "configuration", "Begin", {})
        model = (config or {}).get("model")
        events: list[Event] = [
            SessionStarted(
                session_id=session_id,
                expires_at=expires_at,
                model=model if isinstance(model, str) else self.model,
                raw=data,
            )
        ]
        if problems:
            events.append(
                ProviderWarning(
                    f"AssemblyAI sent a Begin message with {'; '.join(problems)}.", raw=data
                )
            )
        return events

    def _turn(self, data: dict) -> list[Event]:
        where = "Turn"
        get = data.get
        turn_order, transcript = get("turn_order"), get("transcript")
        end_of_turn, label, items = get("end_of_turn"), get("speaker_label"), get("words")
        # Exact types are the well-formed frame; anything else gets the accessors' checks
        # (and their messages), as every frame did before.
        if type(turn_order) is not int:
            turn_order = frames.integer(data, "turn_order", where)
        if type(transcript) is not str:
            transcript = frames.string(data, "transcript", where)
        if type(end_of_turn) is not bool:
            end_of_turn = frames.boolean(data, "end_of_turn", where)
        if label is not None:
            label = known(frames.optional_string(data, "speaker_label", where))
        if type(items) is not list:
            items = frames.array(data, "words", where, default=[])
        offset = self.time_offset
        words, speakers, confidences = self._turn_words.read(turn_order, items, offset, where)
        if words:
            start, end = words[0].start, words[-1].end
            # on this connection's clock (validated: ``words`` came from ``items``)
            self._clock = max(self._clock, items[-1]["end"] / 1000.0)
        else:
            start = end = self._clock + offset
        cls = FinalTranscript if end_of_turn else PartialTranscript
        return [
            cls(
                text=transcript,
                words=tuple(words),
                start=start,
                end=end,
                confidence=sum(confidences) / len(confidences) if confidences else None,
                speaker=label if label is not None or not speakers else frames.speaker_of(speakers),
                segment_key=f"{self.key_prefix}{turn_order}",
                end_of_turn=end_of_turn,
                raw=data,
            )
        ]

    def _speech_started(self, data: dict) -> list[Event]:
        return [
            SpeechStarted(
                timestamp=frames.number(data, "timestamp", "SpeechStarted") / 1000.0
                + self.time_offset,
                confidence=frames.optional_number(data, "confidence", "SpeechStarted"),
                raw=data,
            )
        ]

    def _termination(self, data: dict) -> list[Event]:
        """The terminal message: always ends the session, even with odd fields."""
        self.finished = True
        problems: list[str] = []
        audio = frames.tolerant(
            problems, frames.optional_number, data, "audio_duration_seconds", "Termination"
        )
        session = frames.tolerant(
            problems, frames.optional_number, data, "session_duration_seconds", "Termination"
        )
        events: list[Event] = [
            SessionEnded(audio_duration_s=audio, session_duration_s=session, raw=data)
        ]
        if problems:
            events.append(
                ProviderWarning(
                    f"AssemblyAI sent a Termination message with {'; '.join(problems)}.",
                    raw=data,
                )
            )
        return events

    def _error(self, data: dict) -> list[Event]:
        message = data.get("error")
        reason = message if isinstance(message, str) else ""
        if not reason and message is not None:
            reason = frames.short_repr(message)
        code = data.get("error_code")
        if isinstance(code, bool) or not isinstance(code, (int, str)):
            code = None
        return [
            ProviderErrorEvent(
                reason=reason or "unspecified error", code=code, fatal=True, raw=data
            )
        ]

    def _warning(self, data: dict) -> list[Event]:
        message = frames.optional_string(data, "warning", "Warning")
        code = data.get("warning_code")
        if isinstance(code, bool) or not isinstance(code, (int, str)):
            code = None
        return [
            ProviderWarning(
                f"AssemblyAI warning: {short(message or 'no text')}", code=code, raw=data
            )
        ]

    def _heartbeat(self, data: dict) -> list[Event]:
        for key in ("total_audio_received_ms", "total_duration_ms", "realtime_factor"):
            frames.optional_number(data, key, "Heartbeat")
        return []

    def _silence(self, data: dict) -> list[Event]:
        frames.optional_number(data, "start_ms", "Silence")
        frames.optional_number(data, "end_ms", "Silence")
        return []

    def _speaker_revision(self, data: dict) -> list[Event]:
        """Re-labelled turns, keyed and timed exactly as their Turn updates were decoded (so
        ``Transcript.apply`` finds the segments and their words). Placeholder labels are
        ``None`` here too. One malformed entry makes the whole message a warning."""
        items = frames.array(data, "revisions", "SpeakerRevision", default=[])
        offset = self.time_offset
        segments = []
        for i, item in enumerate(items):
            where = f"revision {i} of SpeakerRevision"
            revision = frames.element(item, where)
            turn_order = frames.integer(revision, "turn_order", where)
            label = known(frames.optional_string(revision, "speaker_label", where))
            words_raw = frames.array(revision, "words", where, default=[])
            words = words_checked(words_raw, where)[0]
            segments.append(
                SegmentSpeakers(
                    segment_key=f"{self.key_prefix}{turn_order}",
                    speaker=label,
                    words=tuple(shifted(words, offset) if offset else words),
                )
            )
        if not segments:
            return []  # names no turn: nothing to revise
        return [SpeakerRevision(segments=tuple(segments), raw=data)]

    def _llm_gateway_response(self, data: dict) -> list[Event]:
        if data.get("turn_order") is not None:
            frames.integer(data, "turn_order", "LLMGatewayResponse")
        return []


_HANDLERS = {
    "Begin": AssemblyAICodec._begin,
    "Turn": AssemblyAICodec._turn,
    "SpeechStarted": AssemblyAICodec._speech_started,
    "Termination": AssemblyAICodec._termination,
    "Error": AssemblyAICodec._error,
    "Warning": AssemblyAICodec._warning,
    "Heartbeat": AssemblyAICodec._heartbeat,
    "Silence": AssemblyAICodec._silence,
    "SpeakerRevision": AssemblyAICodec._speaker_revision,
    "LLMGatewayResponse": AssemblyAICodec._llm_gateway_response,
}
