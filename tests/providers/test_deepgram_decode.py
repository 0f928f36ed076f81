"""DeepgramCodec.decode: the protocol notes' sample frames, lifecycles and malformed input."""

from __future__ import annotations

import json

import pytest

from livetx_widgets.events import (
    ConfigureResult,
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
from livetx_widgets.providers import DeepgramCodec


@pytest.fixture
def codec():
    return DeepgramCodec()


# -- the sample frames of deepgram-live-v1.md, replayed verbatim ----------------------------


def test_interim_results_sample(codec, dg_fixture):
    text = dg_fixture("results-interim-paris")
    assert codec.decode(text) == [
        PartialTranscript(
            text="Paris at a moment",
            words=(
                Word("Paris", 0.0, 0.39999998, 0.97265625, "0"),
                Word("at", 0.39999998, 0.64, 0.89990234, "0"),
                Word("a", 0.64, 0.79999995, 0.9941406, "0"),
                Word("moment", 0.79999995, 0.96, 0.97998047, "0"),
            ),
            start=0.0,
            end=1.0,
            confidence=0.97998047,
            speaker="0",
            channel=0,
            segment_key="0:0.000",
            end_of_turn=False,
        )
    ]
    assert codec.finished is False


def test_final_results_sample_replaces_its_interim(codec, dg_fixture):
    interim = codec.decode(dg_fixture("results-interim-paris"))[0]
    [final] = codec.decode(dg_fixture("results-final-paris"))
    assert final == FinalTranscript(
        text="Paris at a moment's notice.",
        words=(
            Word("Paris", 0.0, 0.39999998, 0.9223633, "0"),
            Word("at", 0.39999998, 0.71999997, 0.9902344, "0"),
            Word("a", 0.71999997, 0.79999995, 0.99902344, "0"),
            Word("moment's", 0.79999995, 1.1999999, 0.9536133, "0"),
            Word("notice.", 1.1999999, 1.5999999, 0.9921875, "0"),
        ),
        start=0.0,
        end=2.3,
        confidence=0.9902344,
        speaker="0",
        channel=0,
        segment_key="0:0.000",
        end_of_turn=True,
        from_finalize=False,
    )
    assert final.segment_key == interim.segment_key
    assert final.is_final and not interim.is_final
    assert final.raw["metadata"]["model_info"]["arch"] == "nova-3"


def test_docs_results_sample_without_diarization(codec, dg_fixture):
    [event] = codec.decode(dg_fixture("results-final-docs-nova2"))
    assert event == FinalTranscript(
        text="Tell me more about this.",
        words=(
            Word("Tell", 6.0699997, 6.3499994, 0.99782443),
            Word("me", 6.3499994, 6.6299996, 0.9998324),
            Word("more", 6.6299996, 6.79, 0.9995466),
            Word("about", 6.79, 7.0299997, 0.99984455),
            Word("this", 7.0299997, 7.2699995, 0.99964225),
        ),
        start=5.99,
        end=7.97,
        confidence=0.99964225,
        speaker=None,
        segment_key="0:5.990",
        end_of_turn=True,
    )


def test_metadata_sample_ends_the_session(codec, dg_fixture):
    assert codec.decode(dg_fixture("metadata")) == [
        SessionEnded(audio_duration_s=0.0, request_id="8c8ebea9-dbec-45fa-a035-e4632cb05b5f")
    ]
    assert codec.finished is True


def test_speech_started_sample(codec, dg_fixture):
    assert codec.decode(dg_fixture("speech-started")) == [SpeechStarted(timestamp=9.54)]


def test_utterance_end_sample(codec, dg_fixture):
    assert codec.decode(dg_fixture("utterance-end")) == [UtteranceEnd(last_word_end=2.395)]


def test_schema_error_sample_is_not_fatal(codec, dg_fixture):
    assert codec.decode(dg_fixture("error-schema")) == [
        ProviderErrorEvent(reason="<what went wrong>", code="SchemaError", fatal=False)
    ]


def test_closing_error_sample_is_fatal_with_its_code(codec, dg_fixture):
    assert codec.decode(dg_fixture("error-closing-net0001")) == [
        ProviderErrorEvent(reason="...", code="NET-0001", fatal=True)
    ]


def test_configure_success_sample_is_a_positive_result(codec, dg_fixture):
    assert codec.decode(dg_fixture("configure-success")) == [ConfigureResult(ok=True)]


def test_configure_failure_sample_is_a_negative_result_with_its_code(codec, dg_fixture):
    [result] = codec.decode(dg_fixture("configure-failure"))
    assert isinstance(result, ConfigureResult) and not result.ok
    assert result.code == "CONFIGURE_KEYTERMS_NOT_SUPPORTED"
    assert "<text>" in result.reason and "Configure" in result.reason


@pytest.mark.parametrize("name", ["auth-grant-response", "http-401-invalid-auth-body"])
def test_rest_payloads_are_not_stream_messages(codec, dg_fixture, name):
    [warning] = codec.decode(dg_fixture(name))
    assert isinstance(warning, ProviderWarning)
    assert "without a 'type'" in warning.message


def test_handshake_gives_session_started_from_request_id(codec):
    assert codec.handshake_events({"Dg-Request-Id": "abc-123", "Server": "x"}) == [
        SessionStarted(session_id="abc-123", request_id="abc-123", model="nova-3")
    ]
    assert codec.handshake_events({}) == [SessionStarted(model="nova-3")]


# -- lifecycles ------------------------------------------------------------------------------


def test_credit_card_trace_from_the_docs(codec, dg_results):
    """interim 0-4.3 -> final 0-3.26 -> interim 3.26-5.1 -> final+speech_final 3.26-5.5."""
    frames = [
        dg_results(0.0, 4.3, [("my", 0.1, 0.3), ("credit", 0.4, 0.8), ("card", 0.9, 1.2)]),
        dg_results(
            0.0,
            3.26,
            [("my", 0.1, 0.3), ("credit", 0.4, 0.8), ("card", 0.9, 1.2)],
            is_final=True,
        ),
        dg_results(3.26, 1.84, [("number", 3.3, 3.7)]),
        dg_results(
            3.26, 2.24, [("number", 3.3, 3.7), ("is", 3.8, 4.0)], is_final=True, speech_final=True
        ),
        json.dumps({"type": "Metadata", "request_id": "r-1", "duration": 5.5, "channels": 1}),
    ]
    events = []
    for frame in frames:
        assert codec.finished is False
        events.extend(codec.decode(frame))
    assert codec.finished is True
    assert [type(e) for e in events] == [
        PartialTranscript, FinalTranscript, PartialTranscript, FinalTranscript, SessionEnded
    ]  # fmt: skip
    a, b, c, d, end = events
    assert (a.start, a.end, a.segment_key) == (0.0, 4.3, "0:0.000")
    assert (b.start, b.end, b.segment_key) == (0.0, 3.26, "0:0.000")
    assert (c.start, c.end, c.segment_key) == (3.26, 5.1, "0:3.260")
    assert (d.start, d.end, d.segment_key) == (3.26, 5.5, "0:3.260")
    assert [e.end_of_turn for e in (a, b, c, d)] == [False, False, False, True]
    assert (b.text, d.text) == ("my credit card", "number is")
    assert d.words[-1] == Word("is", 3.8, 4.0, 0.9)
    assert end == SessionEnded(audio_duration_s=5.5, request_id="r-1")
    assert codec.close_error(1000, "") is None


def test_finalize_result_is_flagged(codec, dg_results):
    frame = dg_results(
        1.0, 0.5, [("ok", 1.1, 1.3)], is_final=True, speech_final=True, from_finalize=True
    )
    [event] = codec.decode(frame)
    assert isinstance(event, FinalTranscript)
    assert event.from_finalize is True and event.end_of_turn is True


def test_multichannel_results_key_by_channel(codec, dg_results):
    [left] = codec.decode(dg_results(2.0, 1.0, [("hi", 2.1, 2.4)], channel=0))
    [right] = codec.decode(dg_results(2.0, 1.0, [("yo", 2.1, 2.4)], channel=1))
    assert (left.channel, right.channel) == (0, 1)
    assert left.segment_key != right.segment_key


def test_speaker_of_a_segment_is_its_most_frequent_word_speaker(codec):
    words = [
        {"word": w, "start": i, "end": i + 0.5, "speaker": s}
        for i, (w, s) in enumerate([("a", 1), ("b", 0), ("c", 0)])
    ]
    frame = {
        "type": "Results", "channel_index": [0, 1], "start": 0.0, "duration": 3.0,
        "is_final": True, "channel": {"alternatives": [{"transcript": "a b c", "words": words}]},
    }  # fmt: skip
    [event] = codec.decode(json.dumps(frame))
    assert event.speaker == "0"
    assert [w.speaker for w in event.words] == ["1", "0", "0"]
    assert [w.text for w in event.words] == ["a", "b", "c"]  # no punctuated_word: raw word


def test_words_without_a_speaker_do_not_outvote_diarized_ones(codec):
    """diarize=true numbers speakers from 0: ``0`` is a speaker, a missing one is not."""
    spec = [("a", 0), ("b", None), ("c", None), ("d", 2), ("e", 2), ("f", 0)]
    words = [
        {"word": w, "start": i, "end": i + 0.5, **({} if s is None else {"speaker": s})}
        for i, (w, s) in enumerate(spec)
    ]
    frame = {
        "type": "Results", "channel_index": [0, 1], "start": 0.0, "duration": 6.0,
        "is_final": True, "channel": {"alternatives": [{"transcript": "a b c d e f",
                                                        "words": words}]},
    }  # fmt: skip
    [event] = codec.decode(json.dumps(frame))
    assert [w.speaker for w in event.words] == ["0", None, None, "2", "2", "0"]
    assert event.speaker == "0"  # 0 and 2 tie at two words each; 0 came first
    words[0]["start"] = 10**16  # too large for the fast path: the checked path decides alike
    [checked] = codec.decode(json.dumps(frame))
    assert (checked.speaker, [w.speaker for w in checked.words][1:]) == (
        "0", [None, None, "2", "2", "0"]
    )  # fmt: skip
    for w in words:
        w.pop("speaker", None)
    [event] = codec.decode(json.dumps(frame))
    assert event.speaker is None  # no diarization: no speaker, not speaker "None"


# -- tolerated oddities ----------------------------------------------------------------------


def test_empty_transcript_is_a_normal_event(codec):
    frame = (
        '{"type":"Results","channel_index":[0,1],"duration":1.0,"start":0.0,"is_final":false,'
        '"speech_final":false,"channel":{"alternatives":[{"transcript":"","confidence":0.0,'
        '"words":[]}]},"from_finalize":false}'
    )
    assert codec.decode(frame) == [
        PartialTranscript(text="", start=0.0, end=1.0, confidence=0.0, segment_key="0:0.000")
    ]


def test_results_without_alternatives_is_an_empty_segment(codec):
    frame = {"type": "Results", "start": 1.5, "duration": 0.5, "is_final": True,
             "channel": {"alternatives": []}}  # fmt: skip
    assert codec.decode(json.dumps(frame)) == [
        FinalTranscript(text="", start=1.5, end=2.0, segment_key="0:1.500")
    ]


def test_unknown_fields_are_ignored(codec, dg_fixture):
    frame = json.loads(dg_fixture("results-final-paris"))
    frame["brand_new_field"] = {"x": 1}
    frame["channel"]["alternatives"][0]["words"][0]["novel"] = True
    assert codec.decode(json.dumps(frame)) == codec.decode(dg_fixture("results-final-paris"))


def test_unknown_type_warns_with_its_name(codec):
    [warning] = codec.decode('{"type": "Hologram", "x": 1}')
    assert isinstance(warning, ProviderWarning)
    assert "'Hologram'" in warning.message
    assert warning.raw == {"type": "Hologram", "x": 1}


# -- malformed input: a warning, never an exception -------------------------------------------


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ("42", "not an object"),
        ("null", "not an object"),
        ('"Results"', "not an object"),
        ('{"type": ["Results"]}', "unknown message type"),
        ('{"no_type": 1}', "without a 'type'"),
        ('{"type":"Results","duration":1,"channel":{"alternatives":[]}}', "'start'"),
        ('{"type":"Results","start":"0","duration":1,"channel":{"alternatives":[]}}', "'start'"),
        (
            '{"type":"Results","start":0,"duration":true,"channel":{"alternatives":[]}}',
            "'duration'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"is_final":"yes",'
            '"channel":{"alternatives":[]}}',
            "'is_final'",
        ),
        ('{"type":"Results","start":0,"duration":1}', "'channel'"),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":{}}}',
            "'alternatives'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel_index":"0",'
            '"channel":{"alternatives":[]}}',
            "'channel_index'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":[{"words":[]}]}}',
            "'transcript'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":'
            '[{"transcript":"a","words":[{"start":0,"end":1}]}]}}',
            "'word'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":'
            '[{"transcript":"a","words":[{"word":"a","start":0,"end":"1"}]}]}}',
            "'end'",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":'
            '[{"transcript":"a","words":["a"]}]}}',
            "word 0",
        ),
        (
            '{"type":"Results","start":0,"duration":1,"channel":{"alternatives":'
            '[{"transcript":"a","words":[{"word":"a","start":0,"end":1,"speaker":[0]}]}]}}',
            "'speaker'",
        ),
        ('{"type":"Results","start":1e999,"duration":1,"channel":{"alternatives":[]}}', "'start'"),
        ('{"type":"SpeechStarted","channel":[0,1]}', "'timestamp'"),
        ('{"type":"UtteranceEnd","last_word_end":null}', "'last_word_end'"),
        ('{"type":"Error","description":7}', "'description'"),
        ('{"type":"ConfigureFailure","description":["x"]}', "'description'"),
    ],
)
def test_malformed_frames_become_warnings(codec, frame, says):
    events = codec.decode(frame)
    assert len(events) == 1
    [warning] = events
    assert isinstance(warning, ProviderWarning), events
    assert says in warning.message
    assert codec.finished is False


@pytest.mark.parametrize("junk", [b"\x00\xff\x10binary", bytearray(b"{}"), memoryview(b"ab")])
def test_binary_frames_become_warnings(codec, junk):
    [warning] = codec.decode(junk)
    assert isinstance(warning, ProviderWarning)
    assert "binary frame" in warning.message


def test_non_text_input_becomes_a_warning(codec):
    [warning] = codec.decode(None)
    assert isinstance(warning, ProviderWarning)


def test_metadata_with_bad_fields_still_ends_the_session(codec):
    events = codec.decode('{"type":"Metadata","duration":"long","request_id":5}')
    assert codec.finished is True
    assert events[0] == SessionEnded()
    assert isinstance(events[1], ProviderWarning)
    assert "'duration'" in events[1].message and "'request_id'" in events[1].message


def test_deeply_nested_json_is_a_warning(codec):
    [warning] = codec.decode("[" * 100_000 + "]" * 100_000)
    assert isinstance(warning, ProviderWarning)
