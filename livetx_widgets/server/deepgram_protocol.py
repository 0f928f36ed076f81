"""Deepgram ``/v1/listen`` as a server, written from ``shared/protocols/deepgram-live-v1.md``.

What the upgrade decides (``parse_query``, ``authenticate``): every documented
query parameter is read with its type (HTTP 400 ``INVALID_QUERY_PARAMETER`` otherwise; unknown
names are ignored); credentials come from ``Authorization: Token|Bearer KEY`` (scheme in any
case) or the ``token, KEY`` subprotocol, whose first element is echoed; the app refuses with
HTTP 401, a ``dg-error`` header and Deepgram's JSON body (``refusal_body``). Every response
carries ``dg-request-id``.

What the session does (``DeepgramCore``, driven by ``shell.SessionShell``): no greeting;
interim ``Results`` (``interim_results=true``) as the engine's partials arrive, each restating
the whole segment; a final ``Results`` per engine final, ``speech_final`` when a pause ended it
(and endpointing is on) or when ``Finalize`` produced it (then also ``from_finalize``);
segments tile the audio (each starts where the previous final ended). ``SpeechStarted`` with
``vad_events``; ``UtteranceEnd`` when ``utterance_end_ms`` of audio passed after the last word
(needs ``interim_results``). ``CloseStream`` (or a zero-length binary frame, its legacy form)
gives the remaining finals, ``Metadata`` and close 1000. No client frame for ``idle_timeout_s``
(10 s) -> close 1011 ``NET-0001``. Unknown or unparseable text -> ``Error`` ``SchemaError``,
session stays open. Times are float seconds on the audio clock. Audio:
linear16/linear32/mulaw/alaw raw (with ``encoding`` and ``sample_rate``), or a 16-bit WAV file
when ``encoding`` is absent; anything else closes 1008 ``DATA-0000``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from websockets.datastructures import Headers

from .context import ConnectionContext
from .core import EngineCall, Job, ProtocolCore, logger
from .engine import EngineResult, EngineStream, EngineWord
from .params import Pairs, QueryError, as_bool, as_choice, as_int, every, last
from .pcm import SAMPLE_WIDTH, PcmDecoder, WavHeaderError, parse_wav_header

PATH = "/v1/listen"

BOOL_PARAMS = (
    "multichannel", "punctuate", "smart_format", "interim_results", "vad_events", "diarize",
    "numerals", "profanity_filter", "dictation", "filler_words", "detect_entities", "mip_opt_out",
)  # fmt: skip
ENCODINGS = frozenset({
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus",
    "speex", "g729",
})  # fmt: skip
REDACT_VALUES = frozenset({"true", "false", "pci", "numbers", "aggressive_numbers", "ssn"})
DEFAULT_ENDPOINTING_MS = 10
#: With ``utterance_end_ms``, the gap after the last word is checked every 20 ms of audio.
UTTERANCE_END_STEP_S = 0.02
INVALID_AUTH = "Invalid credentials."


#: Most audio channels one session decodes. Deepgram documents no limit; one engine stream is
#: opened per channel with ``multichannel``, so ``channels=999999999999`` must be refused at the
#: upgrade (HTTP 400) rather than open streams until the server runs out of memory.
MAX_CHANNELS = 32


@dataclass(frozen=True)
class DeepgramParams:
    """The query of one ``/v1/listen`` connection, typed. ``flags`` holds the other booleans."""

    model: str | None = None
    language: str = "en"
    encoding: str | None = None
    sample_rate: int | None = None
    channels: int = 1
    multichannel: bool = False
    punctuate: bool = False
    smart_format: bool = False
    interim_results: bool = False
    endpointing_ms: int | None = DEFAULT_ENDPOINTING_MS  # None: endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    diarize: bool = False
    keyterms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)

    @property
    def formatted(self) -> bool:
        """Punctuation and casing requested (``punctuate`` or ``smart_format``)."""
        return self.punctuate or self.smart_format


def parse_query(pairs: Pairs) -> DeepgramParams:
    """Read the documented parameters; raise ``QueryError`` for a value Deepgram would refuse."""
    flags = {name: as_bool(name, v) for name in BOOL_PARAMS if (v := last(pairs, name)) is not None}
    encoding = last(pairs, "encoding")
    if encoding is not None:
        as_choice("encoding", encoding, ENCODINGS)
        if encoding not in SAMPLE_WIDTH:
            raise QueryError(
                f"encoding={encoding} is valid for Deepgram but livetx serve decodes only "
                f"{', '.join(sorted(SAMPLE_WIDTH))} (or a WAV file with no encoding)."
            )
    sample_rate = _opt_int(pairs, "sample_rate", minimum=1)
    if encoding is not None and sample_rate is None:
        raise QueryError("sample_rate is required when encoding is given.")
    endpointing: int | None = DEFAULT_ENDPOINTING_MS
    raw = last(pairs, "endpointing")
    if raw is not None:
        if raw in ("true", "false"):
            endpointing = DEFAULT_ENDPOINTING_MS if raw == "true" else None
        else:
            endpointing = as_int("endpointing", raw, minimum=0)
    for value in every(pairs, "redact"):
        as_choice("redact", value, REDACT_VALUES)
    if (method := last(pairs, "callback_method")) is not None:
        as_choice("callback_method", method.upper(), {"POST", "PUT"})
    diarize_model = last(pairs, "diarize_model")
    if diarize_model is not None and diarize_model not in ("v1", "latest"):
        raise QueryError(
            f"Invalid value for diarize_model: {diarize_model!r}; streaming supports v1, latest."
        )
    extra = {}
    for item in every(pairs, "extra"):
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise QueryError(f"Invalid value for extra: {item!r}; expected key:value.")
        extra[key] = value
    language = last(pairs, "language") or "en"
    return DeepgramParams(
        model=last(pairs, "model"),
        language=language,
        encoding=encoding,
        sample_rate=sample_rate,
        channels=_opt_int(pairs, "channels", minimum=1, maximum=MAX_CHANNELS) or 1,
        multichannel=flags.get("multichannel", False),
        punctuate=flags.get("punctuate", False),
        smart_format=flags.get("smart_format", False),
        interim_results=flags.get("interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=_opt_int(pairs, "utterance_end_ms", minimum=0),
        vad_events=flags.get("vad_events", False),
        diarize=flags.get("diarize", False) or diarize_model is not None,
        keyterms=tuple(every(pairs, "keyterm")),
        keywords=tuple(every(pairs, "keywords")),
        redact=tuple(every(pairs, "redact")),
        extra=extra,
        flags=flags,
    )


def _opt_int(pairs: Pairs, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = last(pairs, name)
    return None if value is None else as_int(name, value, minimum=minimum, maximum=maximum)


def offered_subprotocols(headers: Headers) -> list[str]:
    values = ",".join(headers.get_all("Sec-WebSocket-Protocol"))
    return [p.strip() for p in values.split(",") if p.strip()]


def select_subprotocol(offered: list[str]) -> str | None:
    """Echo ``token``/``bearer`` when the client authenticates by subprotocol (browsers)."""
    if len(offered) >= 2 and offered[0].lower() in ("token", "bearer"):
        return offered[0]
    return None


def authenticate(headers: Headers, api_key: str | None) -> tuple[bool, str | None]:
    """``(accepted, method)``; method is ``token``, ``bearer``, ``subprotocol`` or ``None``.

    Every credential presented is tried; ``api_key=None`` accepts anything, even nothing.
    """
    presented: list[tuple[str, str]] = []
    header = headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and secret.strip():
            presented.append((scheme.lower(), secret.strip()))
        else:
            presented.append(("invalid", ""))
    offered = offered_subprotocols(headers)
    if select_subprotocol(offered):
        presented.append(("subprotocol", offered[1]))
    method = presented[0][0] if presented else None
    if api_key is None:
        return True, method
    for how, secret in presented:
        if secret and hmac.compare_digest(secret.encode(), api_key.encode()):
            return True, how
    return False, method


#: ``(err_code, err_msg)`` of the upgrade refusals the ``refuse_status`` fault sends. Deepgram
#: documents INVALID_AUTH and FORBIDDEN; for the other statuses the code names the status.
REFUSALS = {
    401: ("INVALID_AUTH", INVALID_AUTH),
    402: ("PAYMENT_REQUIRED", "Project does not have enough balance."),
    403: ("FORBIDDEN", "Insufficient permissions."),
    429: ("TOO_MANY_REQUESTS", "Too many concurrent requests. Please try again later."),
    500: ("INTERNAL_SERVER_ERROR", "Internal server error."),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable. Please try again later."),
}


def refusal(status: int) -> tuple[str, str]:
    """``(err_code, err_msg)`` for a refused upgrade with HTTP ``status``."""
    if status in REFUSALS:
        return REFUSALS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP_{status}", f"HTTP {status}."
    return phrase.upper().replace(" ", "_").replace("-", "_"), f"{phrase}."


def refusal_body(err_code: str, err_msg: str, request_id: str) -> dict:
    """Deepgram's JSON body of a refused upgrade (its ``err_msg`` also goes in ``dg-error``)."""
    return {"err_code": err_code, "err_msg": err_msg, "request_id": request_id}


def _seconds(value: float) -> float:
    return round(float(value), 6)


_EDGE_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


def _raw_word(text: str) -> str:
    """Deepgram's ``word``: lower case, no surrounding punctuation."""
    return _EDGE_PUNCTUATION.sub("", text.lower()) or text.lower()


@dataclass
class _Channel:
    """Per-channel stream and timing state (one per channel with ``multichannel=true``)."""

    stream: EngineStream
    pcm_bytes: int = 0  # s16le mono bytes fed to the engine
    seg_start: float = 0.0  # where the next segment starts (end of the previous final)
    last_word_end: float | None = None
    utterance_end_pending: bool = False


class DeepgramCore(ProtocolCore):
    """One ``/v1/listen`` session without I/O (see ``core.ProtocolCore`` for the contract)."""

    protocol = "deepgram"

    def __init__(self, ctx: ConnectionContext):
        super().__init__(ctx)
        self.p: DeepgramParams = ctx.params
        self.idle_timeout = ctx.options.idle_timeout_s
        self.sha256 = hashlib.sha256()
        self.decoder: PcmDecoder | None = None
        self.rate = self.p.sample_rate or 16000
        self.chans: list[_Channel] = []
        self.total = self.p.channels if self.p.multichannel else 1
        self.keyterms = list(self.p.keyterms)
        #: Final results made so far (``Finalize`` answers with an empty final if it made none).
        self.finals_made = 0
        engine = ctx.engine.name or type(ctx.engine).__name__
        model = self.p.model or "general"
        self.model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"livetx:{engine}:{model}"))
        self.model_info = {"name": model, "version": f"livetx-{engine}", "arch": engine}

    @property
    def created(self) -> str:
        """``Metadata.created``: the session's start, UTC, milliseconds, ``Z``."""
        moment = datetime.fromtimestamp(self.unix_time, timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # ---------------------------------------------------------------- receiver side
    def on_audio(self, data: bytes) -> None:
        if not data:  # legacy CloseStream
            self.ending = True
            self.enqueue("close")
            return
        self.sha256.update(data)
        self.enqueue("audio", data)

    def on_text(self, text: str, message) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self._schema_error(text, "expected a JSON object with a string 'type'")
            return
        kind = message["type"]
        if kind == "KeepAlive":
            return
        if kind == "Finalize":
            channel = message.get("channel")
            valid = isinstance(channel, int) and not isinstance(channel, bool)
            if channel is not None and not (valid and 0 <= channel < self.total):
                self._schema_error(text, f"Finalize channel must be 0..{self.total - 1}")
                return
            self.enqueue("finalize", channel)
        elif kind == "CloseStream":
            self.ending = True
            self.enqueue("close")
        elif kind == "Configure":
            terms = message.get("keyterms")
            if terms is not None and not (
                isinstance(terms, list) and all(isinstance(t, str) for t in terms)
            ):
                self._schema_error(text, "Configure keyterms must be a list of strings")
                return
            self.enqueue("configure", terms)
        else:
            self._schema_error(text, f"unknown message type {kind!r}")

    def _schema_error(self, text: str, description: str) -> None:
        self.send(
            {"type": "Error", "variant": "SchemaError", "description": description, "message": text}
        )

    def on_idle(self) -> None:
        self.close(1011, "NET-0001")

    def internal_error(self) -> None:
        self.close(1011, "NET-0000")

    def is_final_result(self, message: dict) -> bool:
        if message.get("type") != "Results" or not message.get("is_final"):
            return False
        alternatives = message["channel"]["alternatives"]
        return bool(alternatives and alternatives[0]["words"])

    def terminal_message(self) -> dict:
        return self._metadata()

    # --------------------------------------------------------------- processor side
    def process_audio(self, data: bytes) -> Job:
        if self.decoder is None:
            data = yield from self._start_audio(data)
            if data is None:
                return
        for i, pcm in enumerate(self.decoder.decode(data)):
            yield from self._feed(i, pcm)

    def _feed(self, i: int, pcm: bytes) -> Job:
        """Feed channel ``i`` and send ``UtteranceEnd`` when it falls due.

        With ``utterance_end_ms`` on, the audio is fed in pieces that end on a fixed grid of the
        audio clock (``UTTERANCE_END_STEP_S``) and at the exact due points, so the check runs at
        the same clock positions, and gives the same messages in the same order, however the
        client framed its audio and however many frames were joined while the engine was busy.
        """
        ch = self.chans[i]
        step = self._utterance_end_step
        while pcm:  # each pass consumes audio, or sends the due UtteranceEnd (then none is due)
            due = self._utterance_end_due(ch)
            if due is not None and due <= ch.pcm_bytes:
                self._send_utterance_end(i)
                continue
            cut = len(pcm)
            if step:
                cut = min(cut, step - ch.pcm_bytes % step)
            if due is not None:
                cut = min(cut, due - ch.pcm_bytes)
            part, pcm = pcm[:cut], pcm[cut:]
            results = yield EngineCall(ch.stream.feed, (part,))
            ch.pcm_bytes += len(part)
            self.emit(i, results)
        due = self._utterance_end_due(ch)
        if due is not None and due <= ch.pcm_bytes:
            self._send_utterance_end(i)

    @property
    def _utterance_end_step(self) -> int:
        """Bytes between UtteranceEnd checks (0: UtteranceEnd is off)."""
        if self.p.utterance_end_ms is None or not self.p.interim_results:
            return 0
        return 2 * max(1, round(UTTERANCE_END_STEP_S * self.rate))

    def _start_audio(self, data: bytes) -> Generator[EngineCall, Any, bytes | None]:
        """Settle the format on the first audio frame and open one engine stream per output."""
        encoding, channels = self.p.encoding, self.p.channels
        if encoding is None:
            try:
                self.rate, channels, offset = parse_wav_header(data)
            except WavHeaderError as exc:
                logger.info("deepgram session %d: undecodable audio: %s", self.ctx.index, exc)
                self.close(1008, "DATA-0000")
                return None
            encoding, data = "linear16", data[offset:]
            self.total = channels if self.p.multichannel else 1
        self.decoder = PcmDecoder(encoding, channels, split=self.p.multichannel and channels > 1)
        open_stream = functools.partial(
            self.ctx.engine.open_stream, self.rate, language=self.p.language
        )
        for _ in range(self.decoder.outputs):
            self.chans.append(_Channel((yield EngineCall(open_stream))))
            if self.keyterms:  # the query's keyterm=, or a Configure before the first audio
                yield EngineCall(self.chans[-1].stream.set_keyterms, (tuple(self.keyterms),))
        return data

    def process_control(self, kind: str, payload) -> Job | None:
        if kind == "finalize":
            return self._finalize(payload)
        if kind == "close":
            return self._end()
        if kind == "configure":
            return self._configure(payload)
        return None

    def _configure(self, terms: list[str] | None) -> Job:
        """``Configure``: the new keyterms reach every open engine stream, then the answer."""
        if terms is not None:
            self.keyterms = list(terms)
            for ch in self.chans:
                yield EngineCall(ch.stream.set_keyterms, (tuple(self.keyterms),))
        self.send(
            {"type": "ConfigureSuccess", "request_id": self.ctx.request_id,
             "keyterms": self.keyterms}
        )  # fmt: skip

    def _end(self) -> Job:
        if not self.client_ended():
            return
        for i, ch in enumerate(self.chans):
            self.emit(i, (yield EngineCall(ch.stream.close)))
        self.finish(self._metadata(), 1000, "")

    def _finalize(self, channel: int | None) -> Job:
        targets = range(self.total) if channel is None else [channel]
        for i in targets:
            finals = self.finals_made
            if i < len(self.chans):
                results = yield EngineCall(self.chans[i].stream.flush)
                self.emit(i, results, from_finalize=True)
            if self.finals_made == finals:  # nothing buffered: still acknowledge, empty final
                ch = self.chans[i] if i < len(self.chans) else None
                start = ch.seg_start if ch else 0.0
                end = self._clock(ch) if ch else 0.0
                self.send(
                    self._results(
                        i,
                        start,
                        max(end, start),
                        (),
                        1.0,
                        is_final=True,
                        speech_final=True,
                        from_finalize=True,
                    )
                )
                if ch:
                    ch.seg_start = max(end, start)

    # -------------------------------------------------------------------- messages
    def on_result(self, i: int, r: EngineResult, from_finalize: bool = False) -> bool:
        ch = self.chans[i]
        start = min(ch.seg_start, r.words[0].start) if r.words else ch.seg_start
        end = max(r.end, start, *(w.end for w in r.words))
        final = r.kind != "partial"
        if final or self.p.interim_results:
            speech_final = final and (
                from_finalize or (r.end_of_speech and self.p.endpointing_ms is not None)
            )
            self.send(
                self._results(
                    i,
                    start,
                    end,
                    r.words,
                    r.confidence,
                    is_final=final,
                    speech_final=speech_final,
                    from_finalize=final and from_finalize,
                )
            )
        if final:
            ch.seg_start = end
            self.finals_made += 1
        if r.words and (ch.last_word_end is None or r.words[-1].end > ch.last_word_end):
            ch.last_word_end = r.words[-1].end
            ch.utterance_end_pending = True
        return final

    def speech_started_message(self, i: int, timestamp: float, confidence: float) -> dict | None:
        if not self.p.vad_events:
            return None
        return {
            "type": "SpeechStarted",
            "channel": [i, self.total],
            "timestamp": _seconds(timestamp),
        }

    def _utterance_end_due(self, ch: _Channel) -> int | None:
        """Byte position of the channel's audio at which an ``UtteranceEnd`` is due, if any."""
        gap_ms = self.p.utterance_end_ms
        if gap_ms is None or not self.p.interim_results or not ch.utterance_end_pending:
            return None
        return 2 * math.ceil(round((ch.last_word_end + gap_ms / 1000) * self.rate, 6))

    def _send_utterance_end(self, i: int) -> None:
        ch = self.chans[i]
        ch.utterance_end_pending = False
        self.send(
            {
                "type": "UtteranceEnd",
                "channel": [i, self.total],
                "last_word_end": _seconds(ch.last_word_end),
            }
        )

    def _clock(self, ch: _Channel) -> float:
        return ch.pcm_bytes / (2 * self.rate)

    def _results(
        self, i: int, start: float, end: float, words: tuple[EngineWord, ...],
        confidence: float, *, is_final: bool, speech_final: bool, from_finalize: bool,
    ) -> dict:  # fmt: skip
        out_words = []
        for w in words:
            item = {
                "word": _raw_word(w.text),
                "start": _seconds(w.start),
                "end": _seconds(w.end),
                "confidence": round(w.confidence, 6),
            }
            if self.p.diarize:
                item["speaker"] = w.speaker if w.speaker is not None else 0
            if self.p.formatted:
                item["punctuated_word"] = w.text
            out_words.append(item)
        key = "punctuated_word" if self.p.formatted else "word"
        transcript = " ".join(item[key] for item in out_words)
        return {
            "type": "Results",
            "channel_index": [i, self.total],
            "duration": _seconds(end - start),
            "start": _seconds(start),
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {"alternatives": [
                {"transcript": transcript, "confidence": round(confidence, 6), "words": out_words}
            ]},
            "metadata": {"request_id": self.ctx.request_id, "model_info": self.model_info,
                         "model_uuid": self.model_uuid},
            "from_finalize": from_finalize,
        }  # fmt: skip

    def _metadata(self) -> dict:
        duration = self._clock(self.chans[0]) if self.chans else 0.0
        message = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.ctx.request_id,
            "sha256": self.sha256.hexdigest(),
            "created": self.created,
            "duration": _seconds(duration),
            "channels": self.decoder.channels if self.decoder else 0,
            "models": [self.model_uuid],
            "model_info": {self.model_uuid: self.model_info},
        }
        if self.p.extra:
            message["extra"] = dict(self.p.extra)
        return message
