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


def _load_media():
    """``tests/audio/media.py`` as ``livetx_test_media`` (importlib mode: not importable)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "livetx_test_media"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("media.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


media = _load_media()


@pytest.fixture(scope="session")
def encoded(short_wav, tmp_path_factory):
    """``encoded[ext]``: the shared short speech in every format of ``media.FORMATS`` (plus
    ``"mp4+video"``, ``"mkv+video"``, ``"mov+video"``: the same sound next to a video track),
    made once per test session."""
    pytest.importorskip("av")
    pcm, rate = media.read_wav(short_wav)
    out = tmp_path_factory.mktemp("formats")
    files = {ext: media.encode(pcm, rate, out / f"speech.{ext}", ext) for ext in media.FORMATS}
    for ext in ("mp4", "mkv", "mov"):
        files[f"{ext}+video"] = media.encode(pcm, rate, out / f"video.{ext}", ext,
                                             with_video=True)  # fmt: skip
    return files


@pytest.fixture(scope="session")
def clock_frames(tmp_path_factory):
    """``clock_frames["mp3"|"aac"]``: 10 s of the tone clock (second k: ``media.tone_hz(k)``)
    as an elementary stream cut into frames, for the stream servers."""
    pytest.importorskip("av")
    out = tmp_path_factory.mktemp("clock")
    pcm = media.tone_clock(10)
    return {ext: media.stream_frames(pcm, media.CLOCK_RATE, out, ext) for ext in ("mp3", "aac")}
