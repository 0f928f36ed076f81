"""The deterministic recognizer: it "hears" a script of timed words on the audio clock.

Tests of a streaming client need a server whose answers are known in advance and do not depend
on timing, CPU speed or a model. The script engine ignores what the audio *says* and only
counts how much of it arrived: the audio clock is ``bytes received / (sample_rate * 2)``.
As the clock passes the script's times it emits, for each utterance:

* ``speech_started`` when the clock reaches the utterance's first word start;
* one ``partial`` each time the clock passes a word's end, carrying the words so far;
* ``final`` once the clock passes the utterance end plus the endpoint silence
  (``end_of_speech=True``), or earlier when the next utterance starts before that silence
  is over (``end_of_speech=False``: no pause, like a recognizer cutting a long segment).

Because results depend only on the byte count, the same audio bytes give the same results
however they are framed. ``flush()`` finalizes the open utterance with the words covered so
far (the rest of it continues as a new utterance); ``close()`` does the same and stops.

Scripts (a dict, a JSON/YAML file or JSON/YAML text), times in seconds:

* ``{"words": [{"text": "Hello", "start": 0.5, "end": 0.8, "speaker": 0}, ...]}`` - exact
  word times. Utterances are split where the silence between two words reaches the endpoint
  silence, as a recognizer's endpointing would.
* ``{"turns": [{"text": "Hello there.", "start": 0.5, "end": 1.7, "speaker": 0}, ...]}`` - one
  utterance per turn, its words spread evenly over ``[start, end]``.
* ``{"text": "First sentence. Second one."}`` - words placed at a fixed rate from the start of
  the audio: a lead-in of ``LEAD_IN_S``, then ``WORDS_PER_SECOND`` words a second (each
  ``WORD_S`` of speech and the rest of its slot silent), one utterance per sentence with
  ``SENTENCE_PAUSE_S`` of extra silence after each, so every sentence is endpointed.

With no script the engine speaks ``DEFAULT_TEXT`` in the ``text`` way.

A word (``words``) or a turn (``turns``) marked ``"pending": true`` is one whose speaker the
recognizer has not settled while it streams: its results list those words' positions in
``extra["pending_speakers"]`` (one flag per word of the result) and the protocol decides
what to do with them (AssemblyAI sends ``PENDING`` and, at the end, a ``SpeakerRevision``).

Reconnecting clients (``timecode=True``): a client that loses its connection replays the audio
the provider had not finalized on a new connection, and shifts that connection's times by the
audio already covered. A real recognizer hears the replayed speech and answers for it; a
byte-counting engine would start the script over. So the test audio may carry its own
position: ``timecode_pcm`` writes every sample's index into the samples themselves, and with
``timecode=True`` each stream reads the position of its first sample (``read_timecode``) and
hears only the rest of the script, with times relative to its own start, exactly as a
recognizer would. Audio without a timecode starts at 0, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .engine import Engine, EngineResult, EngineStream, EngineWord

#: ``text`` scripts: words per second, the speech part of each word's slot, lead-in, and the
#: extra pause after each sentence (larger than the default endpoint silence).
WORDS_PER_SECOND = 2.5
WORD_S = 0.3
LEAD_IN_S = 0.3
SENTENCE_PAUSE_S = 0.8

#: Silence after an utterance's last word before it is final (and ``speech_final``).
DEFAULT_ENDPOINT_S = 0.5

#: What the engine says when it is given no script (2.6 s of speech, final at 3.1 s).
DEFAULT_TEXT = "Hello from the livetx script engine."

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")

#: ``read_timecode`` checks this many consecutive sample pairs before trusting a timecode.
TIMECODE_PAIRS = 4
TIMECODE_PROBE_BYTES = 2 * 2 * (TIMECODE_PAIRS + 1)  # enough for 4 pairs at any sample parity


def _timecode_value(i: int) -> int:
    """The sample at index ``i``: pair ``i // 2`` in two 15-bit halves, parity in the sign."""
    k = i // 2
    return -1 - ((k >> 15) & 0x7FFF) if i % 2 == 0 else k & 0x7FFF


def timecode_pcm(seconds: float, sample_rate: int = 16000, *, start_s: float = 0.0) -> bytes:
    """s16le mono audio whose samples encode their own index (see the module docstring).

    It sounds like loud noise; only the script engine with ``timecode=True`` reads it. Indexes
    up to 2**31 (37 hours at 16 kHz) are unambiguous.
    """
    import numpy as np

    first = round(start_s * sample_rate)
    i = np.arange(first, first + round(seconds * sample_rate), dtype=np.int64)
    k = i // 2
    values = np.where(i % 2 == 0, -1 - ((k >> 15) & 0x7FFF), k & 0x7FFF)
    return values.astype("<i2").tobytes()


def read_timecode(pcm: bytes) -> int | None:
    """The index of the first sample of ``pcm`` if it is ``timecode_pcm`` audio, else ``None``."""
    n = min(len(pcm) // 2, 2 * TIMECODE_PAIRS + 1)
    samples = [int.from_bytes(pcm[2 * j : 2 * j + 2], "little", signed=True) for j in range(n)]
    for parity in (0, 1):  # where the first even-index sample (the negative one) is
        if parity + 2 * TIMECODE_PAIRS > n:
            return None
        hi, lo = samples[parity], samples[parity + 1]
        if hi >= 0 or lo < 0:
            continue
        first = 2 * (((-1 - hi) << 15) | lo) - parity
        checked = range(parity + 2 * TIMECODE_PAIRS)
        if all(samples[j] == _timecode_value(first + j) for j in checked):
            return first
    return None


@dataclass(frozen=True)
class Script:
    """Utterances, each a non-empty tuple of words in time order; ``pending`` has one tuple of
    flags per utterance (a word whose speaker is not settled while streaming), or is empty
    when no word is pending."""

    utterances: tuple[tuple[EngineWord, ...], ...]
    pending: tuple[tuple[bool, ...], ...] = ()

    def pending_of(self, utterance: int) -> tuple[bool, ...]:
        if not self.pending:
            return (False,) * len(self.utterances[utterance])
        return self.pending[utterance]

    @property
    def words(self) -> tuple[EngineWord, ...]:
        return tuple(w for u in self.utterances for w in u)


def load_script(source: Any = None, *, endpoint_s: float = DEFAULT_ENDPOINT_S) -> Script:
    """Build a ``Script`` from a dict, a ``Path``/path string to .json/.yaml/.yml, or the text
    of a JSON/YAML document. ``None`` gives the default script."""
    if source is None:
        return script_from_data({"text": DEFAULT_TEXT}, endpoint_s=endpoint_s)
    if isinstance(source, Script):
        return source
    if isinstance(source, Mapping):
        return script_from_data(source, endpoint_s=endpoint_s)
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(source)
        if not path.is_file():
            raise ConfigurationError(f"script file {str(path)!r} not found.")
        return script_from_data(
            _parse_document(path.read_text(), path.suffix), endpoint_s=endpoint_s
        )
    if isinstance(source, str):
        return script_from_data(_parse_document(source, ""), endpoint_s=endpoint_s)
    raise ConfigurationError(
        f"script must be a dict, a path to a JSON/YAML file or JSON/YAML text, "
        f"not {type(source).__name__}."
    )


def _looks_like_path(text: str) -> bool:
    stripped = text.strip()
    return (
        bool(stripped)
        and stripped[0] not in "{["
        and "\n" not in stripped
        and (stripped.endswith((".json", ".yaml", ".yml")) or Path(stripped).exists())
    )


def _parse_document(text: str, suffix: str) -> Any:
    if suffix.lower() != ".json" and not text.lstrip().startswith(("{", "[")):
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is in the server extra
            raise ConfigurationError(
                "YAML scripts need pyyaml: pip install 'livetx-widgets[server]'."
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"script is not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"script is not valid JSON: {exc}") from None


def script_from_data(data: Any, *, endpoint_s: float = DEFAULT_ENDPOINT_S) -> Script:
    """Validate a parsed script document and lay its words out in time."""
    if not isinstance(data, Mapping):
        raise ConfigurationError("a script must be a mapping with 'words', 'turns' or 'text'.")
    kinds = [k for k in ("words", "turns", "text") if k in data]
    if len(kinds) != 1:
        raise ConfigurationError(
            "a script needs exactly one of 'words', 'turns' or 'text' "
            f"(got {sorted(data) or 'nothing'})."
        )
    kind = kinds[0]
    flags: list[bool] = []  # per word, in script order
    if kind == "words":
        words, flags = _read_words(data["words"])
        utterances = _split_at_pauses(words, endpoint_s)
    elif kind == "turns":
        utterances, flags = _read_turns(data["turns"])
    else:
        utterances = _layout_text(data["text"])
    if not utterances:
        raise ConfigurationError(f"the script's {kind!r} is empty.")
    pending: list[tuple[bool, ...]] = []
    if any(flags):
        at = 0
        for u in utterances:
            pending.append(tuple(flags[at : at + len(u)]))
            at += len(u)
    return Script(tuple(tuple(u) for u in utterances), tuple(pending))


def _number(where: str, item: Mapping, key: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(
            f"script {where}.{key} must be a number >= 0 (seconds), got {value!r}."
        )
    return float(value)


def _text(where: str, item: Any) -> str:
    if not isinstance(item, Mapping):
        raise ConfigurationError(f"script {where} must be a mapping, got {item!r}.")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"script {where}.text must be a non-empty string.")
    return text.strip()


def _speaker(where: str, item: Mapping) -> int | None:
    speaker = item.get("speaker")
    if speaker is not None and (isinstance(speaker, bool) or not isinstance(speaker, int)):
        raise ConfigurationError(f"script {where}.speaker must be an integer, got {speaker!r}.")
    return speaker


def _pending(where: str, item: Mapping) -> bool:
    value = item.get("pending", False)
    if not isinstance(value, bool):
        raise ConfigurationError(f"script {where}.pending must be true or false, got {value!r}.")
    return value


def _read_words(items: Any) -> tuple[list[EngineWord], list[bool]]:
    if not isinstance(items, list):
        raise ConfigurationError("script 'words' must be a list.")
    words: list[EngineWord] = []
    flags: list[bool] = []
    for i, item in enumerate(items):
        where = f"words[{i}]"
        text = _text(where, item)
        start, end = _number(where, item, "start"), _number(where, item, "end")
        if end < start:
            raise ConfigurationError(f"script {where} ends ({end}) before it starts ({start}).")
        if words and start < words[-1].start:
            raise ConfigurationError(f"script {where} starts before the word before it.")
        confidence = item.get("confidence", 1.0)
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise ConfigurationError(f"script {where}.confidence must be a number.")
        words.append(EngineWord(text, start, end, float(confidence), _speaker(where, item)))
        flags.append(_pending(where, item))
    return words, flags


def _split_at_pauses(words: list[EngineWord], endpoint_s: float) -> list[list[EngineWord]]:
    utterances: list[list[EngineWord]] = []
    for word in words:
        if utterances and word.start - utterances[-1][-1].end < endpoint_s:
            utterances[-1].append(word)
        else:
            utterances.append([word])
    return utterances


def _read_turns(items: Any) -> tuple[list[list[EngineWord]], list[bool]]:
    if not isinstance(items, list):
        raise ConfigurationError("script 'turns' must be a list.")
    utterances: list[list[EngineWord]] = []
    flags: list[bool] = []
    previous_end = 0.0
    for i, item in enumerate(items):
        where = f"turns[{i}]"
        text = _text(where, item)
        start, end = _number(where, item, "start"), _number(where, item, "end")
        if end <= start:
            raise ConfigurationError(f"script {where} must end after it starts.")
        if start < previous_end:
            raise ConfigurationError(f"script {where} starts before the previous turn ends.")
        previous_end = end
        tokens = text.split()
        slot = (end - start) / len(tokens)
        speaker = _speaker(where, item)
        utterances.append(
            [
                EngineWord(
                    tok,
                    round(start + k * slot, 6),
                    round(start + (k + 1) * slot, 6),
                    speaker=speaker,
                )
                for k, tok in enumerate(tokens)
            ]
        )
        flags.extend([_pending(where, item)] * len(tokens))
    return utterances, flags


def _layout_text(text: Any) -> list[list[EngineWord]]:
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("script 'text' must be a non-empty string.")
    slot = 1.0 / WORDS_PER_SECOND
    t = LEAD_IN_S
    utterances = []
    for sentence in _SENTENCE_END.split(text.strip()):
        tokens = sentence.split()
        if not tokens:
            continue
        words = []
        for tok in tokens:
            words.append(EngineWord(tok, round(t, 6), round(t + WORD_S, 6)))
            t += slot
        utterances.append(words)
        t += SENTENCE_PAUSE_S
    return utterances


class ScriptEngine(Engine):
    """Engine that replays a script; see the module docstring for the timing rules."""

    name = "script"

    def __init__(self, script: Any = None, *, endpoint_s: float = DEFAULT_ENDPOINT_S,
                 timecode: bool = False):  # fmt: skip
        if endpoint_s < 0:
            raise ConfigurationError("endpoint_s must be >= 0 seconds.")
        self.endpoint_s = endpoint_s
        self.timecode = bool(timecode)
        self.script = load_script(script, endpoint_s=endpoint_s)

    def open_stream(self, sample_rate: int, *, language: str | None = None) -> ScriptStream:
        if sample_rate <= 0:
            raise ConfigurationError(f"sample_rate must be positive, not {sample_rate}.")
        return ScriptStream(self.script, sample_rate, self.endpoint_s, timecode=self.timecode)

    def close(self) -> None:
        """Nothing to release: the script is plain data."""


class ScriptStream(EngineStream):
    """One stream's position in the script.

    State: utterance ``_u``; words ``[_base, _covered)`` of it are heard and not yet
    finalized; ``_started`` once ``speech_started`` was emitted for the words from ``_base``.
    With ``timecode``, ``_head`` collects the first bytes until the stream's position in the
    recording is known (``_located``); nothing is emitted before that.
    """

    def __init__(self, script: Script, sample_rate: int, endpoint_s: float, *,
                 timecode: bool = False):  # fmt: skip
        self._script = script
        self._utts = script.utterances
        self._rate = sample_rate
        self._located = not timecode
        self._head = b""
        self._bytes_per_s = sample_rate * 2
        self._endpoint = endpoint_s
        self._bytes = 0
        self._u = 0
        self._base = 0
        self._covered = 0
        self._started = False
        self._closed = False

    @property
    def clock(self) -> float:
        """Seconds of audio received so far."""
        return self._bytes / self._bytes_per_s

    def feed(self, pcm: bytes) -> list[EngineResult]:
        if self._closed:
            raise RuntimeError("feed() after close()")
        self._bytes += len(pcm)
        if not self._located:
            self._head += pcm
            if len(self._head) < TIMECODE_PROBE_BYTES:
                return []
            self._locate(read_timecode(self._head))
        return self._advance(self.clock)

    def _locate(self, first_sample: int | None) -> None:
        """Hear the script from ``first_sample`` on, on this stream's own clock.

        Words that started before the stream's first sample were heard by an earlier stream
        (the client replays from the end of its last final): they are not heard again.
        """
        self._located, self._head = True, b""
        origin = (first_sample or 0) / self._rate
        if origin <= 0:
            return
        shifted = []
        for utterance in self._utts:
            words = tuple(
                EngineWord(
                    w.text,
                    round(w.start - origin, 6),
                    round(w.end - origin, 6),
                    w.confidence,
                    w.speaker,
                )
                for w in utterance
                if w.start >= origin - 1e-6
            )
            if words:
                shifted.append(words)
        self._utts = tuple(shifted)

    def flush(self) -> list[EngineResult]:
        if not self._located:  # less audio than a timecode probe: it starts at 0
            self._locate(read_timecode(self._head))
        if self._closed or self._u >= len(self._utts) or self._covered == self._base:
            return []
        words = self._utts[self._u]
        result = self._final(self._base, self._covered, end_of_speech=False)
        if self._covered == len(words):
            self._next_utterance()
        else:
            self._base = self._covered
            self._started = False
        return [result]

    def close(self) -> list[EngineResult]:
        results = self.flush()
        self._closed = True
        return results

    def _advance(self, clock: float) -> list[EngineResult]:
        out: list[EngineResult] = []
        # Each pass emits one result and moves the state forward, or stops: at most three
        # passes per word, so the loop is bounded by the script's length.
        for _ in range(3 * len(self._utts) + 3 * sum(len(u) for u in self._utts) + 1):
            if self._u >= len(self._utts):
                break
            words = self._utts[self._u]
            if not self._started:
                first = words[self._base]
                if clock < first.start:
                    break
                self._started = True
                out.append(
                    EngineResult("speech_started", first.start, first.start, speaker=first.speaker)
                )
            elif self._covered < len(words):
                if clock < words[self._covered].end:
                    break
                self._covered += 1
                heard = words[self._base : self._covered]
                out.append(
                    EngineResult(
                        "partial",
                        heard[0].start,
                        heard[-1].end,
                        heard,
                        end_of_speech=False,
                        speaker=heard[0].speaker,
                        extra=self._extra(self._base, self._covered),
                    )
                )
            else:
                due, pause_followed = self._final_due()
                if clock < due:
                    break
                out.append(self._final(self._base, len(words), end_of_speech=pause_followed))
                self._next_utterance()
        return out

    def _final_due(self) -> tuple[float, bool]:
        """When the current utterance becomes final, and whether a full pause preceded that."""
        end = self._utts[self._u][-1].end
        due = end + self._endpoint
        if self._u + 1 < len(self._utts):
            next_start = self._utts[self._u + 1][0].start
            if next_start < due:
                return next_start, False
        return due, True

    def _final(self, first: int, stop: int, *, end_of_speech: bool) -> EngineResult:
        """The final for words ``[first, stop)`` of the current utterance."""
        words = self._utts[self._u][first:stop]
        confidence = min(w.confidence for w in words)
        return EngineResult(
            "final",
            words[0].start,
            words[-1].end,
            words,
            end_of_speech=end_of_speech,
            confidence=confidence,
            speaker=words[0].speaker,
            extra=self._extra(first, stop),
        )

    def _extra(self, first: int, stop: int) -> dict:
        """``{"pending_speakers": flags}`` for words ``[first, stop)`` when any is pending."""
        flags = self._script.pending_of(self._u)[first:stop]
        return {"pending_speakers": flags} if any(flags) else {}

    def _next_utterance(self) -> None:
        self._u += 1
        self._base = self._covered = 0
        self._started = False
