"""Audio and scripts with known timing for the comparison tests."""

from __future__ import annotations

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

#: Three words with exact times; the script engine's final comes 0.5 s after the last one.
WORDS = {
    "words": [
        {"text": "one", "start": 0.5, "end": 0.8},
        {"text": "two", "start": 0.9, "end": 1.2},
        {"text": "three", "start": 1.3, "end": 1.6},
    ]
}
WORDS_SPEECH = [(0.5, 1.6)]


def speech_audio(seconds: float, regions) -> np.ndarray:
    """Silence with a tone exactly where ``regions`` say speech is (the VAD hears that)."""
    audio = np.zeros(int(seconds * 16000), np.int16)
    tone = support.tone(seconds)
    for a, b in regions:
        audio[int(a * 16000) : int(b * 16000)] = tone[int(a * 16000) : int(b * 16000)]
    return audio


@pytest.fixture
def words_audio() -> np.ndarray:
    return speech_audio(2.4, WORDS_SPEECH)


@pytest.fixture
def turns_audio() -> np.ndarray:
    return speech_audio(4.6, [(0.3, 2.2), (2.8, 4.0)])


@pytest.fixture
def words() -> dict:
    """The ``WORDS`` script and where its speech is."""
    return {"script": WORDS, "speech": WORDS_SPEECH}
