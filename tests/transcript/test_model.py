"""The model against hand-written event sequences taken from the protocol notes (section 6)."""

from __future__ import annotations

import pytest

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.events import (
    FinalTranscript,
    PartialTranscript,
    ProviderErrorEvent,
    ProviderWarning,
    SessionEnded,
    SessionStarted,
    SpeechStarted,
    UtteranceEnd,
    Word,
)
from livetx_widgets.transcript import Segment, Transcript


def test_partials_replace_then_final_commits_then_next_segment():
    t = Transcript(provider="local")
    assert t.apply(PartialTranscript("hel", start=0.0, end=0.5, segment_key="s0")) is None
    assert t.apply(PartialTranscript("hello wor", start=0.0, end=1.0, segment_key="s0")) is None
    assert t.partial_text == "hello wor"
    assert list(t.partials) == ["s0"]
    assert t.text == ""
    assert len(t) == 0

    seg = t.apply(FinalTranscript("Hello world.", start=0.0, end=1.1, segment_key="s0"))
    assert seg == Segment(
        segment_id=0, key="s0", start=0.0, end=1.1, text="Hello world.", provider="local"
    )
    assert t.partial_text == ""
    assert t.partials == {}
    assert t.text == "Hello world."

    t.apply(PartialTranscript("how are", start=1.1, end=1.6, segment_key="s1"))
    assert t.text == "Hello world."
    assert t.partial_text == "how are"
    seg = t.apply(FinalTranscript("How are you?", start=1.1, end=2.0, segment_key="s1"))
    assert seg is not None and seg.segment_id == 1
    assert t.text == "Hello world. How are you?"
    assert [s.text for s in t] == ["Hello world.", "How are you?"]
    assert t[1] is seg
    assert t[-1] is seg
    assert t[0:1] == [t[0]]
    assert t.segments == [t[0], t[1]]


def _dg_words(*spec):
    return tuple(Word(text, start, end, conf) for text, start, end, conf in spec)


def test_deepgram_credit_card_trace():
    """Docs trace: 0-4.3 interim -> 0-3.26 final -> 3.26-5.1 interim -> 3.26-5.5 speech_final."""
    t = Transcript(provider="deepgram")
    t.apply(SessionStarted(session_id=None, request_id="req-1"))
    t.apply(
        PartialTranscript(
            "my credit card number is four one one one",
            start=0.0,
            end=4.3,
            confidence=0.9,
            segment_key="0:0.000",
        )
    )
    assert t.partial_text == "my credit card number is four one one one"

    first = t.apply(
        FinalTranscript(
            "My credit card number is",
            words=_dg_words(
                ("My", 0.08, 0.3, 0.99),
                ("credit", 0.3, 0.7, 0.98),
                ("card", 0.7, 1.0, 0.99),
                ("number", 1.0, 1.4, 0.97),
                ("is", 1.4, 1.6, 0.99),
            ),
            start=0.0,
            end=3.26,
            confidence=0.98,
            segment_key="0:0.000",
        ),
        received_at=1000.5,
        latency_s=0.31,
    )
    assert first is not None
    assert (first.segment_id, first.start, first.end, first.end_of_turn) == (0, 0.0, 3.26, False)
    assert (first.received_at, first.latency_s, first.confidence) == (1000.5, 0.31, 0.98)
    assert t.partial_text == ""

    t.apply(
        PartialTranscript("4111 1111", start=3.26, end=5.1, segment_key="0:3.260"),
    )
    assert t.partial_text == "4111 1111"
    assert t.text == "My credit card number is"

    second = t.apply(
        FinalTranscript(
            "4111 1111 1111 1111.",
            start=3.26,
            end=5.5,
            confidence=0.95,
            segment_key="0:3.260",
            end_of_turn=True,
        ),
        received_at=1002.9,
        latency_s=0.25,
    )
    assert second is not None
    assert (second.segment_id, second.start, second.end, second.end_of_turn) == (
        1,
        3.26,
        5.5,
        True,
    )
    assert t.partial_text == ""
    assert t.text == "My credit card number is 4111 1111 1111 1111."
    # One utterance: the finals up to and including the speech_final one.
    assert t.utterances() == [(first, second)]
    assert [w.text for w in t.words()] == ["My", "credit", "card", "number", "is"]


def _aai_words(*spec):
    return tuple(Word(text, s_ms / 1000, e_ms / 1000, conf) for text, s_ms, e_ms, conf in spec)


def test_assemblyai_u3_partial_then_final():
    """The docs' u3-rt-pro sample: "My name is—" then "My name is Sonny."."""
    t = Transcript(provider="assemblyai")
    t.apply(SessionStarted(session_id="aa006a1d-d478-4827-948a-4067d1030530"))
    assert t.session_id == "aa006a1d-d478-4827-948a-4067d1030530"
    t.apply(SpeechStarted(timestamp=1.216, confidence=0.987654))

    partial_words = _aai_words(
        ("My", 1216, 1627, 0.956314), ("name", 1668, 2490, 0.999393), ("is—", 2531, 3067, 0.753325)
    )
    t.apply(
        PartialTranscript(
            "My name is—", words=partial_words, start=1.216, end=3.067, segment_key="0"
        )
    )
    assert t.partial_text == "My name is—"
    assert t.partials["0"].words == partial_words

    final_words = _aai_words(
        ("My", 1216, 1635, 0.956583),
        ("name", 1676, 2515, 0.999199),
        ("is", 2556, 2975, 0.999535),
        ("Sonny.", 3016, 4155, 0.316031),
    )
    seg = t.apply(
        FinalTranscript(
            "My name is Sonny.",
            words=final_words,
            start=1.216,
            end=4.155,
            segment_key="0",
            end_of_turn=True,
        )
    )
    assert seg == Segment(
        segment_id=0,
        key="0",
        start=1.216,
        end=4.155,
        text="My name is Sonny.",
        words=final_words,
        end_of_turn=True,
        provider="assemblyai",
        session_id="aa006a1d-d478-4827-948a-4067d1030530",
    )
    assert t.text == "My name is Sonny."
    assert t.partial_text == ""
    assert list(t.words()) == list(final_words)


def test_format_turns_second_final_replaces_in_place():
    t = Transcript(provider="assemblyai")
    t.apply(PartialTranscript("my name", segment_key="0"))
    raw = t.apply(
        FinalTranscript("my name is sonny", start=1.2, end=4.1, segment_key="0", end_of_turn=True)
    )
    t.apply(PartialTranscript("nice to", segment_key="1"))
    version = t.version
    formatted = t.apply(
        FinalTranscript("My name is Sonny.", start=1.2, end=4.2, segment_key="0", end_of_turn=True),
        latency_s=0.5,
    )
    assert raw is not None and formatted is not None
    assert formatted.segment_id == raw.segment_id == 0
    assert t.version == version + 1
    assert len(t) == 1
    assert t[0] is formatted
    assert t.text == "My name is Sonny."
    # The partial of the next turn is untouched by the re-final of turn 0.
    assert t.partial_text == "nice to"

    nxt = t.apply(
        FinalTranscript("Nice to meet you.", start=4.5, end=5.5, segment_key="1", end_of_turn=True)
    )
    assert nxt is not None and nxt.segment_id == 1
    # A late re-final of an older turn still keeps its place and id.
    again = t.apply(
        FinalTranscript("My name is Sonny!", start=1.2, end=4.2, segment_key="0", end_of_turn=True)
    )
    assert again is not None and again.segment_id == 0
    assert t.text == "My name is Sonny! Nice to meet you."
    assert [s.segment_id for s in t] == [0, 1]


def test_empty_final_commits_nothing_but_clears_its_partial():
    t = Transcript()
    t.apply(PartialTranscript("uh", segment_key="a"))
    t.apply(PartialTranscript("so", segment_key="b"))
    assert t.partial_text == "uh so"
    assert t.apply(FinalTranscript("", segment_key="a")) is None
    assert t.apply(FinalTranscript("   ", segment_key="zzz")) is None
    assert len(t) == 0
    assert t.partial_text == "so"
    assert list(t.partials) == ["b"]


def test_empty_speech_final_closes_the_channels_utterance():
    """Deepgram can send speech_final on an empty result when the endpoint falls in silence."""
    t = Transcript()
    a = t.apply(FinalTranscript("one", start=0.0, end=1.0, segment_key="0:0.000"))
    other = t.apply(FinalTranscript("other", start=0.0, end=1.0, channel=1, segment_key="1:0"))
    version = t.version
    assert (
        t.apply(FinalTranscript("", start=1.0, end=2.0, segment_key="0:1.000", end_of_turn=True))
        is None
    )
    assert t.version == version + 1
    assert a is not None and other is not None
    assert t[0] == Segment(**{**_fields(a), "end_of_turn": True})
    assert t[1] is other  # the other channel's segment is untouched
    b = t.apply(FinalTranscript("two", start=2.0, end=3.0, segment_key="0:2.000"))
    assert t.utterances() == [(t[0],), (other,), (b,)]
    # A second empty speech_final changes nothing more than the flag it already set.
    t.apply(FinalTranscript("", segment_key="0:3.000", end_of_turn=True))
    assert t[2].end_of_turn is True
    version = t.version
    t.apply(FinalTranscript("", segment_key="0:4.000", end_of_turn=True))
    assert t.version == version


def _fields(segment: Segment) -> dict:
    return {name: getattr(segment, name) for name in Segment.__dataclass_fields__}


def test_empty_partial_drops_the_held_partial():
    t = Transcript()
    t.apply(PartialTranscript("hmm", segment_key="a"))
    t.apply(PartialTranscript("", segment_key="a"))
    assert t.partials == {}
    version = t.version
    t.apply(PartialTranscript("", segment_key="a"))
    assert t.version == version


def test_partial_order_is_key_insertion_order():
    t = Transcript()
    t.apply(PartialTranscript("first", segment_key="k1"))
    t.apply(PartialTranscript("second", segment_key="k2"))
    t.apply(PartialTranscript("first again", segment_key="k1"))
    assert t.partial_text == "first again second"


def test_finals_without_key_never_replace_each_other():
    t = Transcript()
    t.apply(FinalTranscript("one"))
    t.apply(FinalTranscript("two"))
    assert t.text == "one two"
    assert [s.segment_id for s in t] == [0, 1]


def test_multichannel():
    t = Transcript(provider="deepgram")
    t.apply(PartialTranscript("hi", channel=0, segment_key="0:0.000"))
    t.apply(PartialTranscript("hey", channel=1, segment_key="1:0.000"))
    assert t.partial_text == "hi hey"
    c1 = t.apply(
        FinalTranscript(
            "Hey there.", start=0.2, end=1.0, channel=1, segment_key="1:0.000", end_of_turn=True
        )
    )
    c0a = t.apply(FinalTranscript("Hi,", start=0.0, end=0.8, channel=0, segment_key="0:0.000"))
    c0b = t.apply(
        FinalTranscript(
            "how are you?", start=0.8, end=2.0, channel=0, segment_key="0:0.800", end_of_turn=True
        )
    )
    c1b = t.apply(FinalTranscript("Fine.", start=2.1, end=2.5, channel=1, segment_key="1:2.100"))
    assert [s.segment_id for s in (c1, c0a, c0b, c1b)] == [0, 1, 2, 3]
    assert t.text == "Hey there. Hi, how are you? Fine."
    assert t.channel_text(0) == "Hi, how are you?"
    assert t.channel_text(1) == "Hey there. Fine."
    assert t.partial_text == ""
    assert t.utterances() == [(c1,), (c0a, c0b), (c1b,)]


def test_speaker_comes_from_the_event_or_from_most_words():
    """The codecs' rule (events.speaker_of): most words win, the first seen breaks a tie,
    and words whose speaker is not known do not vote."""
    t = Transcript()
    same = (Word("a", 0, 1, speaker="0"), Word("b", 1, 2, speaker="0"))
    mixed = (Word("a", 0, 1, speaker="0"), Word("b", 1, 2, speaker="1"))
    most = (*mixed, Word("c", 2, 3, speaker="1"))
    unknown = (Word("a", 0, 1), Word("b", 1, 2), Word("c", 2, 3, speaker="1"))
    assert t.apply(FinalTranscript("a b", words=same, segment_key="1")).speaker == "0"
    assert t.apply(FinalTranscript("a b", words=mixed, segment_key="2")).speaker == "0"
    assert t.apply(FinalTranscript("a b", words=mixed, speaker="B", segment_key="3")).speaker == "B"
    assert t.apply(FinalTranscript("a b c", words=most, segment_key="4")).speaker == "1"
    assert t.apply(FinalTranscript("a b c", words=unknown, segment_key="5")).speaker == "1"
    assert t.apply(FinalTranscript("a b", words=same[:0], segment_key="6")).speaker is None


def test_session_ids_and_ignored_events():
    t = Transcript(provider="assemblyai")
    assert t.session_id is None
    for event in (
        SpeechStarted(timestamp=0.1),
        UtteranceEnd(last_word_end=1.0),
        SessionEnded(audio_duration_s=4),
        ProviderWarning("odd"),
        ProviderErrorEvent("bad", code=3005),
        SessionStarted(),  # no id: nothing to record
    ):
        assert t.apply(event) is None
    assert t.version == 0
    t.apply(SessionStarted(session_id="first"))
    assert t.session_id == "first"
    a = t.apply(FinalTranscript("a", segment_key="0"))
    # After a reconnect the transcript keeps the first id; new segments carry the new one.
    t.apply(SessionStarted(session_id="second"))
    b = t.apply(FinalTranscript("b", segment_key="r1:0"))
    assert t.session_id == "first"
    assert (a.session_id, b.session_id) == ("first", "second")

    given = Transcript(session_id="mine")
    given.apply(SessionStarted(session_id="theirs"))
    assert given.session_id == "mine"


def test_apply_rejects_what_is_not_an_event():
    t = Transcript()
    with pytest.raises(ConfigurationError, match="decode provider frames with a codec"):
        t.apply({"type": "Results"})  # type: ignore[arg-type]


def test_version_tail_clear_partials_and_repr():
    t = Transcript(provider="deepgram")
    versions = [t.version]
    t.apply(PartialTranscript("a", segment_key="0"))
    versions.append(t.version)
    t.apply(FinalTranscript("A.", start=0, end=1.5, segment_key="0"))
    versions.append(t.version)
    t.apply(PartialTranscript("b", segment_key="1"))
    versions.append(t.version)
    t.clear_partials()
    versions.append(t.version)
    t.clear_partials()  # nothing left: no change
    versions.append(t.version)
    assert versions == [0, 1, 2, 3, 4, 4]
    assert t.partials == {}

    for i in range(1, 6):
        t.apply(FinalTranscript(f"s{i}", start=i * 2.0, end=i * 2.0 + 1, segment_key=str(i)))
    assert [s.text for s in t.tail(2)] == ["s4", "s5"]
    assert t.tail(0) == []
    assert len(t.tail(100)) == 6
    t.apply(PartialTranscript("pending", segment_key="9"))
    assert repr(t) == "<Transcript provider='deepgram' segments=6 duration=11.00s partials=1>"


def test_readers_return_copies():
    t = Transcript()
    t.apply(PartialTranscript("p", segment_key="x"))
    t.apply(FinalTranscript("f", segment_key="y"))
    t.segments.clear()
    t.partials.clear()
    assert len(t) == 1 and list(t.partials) == ["x"]


def test_segment_is_frozen_and_words_are_a_tuple():
    t = Transcript()
    seg = t.apply(FinalTranscript("a", words=[Word("a", 0, 1)], segment_key="k"))  # type: ignore[arg-type]
    assert seg is not None and seg.words == (Word("a", 0, 1),)
    assert seg.duration == 0.0
    with pytest.raises(AttributeError):
        seg.text = "b"  # type: ignore[misc]


def test_public_names():
    import livetx_widgets
    from livetx_widgets import events

    assert livetx_widgets.Transcript is Transcript
    assert livetx_widgets.Segment is Segment
    assert livetx_widgets.Word is events.Word
    from livetx_widgets.transcript import Word as ReExported

    assert ReExported is events.Word


def test_commit_partials_keeps_unfinished_words_marked_not_final():
    from livetx_widgets.events import FinalTranscript, PartialTranscript
    from livetx_widgets.transcript import Transcript

    t = Transcript(provider="deepgram")
    t.apply(FinalTranscript("One.", start=0.0, end=1.0, segment_key="a"))
    t.apply(PartialTranscript("two thr", start=1.0, end=1.8, segment_key="b"))
    committed = t.commit_partials()
    assert [s.text for s in committed] == ["two thr"]
    assert [(s.text, s.is_final) for s in t] == [("One.", True), ("two thr", False)]
    assert t.partial_text == ""
    df = t.to_dataframe()
    assert list(df["is_final"]) == [True, False]
    assert t.commit_partials() == []
