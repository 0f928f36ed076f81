"""AssemblyAI Universal-Streaming ``/v3/ws`` as a server, from
``shared/protocols/assemblyai-streaming-v3.md``.

The upgrade (``parse_query``, ``authenticate``): documented parameters are read with their
types - booleans in any case (the Python SDK sends ``True``), arrays as JSON-encoded strings -
and a value of the wrong type is refused with HTTP 400; unknown names are ignored. The key is
the raw ``Authorization`` header or ``?token=``; it is checked *after* the 101, as the real
service does: a bad or missing key gets an ``Error`` frame, then close 1008.

The session (``AssemblyAICore``, driven by ``shell.SessionShell``) follows u3-rt-pro semantics
whatever ``speech_model`` says: ``Begin`` (id, ``expires_at`` in Unix seconds,
``configuration``); per turn an optional ``SpeechStarted`` (u3 models only), partial ``Turn``
messages (unformatted, words not final, ``end_of_turn_confidence`` 0, ``utterance`` empty) and
a final ``Turn`` (formatted, all words final, ``utterance`` = ``transcript``, confidence 1);
word times are integer milliseconds. ``ForceEndpoint`` finalizes the open turn;
``UpdateConfiguration`` is validated and applied to the session's settings (the engine keeps
its own endpointing); ``KeepAlive`` only resets ``inactivity_timeout``; ``Terminate`` gives the
in-flight turn, ``Termination`` (integer seconds) and close 1000 ``Session Ended``. Audio
chunks must hold 50-1000 ms and must not run ahead of real time by more than the server's burst
allowance (3007 otherwise); bad client JSON closes with 3006. Error closes send an ``Error``
frame with the same code first.
"""

from __future__ import annotations

import functools
import hmac
import json
import re

from websockets.datastructures import Headers

from .context import ConnectionContext
from .core import EngineCall, Job, ProtocolCore
from .engine import EngineResult
from .params import Pairs, QueryError, as_bool, as_choice, as_float, as_int, as_json_list, last
from .pcm import PcmDecoder

PATH = "/v3/ws"
DEFAULT_MODEL = "universal-streaming-english"
SESSION_LIFETIME_S = 3 * 3600
ENCODINGS = {"pcm_s16le": "linear16", "pcm_mulaw": "mulaw"}  # wire name -> decoder name
UNSUPPORTED_ENCODINGS = frozenset({"opus", "ogg_opus", "aac"})
MIN_CHUNK_MS, MAX_CHUNK_MS = 50, 1000
MAX_REASON_BYTES = 123
SEE_ERROR = "See Error message for details"
MISSING_KEY = "Unauthorized Connection: Missing Authorization header"
INVALID_KEY = "Unauthorized Connection: Invalid API key"


def _bool(name: str, value: str) -> bool:
    return as_bool(name, value, any_case=True)


def _int(minimum=None, maximum=None):
    return functools.partial(as_int, minimum=minimum, maximum=maximum)


def _float(minimum=None, maximum=None):
    return functools.partial(as_float, minimum=minimum, maximum=maximum)


def _text(name: str, value: str) -> str:
    return value


def _string_list(name: str, value: str) -> list[str]:
    items = as_json_list(name, value)
    if not all(isinstance(item, str) for item in items):
        raise QueryError(f"Invalid value for {name}: every item must be a string.")
    return items


def _json_object(name: str, value: str) -> dict:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: "{"a":{"a":..." nested too deep
        parsed = None
    if not isinstance(parsed, dict):
        raise QueryError(f"Invalid value for {name}: expected a JSON-encoded object.")
    return parsed


def _encoding(name: str, value: str) -> str:
    if value in UNSUPPORTED_ENCODINGS:
        raise QueryError(
            f"encoding={value} is valid for AssemblyAI but livetx serve decodes only "
            f"{', '.join(sorted(ENCODINGS))}."
        )
    return as_choice(name, value, ENCODINGS)


#: Every documented connection parameter and how to read it from the query string.
QUERY_PARAMS = {
    "speech_model": _text,
    "sample_rate": _int(1),
    "encoding": _encoding,
    "format_turns": _bool,
    "end_of_turn_confidence_threshold": _float(0, 1),
    "min_turn_silence": _int(0),
    "min_end_of_turn_silence_when_confident": _int(0),
    "max_turn_silence": _int(0),
    "vad_threshold": _float(0, 1),
    "keyterms_prompt": _string_list,
    "prompt": _text,
    "language_detection": _bool,
    "language_code": _text,
    "language_codes": _string_list,
    "inactivity_timeout": _int(5, 3600),
    "speaker_labels": _bool,
    "max_speakers": _int(1, 10),
    "filter_profanity": _bool,
    "interruption_delay": _int(0),
    "continuous_partials": _bool,
    "mode": lambda n, v: as_choice(n, v, {"min_latency", "balanced", "max_accuracy"}),
    "turn_left_pad_ms": _int(0),
    "agent_context": _text,
    "session_heartbeat": _bool,
    "acknowledge_silence": _bool,
    "include_partial_turns": _bool,
    "speaker_labels_revision_interval_ms": _int(0),
    "voice_focus": lambda n, v: as_choice(n, v, {"near-field", "far-field"}),
    "voice_focus_threshold": _float(0, 1),
    "domain": _text,
    "redact_pii": _bool,
    "redact_pii_policies": _string_list,
    "redact_pii_sub": _text,
    "webhook_url": _text,
    "webhook_auth_header_name": _text,
    "webhook_auth_header_value": _text,
    "llm_gateway": _json_object,
    "customer_support_audio_capture": _bool,
}

#: What ``UpdateConfiguration`` may change, with the JSON type each field must have.
_NUMBER = (int, float)
UPDATABLE = {
    "prompt": str,
    "keyterms_prompt": list,
    "min_turn_silence": int,
    "max_turn_silence": int,
    "end_of_turn_confidence_threshold": _NUMBER,
    "vad_threshold": _NUMBER,
    "format_turns": bool,
    "filter_profanity": bool,
    "language_codes": list,
    "continuous_partials": bool,
    "interruption_delay": int,
    "agent_context": str,
}


def parse_query(pairs: Pairs) -> dict:
    """The session settings the query asks for; raises ``QueryError`` for a bad value."""
    settings: dict = {"speech_model": DEFAULT_MODEL, "sample_rate": 16000, "encoding": "pcm_s16le"}
    for name, read in QUERY_PARAMS.items():
        value = last(pairs, name)
        if value is not None:
            settings[name] = read(name, value)
    terms = settings.get("keyterms_prompt", [])
    if len(terms) > 100 or any(len(t) > 50 for t in terms):
        raise QueryError("keyterms_prompt allows at most 100 terms of at most 50 characters.")
    return settings


def authenticate(
    headers: Headers, pairs: Pairs, api_key: str | None
) -> tuple[bool, str | None, str]:
    """``(accepted, method, error)``: method ``header`` (raw key) or ``query`` (``?token=``)."""
    header, token = headers.get("Authorization"), last(pairs, "token")
    if header is not None and header.strip():
        method, secret = "header", header.strip()
    elif token:
        method, secret = "query", token
    else:
        method, secret = None, ""
    if api_key is None:
        return True, method, ""
    if method is None:
        return False, None, MISSING_KEY
    if not hmac.compare_digest(secret.encode(), api_key.encode()):
        return False, method, INVALID_KEY
    return True, method, ""


#: ``error`` text of the upgrade refusals the ``refuse_status`` fault sends. AssemblyAI refuses
#: keys after the 101 (``Error`` + 1008); an HTTP refusal is what its SDK handles for "auth,
#: quota, bad request" (a proxy or an older server), so the texts follow its close reasons.
REFUSALS = {
    401: INVALID_KEY,
    402: "Unauthorized Connection: Insufficient balance",
    403: "Unauthorized Connection: This key may not use streaming",
    429: "Unauthorized Connection: Too many concurrent sessions",
    500: "Session Cancelled: An error occurred",
    503: "Service Unavailable: Please try again later",
}


def refusal(status: int) -> str:
    """The ``error`` text of a refused upgrade with HTTP ``status``."""
    return REFUSALS.get(status, f"HTTP {status}")


def is_u3(model: str) -> bool:
    """The u3-rt-pro family (the only models that send ``SpeechStarted``)."""
    return model.startswith(("u3", "universal-3"))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


_TRAILING_PUNCTUATION = re.compile(r"[.,!?;:]+$")


def speaker_label(speaker: int | None) -> str:
    if speaker is None or speaker < 0:
        return "UNKNOWN"
    return chr(ord("A") + speaker) if speaker < 26 else f"S{speaker}"


class AssemblyAICore(ProtocolCore):
    """One ``/v3/ws`` session without I/O (see ``core.ProtocolCore`` for the contract)."""

    protocol = "assemblyai"

    def __init__(self, ctx: ConnectionContext):
        super().__init__(ctx)
        self.settings: dict = dict(ctx.params)
        self.model = self.settings["speech_model"]
        self.rate = self.settings["sample_rate"]
        decoder_encoding = ENCODINGS[self.settings["encoding"]]
        self.decoder = PcmDecoder(decoder_encoding)
        self.bytes_per_s = self.rate * (2 if decoder_encoding == "linear16" else 1)
        self.audio_bytes = 0
        self.first_audio_at: float | None = None
        self.turn_order = 0
        self.stream = None
        # Final turns sent with PENDING words: revised in one SpeakerRevision at the end.
        self.unsettled: list[dict] = []

    def open(self) -> Job:
        if not self.ctx.authorized:
            self.error_close(1008, self.ctx.auth_error, reason=SEE_ERROR)
            return
        language = self.settings.get("language_code") or next(
            iter(self.settings.get("language_codes", [])), None
        )
        self.stream = yield EngineCall(
            functools.partial(self.ctx.engine.open_stream, self.rate, language=language)
        )
        if self.settings.get("keyterms_prompt"):
            yield EngineCall(self.stream.set_keyterms, (tuple(self.settings["keyterms_prompt"]),))
        self.send({
            "type": "Begin",
            "id": self.ctx.request_id,
            "expires_at": int(self.unix_time) + SESSION_LIFETIME_S,
            "configuration": {
                "model": self.model,
                "mode": self.settings.get("mode", "balanced" if is_u3(self.model) else None),
                "api_version": self.ctx.headers.get("assemblyai-version", "1.0.0"),
                "speaker_labels": self.settings.get("speaker_labels", False),
                "redact_pii": self.settings.get("redact_pii", False),
                "filter_profanity": self.settings.get("filter_profanity", False),
                "domain": self.settings.get("domain"),
                "voice_focus": self.settings.get("voice_focus"),
            },
        })  # fmt: skip
        if "inactivity_timeout" in self.settings:
            self.idle_timeout = (
                self.settings["inactivity_timeout"] * self.ctx.options.inactivity_unit_s
            )

    def error_close(self, code: int, text: str, *, reason: str | None = None) -> None:
        """``Error`` frame, then close with the same code (long texts: the generic reason)."""
        # Valid JSON can carry a lone surrogate ({"type": "\ud800"}): quoted back, it could
        # not be encoded in the close reason (UTF-8), so it is shown escaped instead.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if reason is None:
            reason = text if len(text.encode()) <= MAX_REASON_BYTES else SEE_ERROR
        self.close(code, reason, error={"type": "Error", "error_code": code, "error": text})

    def fault_error_frame(self, code: int, reason: str) -> dict | None:
        return None if code == 1000 else {"type": "Error", "error_code": code, "error": reason}

    def internal_error(self) -> None:
        self.error_close(3005, "Session Cancelled: An error occurred")

    # ---------------------------------------------------------------- receiver side
    def on_audio(self, data: bytes) -> None:
        chunk_ms = len(data) * 1000 / self.bytes_per_s
        if not MIN_CHUNK_MS <= chunk_ms <= MAX_CHUNK_MS:
            self.error_close(
                3007,
                f"Input duration violation: {int(chunk_ms)} ms. "
                f"Expected between {MIN_CHUNK_MS} and {MAX_CHUNK_MS} ms",
            )
            return
        if self.first_audio_at is None:
            self.first_audio_at = self.now
        self.audio_bytes += len(data)
        audio_s, wall_s = self.audio_bytes / self.bytes_per_s, self.now - self.first_audio_at
        if self.ctx.options.rate_limit and audio_s > wall_s + self.ctx.options.rate_burst_s:
            self.error_close(
                3007,
                f"Audio Transmission Rate Exceeded: Received {audio_s:.1f} sec. audio "
                f"in {wall_s:.1f} sec",
            )
            return
        self.enqueue("audio", data)

    def on_text(self, text: str, message) -> None:
        if message is None:
            self.error_close(3006, f"Invalid JSON: {text}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.error_close(3006, f"Invalid Message: {text}")
            return
        kind = message["type"]
        if kind == "KeepAlive":
            return  # receiving it already reset the inactivity timer
        if kind == "ForceEndpoint":
            self.enqueue("force_endpoint")
        elif kind == "UpdateConfiguration":
            problem = self._check_update(message)
            if problem:
                self.error_close(3006, f"Invalid Message: {problem}")
                return
            self.settings.update({k: v for k, v in message.items() if k in UPDATABLE})
            if "keyterms_prompt" in message:  # the engine stream learns them in turn
                self.enqueue("keyterms", tuple(message["keyterms_prompt"]))
        elif kind == "Terminate":
            self.ending = True
            self.enqueue("terminate", "client")
        else:
            self.error_close(3006, f"Invalid Message Type: {kind}")

    @staticmethod
    def _check_update(message: dict) -> str:
        for name, value in message.items():
            expected = UPDATABLE.get(name)
            if expected is None:
                continue
            if isinstance(value, bool) and expected is not bool:
                return f"{name} must be {getattr(expected, '__name__', 'a number')}, not a boolean"
            if not isinstance(value, expected):
                return f"{name} has the wrong type ({type(value).__name__})"
            if expected is list and not all(isinstance(v, str) for v in value):
                return f"{name} must be a list of strings"
        return ""

    def on_idle(self) -> None:
        code = self.ctx.options.inactivity_close_code
        if code == 1000:
            self.ending = True
            self.enqueue("terminate", "inactivity")
        else:
            self.error_close(code, "Session Cancelled: Inactivity timeout exceeded")

    # --------------------------------------------------------------- processor side
    def process_audio(self, data: bytes) -> Job:
        (pcm,) = self.decoder.decode(data)
        if pcm:
            self.emit(0, (yield EngineCall(self.stream.feed, (pcm,))))

    def process_control(self, kind: str, payload) -> Job:
        if kind == "force_endpoint":
            self.emit(0, (yield EngineCall(self.stream.flush)))
        elif kind == "keyterms":
            yield EngineCall(self.stream.set_keyterms, (payload,))
        elif kind == "terminate":
            if payload == "client" and not self.client_ended():
                return
            self.emit(0, (yield EngineCall(self.stream.close)))
            if self.unsettled:
                # Late, as observed: the settled speakers of every word sent as PENDING.
                self.send({"type": "SpeakerRevision", "revisions": self.unsettled})
                self.unsettled = []
            self.finish(self.terminal_message(), 1000, "Session Ended")

    def terminal_message(self) -> dict:
        return {
            "type": "Termination",
            "audio_duration_seconds": round(self.audio_bytes / self.bytes_per_s),
            "session_duration_seconds": round(self.elapsed()),
        }

    def is_final_result(self, message: dict) -> bool:
        return message.get("type") == "Turn" and bool(
            message.get("end_of_turn") and message.get("words")
        )

    def on_result(self, channel: int, r: EngineResult) -> bool:
        if not r.words:
            return False  # nothing to say, and the turn (if one is open) goes on
        final = r.kind == "final"
        self.send(self._turn(r, final=final))
        if final:
            self.turn_order += 1
        return final

    def speech_started_message(
        self, channel: int, timestamp: float, confidence: float
    ) -> dict | None:
        if not is_u3(self.model):
            return None
        return {
            "type": "SpeechStarted",
            "timestamp": _ms(timestamp),
            "confidence": round(confidence, 6),
        }

    def _turn(self, r, *, final: bool) -> dict:
        labels = self.settings.get("speaker_labels", False)
        pending = r.extra.get("pending_speakers") or (False,) * len(r.words)
        words = []
        for w, unsettled in zip(r.words, pending, strict=True):
            text = w.text if final else (_TRAILING_PUNCTUATION.sub("", w.text) or w.text)
            item = {
                "start": _ms(w.start),
                "end": _ms(w.end),
                "text": text,
                "confidence": round(w.confidence, 6),
                "word_is_final": final,
            }
            if labels:
                item["speaker"] = "PENDING" if unsettled else speaker_label(w.speaker)
            words.append(item)
        transcript = " ".join(item["text"] for item in words)
        message = {
            "turn_order": self.turn_order,
            "turn_is_formatted": final,
            "end_of_turn": final,
            "transcript": transcript,
            "end_of_turn_confidence": 1 if final else 0,
            "words": words,
            "utterance": transcript if final else "",
        }
        if labels:
            # The turn's label comes from its settled words only (UNKNOWN if none is).
            settled = [w.speaker for w, p in zip(r.words, pending, strict=True) if not p]
            message["speaker_label"] = speaker_label(settled[0]) if settled else "UNKNOWN"
            if final and any(pending):
                self.unsettled.append(self._revision(r, pending))
        if final and self.settings.get("language_detection"):
            codes = self.settings.get("language_codes") or ["en"]
            message["language_code"] = self.settings.get("language_code") or codes[0]
            message["language_confidence"] = 1.0
        message["type"] = "Turn"
        return message

    def _revision(self, r, pending) -> dict:
        """One ``revisions`` entry: this turn's label and its pending words, now settled."""
        return {
            "turn_order": self.turn_order,
            "speaker_label": speaker_label(r.speaker),
            "words": [
                {"text": w.text, "speaker": speaker_label(w.speaker), "start": _ms(w.start),
                 "end": _ms(w.end)}
                for w, unsettled in zip(r.words, pending, strict=True)
                if unsettled
            ],
        }  # fmt: skip
