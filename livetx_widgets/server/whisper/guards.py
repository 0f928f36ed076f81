"""Guards against Whisper's known failure modes, as pure functions of decoded text and scores.

Whisper invents text on silence, music or noise ("Thanks for watching!"), and with a too-short
encoder window it loops ("Yes. Yes. Yes."). The recognizer uses the loop checks to retry or drop
a decode; the engine uses the artefact check to drop a final or a partial. Nothing here needs
the model, so the rules are tested on strings.
"""

from __future__ import annotations

import zlib

__all__ = [
    "compression_ratio",
    "doubles_itself",
    "is_artefact",
    "normalize_text",
    "repeats_itself",
]

# Whisper's favourite inventions on silence, music or noise (normalized: lowercase, no
# punctuation). "Always" ones are dropped whenever they are the whole final; "suspect" ones only
# when the decoder itself was not confident the audio held speech.
ALWAYS_ARTEFACTS = frozenset(
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
SUSPECT_ARTEFACTS = frozenset(
    {"thank you", "thanks", "you", "bye", "bye bye", "okay", "oh", "so", "the end", "hmm"}
)


def normalize_text(text: str) -> str:
    """Lowercase words without punctuation, single-spaced: the form the artefact lists use."""
    kept = "".join(ch if ch.isalnum() or ch in " _" else " " for ch in text.lower())
    return " ".join(kept.split())


def repeats_itself(text: str, times: int = 3) -> bool:
    """True if some phrase of 1-4 words occurs ``times`` times in a row ("yes yes yes")."""
    words = normalize_text(text).split()
    for n in range(1, 5):
        for i in range(len(words) - n * times + 1):
            unit = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == unit for k in range(1, times)):
                return True
    return False


def doubles_itself(text: str) -> bool:
    """True if ``text`` is mostly one phrase of 2+ words said twice in a row from the start
    ("Do you hear me? Do you hear me? Do you"): the loop a prompted decode of a short
    utterance falls into (the recognizer then decodes it again without the prompt)."""
    words = normalize_text(text).split()
    for n in range(2, len(words) // 2 + 1):
        if words[:n] == words[n : 2 * n] and 3 * (2 * n) >= 2 * len(words):
            return True
    return False


def compression_ratio(text: str) -> float:
    """How well ``text`` compresses; above ~2.4 it is a loop rather than speech."""
    raw = text.encode("utf-8")
    return len(raw) / max(1, len(zlib.compress(raw)))


def is_artefact(text: str, *, no_speech_prob: float, avg_logprob: float) -> bool:
    """True if a decode should not be shown: empty, a known invention, or doubted speech.

    "Thank you." is kept when the decoder was confident (people say it); dropped when the
    decoder itself thought the audio might hold no speech.
    """
    norm = normalize_text(text)
    if not norm:
        return True
    if norm in ALWAYS_ARTEFACTS:
        return True
    unsure = no_speech_prob > 0.3 or avg_logprob < -1.0
    if norm in SUSPECT_ARTEFACTS and unsure:
        return True
    return no_speech_prob > 0.6 and avg_logprob < -1.0
