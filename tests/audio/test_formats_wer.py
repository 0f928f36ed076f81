"""Accuracy per format: the offline engine transcribes each encoded file like the WAV it came
from (WER against the WAV's own transcript, not against a human one: the question is whether
decoding loses anything the recognizer needs). One whisper server for the module."""

from __future__ import annotations

import pytest

from livetx_widgets.server import LocalServer
from livetx_widgets.server.wer import wer
from livetx_widgets.session import TranscriptionSession

pytestmark = pytest.mark.slow  # loads the offline model; ~1 s per file

FORMATS = ["mp3", "m4a", "aac", "ogg", "opus", "flac", "webm", "wav", "mp4", "mkv", "mov",
           "mp4+video", "mkv+video", "mov+video"]  # fmt: skip


@pytest.fixture(scope="module")
def whisper():
    pytest.importorskip("faster_whisper")
    with LocalServer(engine="whisper", rate_limit=False) as server:
        yield server


def transcribe(server, source) -> str:
    session = TranscriptionSession("deepgram", source=source, url=server.url, realtime=False,
                                   api_key="local")  # fmt: skip
    session.start()
    assert session.wait(120)
    transcript = session.stop()
    assert session.error is None, session.error
    return transcript.text


@pytest.fixture(scope="module")
def wav_text(whisper, short_wav):
    text = transcribe(whisper, str(short_wav))
    assert len(text.split()) >= 6, text
    return text


@pytest.mark.parametrize("ext", FORMATS)
def test_each_format_transcribes_like_the_wav(whisper, encoded, wav_text, ext):
    text = transcribe(whisper, str(encoded[ext]))
    assert wer(wav_text, text) <= 0.25, (ext, wav_text, text)


def test_the_check_tells_other_audio_apart(whisper, wav_text, tmp_path):
    import livetx_test_media as media  # loaded by tests/audio/conftest.py

    tones = media.encode(media.tone_clock(4), media.CLOCK_RATE, tmp_path / "tones.mp3", "mp3")
    assert wer(wav_text, transcribe(whisper, str(tones))) > 0.5
