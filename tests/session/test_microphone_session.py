"""The kernel-microphone path end to end: PulseAudio virtual source -> pyaudio -> session.

``paplay`` plays real speech into a null sink; its monitor is the default input that
``Microphone`` opens exactly like a real microphone.
"""

from __future__ import annotations

import wave

import numpy as np
import pytest

from livetx_widgets import Microphone, TranscriptionSession
from livetx_widgets.server import LocalServer
from livetx_widgets.server.wer import wer

pytestmark = [pytest.mark.mic, pytest.mark.slow]  # a PulseAudio daemon and seconds of audio

SHORT_TEXT = "I do. I think that America do it very well."


def stream_speech(pulse_mic, session, wav, h) -> None:
    """Start the session, play ``wav`` into the virtual mic once audio flows, then stop."""
    session.start()
    # PulseAudio's first buffer can take a moment: play only once the mic delivers audio.
    assert h.wait_until(lambda: session.metadata.audio_sent_s > 0.3, timeout=10 * h.TIMING)
    player = pulse_mic.play(wav)
    player.wait(timeout=30)
    # Let the tail of the speech travel through the device buffers before stopping.
    sent = session.metadata.audio_sent_s
    assert h.wait_until(lambda: session.metadata.audio_sent_s > sent + 1.0, timeout=10 * h.TIMING)
    session.stop(timeout=10)


def test_microphone_audio_reaches_the_provider(pulse_mic, short_wav, tmp_path, h):
    recording = tmp_path / "sent.wav"
    with LocalServer(engine="script", rate_limit=False) as srv:
        session = TranscriptionSession(
            "deepgram", source=Microphone("pulse"), url=srv.url, record_to=recording
        )
        stream_speech(pulse_mic, session, short_wav, h)
        records = srv.sessions
    assert session.error is None, session.error
    with wave.open(str(recording)) as w:
        sent = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    with wave.open(str(short_wav)) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    # The speech is in what was sent: loud 50 ms windows of about its own length.
    windows = sent[: len(sent) // 800 * 800].reshape(-1, 800)
    loud = np.sqrt((windows**2).mean(axis=1)) > 0.1 * np.sqrt((speech**2).mean())
    assert loud.sum() * 0.05 > 0.5 * len(speech) / 16000
    assert records[0].audio_bytes == pytest.approx(len(sent) * 2, rel=0.02)


@pytest.mark.slow
def test_microphone_speech_is_transcribed_by_the_offline_engine(pulse_mic, short_wav, h):
    with LocalServer(engine="whisper", rate_limit=False) as srv:
        session = TranscriptionSession("deepgram", source=Microphone("pulse"), url=srv.url)
        stream_speech(pulse_mic, session, short_wav, h)
    assert session.error is None, session.error
    text = session.transcript.text
    assert wer(SHORT_TEXT, text) < 0.35, text
