"""Helpers for the codec tests: the protocol samples kept verbatim under tests/fixtures/.

Each file in ``tests/fixtures/deepgram`` and ``tests/fixtures/assemblyai`` is one JSON
payload copied from the shared protocol notes (server messages, client messages, HTTP bodies),
so the tests replay exactly what the notes document.

The notes show no Turn with ``speaker_labels=true``; the ``*-speaker-labels``,
``turn-short-unknown-speaker`` and ``speaker-revision-late`` files are the notes' u3 samples
with the fields they describe for it added (``speaker_label``, per-word ``speaker`` with the
``PENDING``/``UNKNOWN`` placeholders, ``speaker_confidence``) and a revision of those turns
in the shape of the notes' ``SpeakerRevision`` sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def read_fixture(provider: str, name: str) -> str:
    return (FIXTURES / provider / f"{name}.json").read_text(encoding="utf-8")


@pytest.fixture
def dg_fixture():
    """``dg_fixture("metadata")`` -> the text of tests/fixtures/deepgram/metadata.json."""
    return lambda name: read_fixture("deepgram", name)


@pytest.fixture
def aai_fixture():
    """``aai_fixture("begin")`` -> the text of tests/fixtures/assemblyai/begin.json."""
    return lambda name: read_fixture("assemblyai", name)


@pytest.fixture
def dg_results():
    """Build a Deepgram Results frame: ``dg_results(start, duration, words, is_final=...)``.

    ``words`` is a list of ``(word, start, end)``; the transcript is the words joined.
    """

    def build(
        start,
        duration,
        words,
        *,
        is_final=False,
        speech_final=False,
        from_finalize=False,
        channel=0,
    ):
        return json.dumps(
            {
                "type": "Results",
                "channel_index": [channel, 1],
                "duration": duration,
                "start": start,
                "is_final": is_final,
                "speech_final": speech_final,
                "channel": {
                    "alternatives": [
                        {
                            "transcript": " ".join(w for w, _, _ in words),
                            "confidence": 0.9,
                            "words": [
                                {"word": w, "start": s, "end": e, "confidence": 0.9}
                                for w, s, e in words
                            ],
                        }
                    ]
                },
                "metadata": {"request_id": "r-1"},
                "from_finalize": from_finalize,
            }
        )

    return build
