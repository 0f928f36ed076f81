"""``time_offset`` and ``key_prefix``: a reconnected stream's events on the session's clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livetx_widgets.events import SpeechStarted, TranscriptUpdate, UtteranceEnd
from livetx_widgets.providers import make_codec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = [
    ("deepgram", "results-interim-paris.json"),
    ("deepgram", "results-final-paris.json"),
    ("deepgram", "results-final-docs-nova2.json"),
    ("deepgram", "speech-started.json"),
    ("deepgram", "utterance-end.json"),
]
CASES += [("assemblyai", p.name) for p in sorted((FIXTURES / "assemblyai").glob("turn-*.json"))]
CASES += [("assemblyai", "speech-started.json")]


@pytest.mark.parametrize(("provider", "name"), CASES)
def test_offset_and_prefix_shift_every_time_and_key(provider, name):
    text = (FIXTURES / provider / name).read_text()
    plain = make_codec(provider).decode(text)
    codec = make_codec(provider)
    codec.time_offset, codec.key_prefix = 12.5, "c2:"
    shifted = codec.decode(text)
    assert len(plain) == len(shifted) >= 1
    for a, b in zip(plain, shifted, strict=True):
        assert type(a) is type(b)
        if isinstance(a, TranscriptUpdate):
            assert b.text == a.text
            assert b.start == pytest.approx(a.start + 12.5)
            assert b.end == pytest.approx(a.end + 12.5)
            assert b.segment_key == "c2:" + a.segment_key
            assert [(w.text, w.confidence, w.speaker) for w in b.words] == [
                (w.text, w.confidence, w.speaker) for w in a.words
            ]
            for wa, wb in zip(a.words, b.words, strict=True):
                assert wb.start == pytest.approx(wa.start + 12.5)
                assert wb.end == pytest.approx(wa.end + 12.5)
        elif isinstance(a, SpeechStarted):
            assert b.timestamp == pytest.approx(a.timestamp + 12.5)
        elif isinstance(a, UtteranceEnd):
            assert b.last_word_end == pytest.approx(a.last_word_end + 12.5)


@pytest.mark.parametrize("provider", ["deepgram", "assemblyai"])
def test_fast_and_checked_word_paths_agree(provider):
    """A frame the fast path declines (a huge but finite number) decodes like any other."""
    if provider == "deepgram":
        word = {"word": "hi", "punctuated_word": "Hi.", "start": 1e16, "end": 1e16 + 1,
                "confidence": 0.5, "speaker": 1}  # fmt: skip
        frame = {"type": "Results", "channel_index": [0, 1], "start": 0.0, "duration": 1.0,
                 "is_final": True, "speech_final": True, "from_finalize": False,
                 "channel": {"alternatives": [{"transcript": "Hi.", "confidence": 0.5,
                                               "words": [word]}]}}  # fmt: skip
    else:
        word = {"text": "Hi.", "start": 1e16, "end": 1e16 + 1000, "confidence": 0.5,
                "speaker": "A"}  # fmt: skip
        frame = {"type": "Turn", "turn_order": 0, "end_of_turn": True, "transcript": "Hi.",
                 "words": [word]}  # fmt: skip
    (event,) = make_codec(provider).decode(json.dumps(frame))
    assert event.text == "Hi."
    assert event.words[0].text == "Hi." and event.words[0].confidence == 0.5
    assert event.words[0].speaker in ("1", "A")


def test_only_assemblyai_requires_real_time_pacing():
    assert make_codec("assemblyai").realtime_only is True
    assert make_codec("deepgram").realtime_only is False
