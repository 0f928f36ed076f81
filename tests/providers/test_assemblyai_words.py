"""AssemblyAI Turn words reused across the updates of a turn decode exactly as read afresh.

``TurnWords`` reuses the words an update shares with the previous update of its turn (see
``providers/assemblyai_words.py``); these tests compare every event of a growing turn with
what a codec that cannot reuse (a fresh one per frame) decodes, and check that reuse never
lets a malformed word through (``True == 1`` in Python).
"""

from __future__ import annotations

import json
import random

import pytest

from livetx_widgets.events import PartialTranscript, ProviderWarning
from livetx_widgets.providers import AssemblyAICodec
from livetx_widgets.providers.assemblyai_words import TurnWords


def _word(text, start, confidence=1.0, **extra):
    return {"start": start, "end": start + 300, "text": text, "confidence": confidence,
            "word_is_final": False, **extra}  # fmt: skip


def _frame(words, order=0, final=False):
    return json.dumps({
        "type": "Turn", "turn_order": order, "end_of_turn": final,
        "transcript": " ".join(w["text"] for w in words), "words": words,
    })  # fmt: skip


def _fresh(frame, offset, prefix):
    codec = AssemblyAICodec()
    codec.time_offset, codec.key_prefix = offset, prefix
    return codec.decode(frame)


def _growing_turns(rng):
    """Frames of several turns, each growing a word at a time, the earlier words settling
    (``word_is_final``), sometimes re-worded, then a final that restates them all."""
    frames = []
    for order in range(4):
        words = []
        for k in range(rng.randint(1, 12)):
            words = [dict(w, word_is_final=True) for w in words]
            if words and rng.random() < 0.2:
                words[-1] = dict(words[-1], text=words[-1]["text"] + "s")
            conf = rng.choice([1.0, 0.93, 0, 1, 0.5])
            words.append(_word(f"w{order}{k}", 1000 * order + 350 * k, conf))
            frames.append(_frame(words, order))
        frames.append(_frame([dict(w, word_is_final=True) for w in words], order, final=True))
    return frames


@pytest.mark.parametrize("offset", [0.0, 12.5])
def test_reused_words_decode_exactly_as_read_afresh(offset):
    rng = random.Random(3)
    codec = AssemblyAICodec()
    codec.time_offset, codec.key_prefix = offset, "c2:"
    frames = _growing_turns(rng)
    for frame in frames:
        got, want = codec.decode(frame), _fresh(frame, offset, "c2:")
        assert got == want
        assert got[0].words == want[0].words  # same values, field for field
        assert (got[0].start, got[0].end, got[0].confidence) == (
            want[0].start, want[0].end, want[0].confidence)  # fmt: skip


def test_reuse_happens_for_the_words_a_turn_repeats():
    reader = TurnWords()
    first = [_word("a", 0, 0.9), _word("b", 350, 0.8)]
    words, _, _ = reader.read(0, first, 0.0)
    again, _, _ = reader.read(0, [dict(w) for w in first] + [_word("c", 700, 0.7)], 0.0)
    assert again[0] is words[0] and again[1] is words[1]  # reused, not rebuilt
    other, _, _ = reader.read(1, [dict(w) for w in first], 0.0)  # another turn: read afresh
    assert other[0] is not words[0] and other == words


@pytest.mark.parametrize("field", ["confidence", "start", "end"])
@pytest.mark.parametrize("value", [1, 0, 1.0])
def test_a_boolean_equal_to_a_reused_number_is_still_malformed(field, value):
    codec = AssemblyAICodec()
    valid = _word("a", 0 if field != "end" else -300)
    valid[field] = value
    [first] = codec.decode(_frame([valid]))
    assert isinstance(first, PartialTranscript)
    bad = dict(valid, **{field: bool(value)})  # == valid in Python, malformed in JSON
    [event] = codec.decode(_frame([bad, _word("b", 350)]))
    assert isinstance(event, ProviderWarning)
    assert f"'{field}'" in event.message
    # The codec recovers: the next well-formed update of the turn decodes normally.
    [later] = codec.decode(_frame([valid, _word("b", 350)]))
    assert later == _fresh(_frame([valid, _word("b", 350)]), 0.0, "")[0]


def test_a_new_connection_forgets_the_previous_turn():
    codec = AssemblyAICodec()
    codec.time_offset = 0.0
    [a] = codec.decode(_frame([_word("a", 0, 0.9)]))
    codec.connect_request(None, "ws://127.0.0.1:9")
    codec.time_offset = 5.0  # the session sets the new connection's clock
    [b] = codec.decode(_frame([_word("a", 0, 0.9)]))
    assert b.words[0].start == pytest.approx(a.words[0].start + 5.0)
