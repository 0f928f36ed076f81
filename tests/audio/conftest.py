"""Audio test helpers: the WAV writers of ``tests/support.py`` as the ``wav_writer`` fixture.

The real virtual microphone (``pulse_mic``) lives in ``tests/conftest.py``: the session and
widget tests use it too.
"""

from __future__ import annotations

from types import SimpleNamespace

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest


@pytest.fixture
def wav_writer():
    """``wav_writer.tone(freq, rate, seconds)`` (float), ``.pcm`` (stdlib writer, returns what
    a reader must decode), ``.raw`` (a hand-made header), ``.quantize``, ``.pcm_bytes``."""
    return SimpleNamespace(
        tone=support.sine,
        pcm=support.write_pcm_wav,
        raw=support.write_raw_wav,
        quantize=support.quantize,
        pcm_bytes=support.pcm_bytes,
    )
