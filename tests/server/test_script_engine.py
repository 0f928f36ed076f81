"""The script engine alone (no sockets): timing rules, determinism, flush/close, script formats."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.server import ScriptEngine, load_script, make_engine
from livetx_widgets.server.script_engine import (
    DEFAULT_TEXT,
    LEAD_IN_S,
    SENTENCE_PAUSE_S,
    WORD_S,
    WORDS_PER_SECOND,
)

RATE = 16000


def feed_seconds(stream, seconds: float, chunk_s: float = 0.05) -> list:
    out = []
    n = round(seconds / chunk_s)
    for _ in range(n):
        out += stream.feed(b"\0\0" * round(chunk_s * RATE))
    return out


def summary(results) -> list[tuple]:
    return [(r.kind, r.start, r.end, r.text, r.end_of_speech) for r in results]


def test_words_script_emits_speech_started_partials_and_final_on_the_audio_clock(h):
    stream = ScriptEngine(h.SCRIPT).open_stream(RATE)
    assert feed_seconds(stream, 0.15) == []
    first = feed_seconds(stream, 0.1)  # clock 0.25: past "Hello".start
    assert summary(first) == [("speech_started", 0.2, 0.2, "", True)]
    assert summary(feed_seconds(stream, 0.3)) == [("partial", 0.2, 0.5, "Hello", False)]
    assert summary(feed_seconds(stream, 0.45)) == [("partial", 0.2, 0.9, "Hello world.", False)]
    assert feed_seconds(stream, 0.35) == []  # clock 1.35 < 0.9 + 0.5
    final = feed_seconds(stream, 0.05)
    assert summary(final) == [("final", 0.2, 0.9, "Hello world.", True)]
    assert final[0].confidence == 0.8  # the weakest word
    rest = feed_seconds(stream, 3.0)
    assert [r.kind for r in rest] == ["speech_started", "partial", "partial", "final"]
    assert rest[-1].text == "Second turn." and rest[-1].speaker == 1
    assert rest[-1].words[0].speaker == 1
    assert stream.close() == []


def test_same_bytes_in_any_framing_give_the_same_results(h):
    engine = ScriptEngine(h.SCRIPT)
    total = b"\0\0" * (4 * RATE)

    def run(sizes) -> list:
        stream, out, pos = engine.open_stream(RATE), [], 0
        for size in sizes:
            out += stream.feed(total[pos : pos + size])
            pos += size
        out += stream.feed(total[pos:])
        return out + stream.close()

    whole = run([])
    assert [r.kind for r in whole].count("final") == 2
    assert run([1600] * 40) == whole
    assert run([3, 1597, 7, 64000]) == whole


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40000), max_size=20))
def test_framing_never_changes_results_property(sizes):
    engine = ScriptEngine({"text": "One two. Three four five."})
    total = b"\0" * (5 * RATE * 2)

    def run(cuts) -> list:
        stream, out, pos = engine.open_stream(RATE), [], 0
        for size in cuts:
            out += stream.feed(total[pos : pos + size])
            pos += size
        return out + stream.feed(total[pos:]) + stream.close()

    assert run(sizes) == run([])


def test_flush_finalizes_covered_words_and_the_rest_continues_as_a_new_utterance(h):
    stream = ScriptEngine(h.SCRIPT).open_stream(RATE)
    feed_seconds(stream, 0.6)  # "Hello" covered, "world." not yet
    flushed = stream.flush()
    assert summary(flushed) == [("final", 0.2, 0.5, "Hello", False)]
    assert stream.flush() == []  # nothing new heard
    later = feed_seconds(stream, 1.0)
    assert summary(later) == [
        ("speech_started", 0.5, 0.5, "", True),
        ("partial", 0.5, 0.9, "world.", False),
        ("final", 0.5, 0.9, "world.", True),
    ]


def test_close_finalizes_only_what_the_audio_covered(h):
    stream = ScriptEngine(h.SCRIPT).open_stream(RATE)
    feed_seconds(stream, 2.8)  # first utterance final; "Second" covered
    closed = stream.close()
    assert summary(closed) == [("final", 2.4, 2.7, "Second", False)]
    with pytest.raises(RuntimeError):
        stream.feed(b"\0\0")


def test_clock_follows_the_sample_rate():
    stream = ScriptEngine({"words": [{"text": "hi", "start": 0.1, "end": 0.2}]}).open_stream(8000)
    assert stream.feed(b"\0\0" * 1000)[0].kind == "speech_started"  # 1000 samples = 0.125 s
    assert stream.clock == 0.125


def test_next_utterance_starting_before_the_endpoint_cuts_the_previous_one():
    script = {"turns": [{"text": "One two", "start": 0.0, "end": 1.0},
                        {"text": "Three", "start": 1.2, "end": 1.6}]}  # fmt: skip
    stream = ScriptEngine(script).open_stream(RATE)
    results = feed_seconds(stream, 1.25)
    finals = [r for r in results if r.kind == "final"]
    assert summary(finals) == [("final", 0.0, 1.0, "One two", False)]
    assert results[-1].kind == "speech_started" and results[-1].start == 1.2


def test_turns_spread_their_words_evenly():
    script = load_script({"turns": [{"text": "a b c d", "start": 1.0, "end": 3.0, "speaker": 2}]})
    words = script.utterances[0]
    assert [(w.text, w.start, w.end, w.speaker) for w in words] == [
        ("a", 1.0, 1.5, 2), ("b", 1.5, 2.0, 2), ("c", 2.0, 2.5, 2), ("d", 2.5, 3.0, 2),
    ]  # fmt: skip


def test_text_is_laid_out_at_the_documented_rate_one_utterance_per_sentence():
    script = load_script({"text": "One two. Three?  Four five six!"})
    assert [[w.text for w in u] for u in script.utterances] == [
        ["One", "two."], ["Three?"], ["Four", "five", "six!"]
    ]  # fmt: skip
    slot = 1 / WORDS_PER_SECOND
    one, two = script.utterances[0]
    assert (one.start, one.end) == (LEAD_IN_S, LEAD_IN_S + WORD_S)
    assert two.start == pytest.approx(LEAD_IN_S + slot)
    three = script.utterances[1][0]
    assert three.start == pytest.approx(LEAD_IN_S + 2 * slot + SENTENCE_PAUSE_S)


def test_words_split_into_utterances_at_pauses_as_long_as_the_endpoint():
    words = [{"text": t, "start": s, "end": s + 0.2} for t, s in
             [("a", 0.0), ("b", 0.3), ("c", 1.0), ("d", 1.25)]]  # fmt: skip
    assert [len(u) for u in load_script({"words": words}, endpoint_s=0.5).utterances] == [2, 2]
    assert [len(u) for u in load_script({"words": words}, endpoint_s=1.0).utterances] == [4]


def test_default_script_speaks_the_default_text():
    engine = make_engine("script")
    stream = engine.open_stream(RATE)
    results = feed_seconds(stream, 3.2)
    assert [r.text for r in results if r.kind == "final"] == [DEFAULT_TEXT]


def test_scripts_load_from_json_and_yaml_files_and_text(tmp_path, h):
    json_file = tmp_path / "s.json"
    json_file.write_text(json.dumps(h.SCRIPT))
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("turns:\n  - {text: Hello there., start: 0.5, end: 1.7, speaker: 0}\n")
    assert load_script(json_file) == load_script(h.SCRIPT)
    assert load_script(str(json_file)) == load_script(h.SCRIPT)
    assert [w.text for w in load_script(yaml_file).words] == ["Hello", "there."]
    assert load_script(json.dumps(h.SCRIPT)) == load_script(h.SCRIPT)
    assert [w.text for w in load_script("text: Hi there.").words] == ["Hi", "there."]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({}, "exactly one of"),
        ({"words": [], "text": "x"}, "exactly one of"),
        ({"words": []}, "empty"),
        ({"words": [{"text": "a", "start": 1.0, "end": 0.5}]}, "ends"),
        ({"words": [{"text": "a", "start": "0", "end": 1}]}, "number"),
        ({"words": [{"text": "", "start": 0, "end": 1}]}, "non-empty"),
        (
            {"words": [{"text": "a", "start": 1, "end": 2}, {"text": "b", "start": 0, "end": 1}]},
            "before",
        ),
        ({"turns": [{"text": "a", "start": 1, "end": 1}]}, "end after"),
        (
            {"turns": [{"text": "a", "start": 0, "end": 2}, {"text": "b", "start": 1, "end": 3}]},
            "previous turn",
        ),
        ({"turns": [{"text": "a", "start": 0, "end": 2, "speaker": "A"}]}, "speaker"),
        ({"text": 3}, "non-empty string"),
        ("/no/such/script.json", "not found"),
        ("{not json", "not valid"),
        (42, "must be a dict"),
    ],
)
def test_bad_scripts_get_clear_errors(script, message):
    with pytest.raises(ConfigurationError, match=message):
        ScriptEngine(script)


def test_engine_factory_rejects_unknown_names_and_misplaced_options():
    with pytest.raises(ConfigurationError, match="unknown engine"):
        make_engine("vosk")
    with pytest.raises(ConfigurationError, match="script="):
        make_engine("whisper", script={"text": "x"})
    with pytest.raises(ConfigurationError, match="model="):
        make_engine("script", model="tiny.en")
    with pytest.raises(ConfigurationError, match="sample_rate"):
        ScriptEngine().open_stream(0)
