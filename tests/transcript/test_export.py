"""Exports of a small known transcript: exact DataFrames, SubRip, WebVTT, JSON and files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from livetx_widgets.errors import ConfigurationError
from livetx_widgets.events import FinalTranscript, PartialTranscript, SessionStarted, Word
from livetx_widgets.transcript import Transcript
from livetx_widgets.transcript.export import format_timestamp

SEGMENT_COLUMNS = [
    "segment_id", "start", "end", "text", "confidence", "speaker", "channel", "is_final",
    "end_of_turn", "n_words", "provider", "session_id", "received_at", "latency_s",
]  # fmt: skip


@pytest.fixture
def known() -> Transcript:
    t = Transcript(provider="deepgram")
    t.apply(SessionStarted(session_id="sess-1"))
    t.apply(PartialTranscript("hello", segment_key="0:0.000"))
    t.apply(
        FinalTranscript(
            "Hello there.",
            words=(
                Word("Hello", 0.0, 0.6, 0.9, "A", 0.75),
                Word("there.", 0.7, 1.5, 0.8, None),
            ),
            start=0.0,
            end=1.5,
            confidence=0.85,
            speaker="A",
            segment_key="0:0.000",
            end_of_turn=True,
        ),
        received_at=100.25,
        latency_s=0.3,
    )
    t.apply(FinalTranscript("Fish & <chips>", start=3723.5, end=3725.05, segment_key="0:3723.5"))
    t.apply(
        FinalTranscript(
            "Mm-hmm.",
            words=(Word("Mm-hmm.", 2.0, 2.75, 0.5, "speaker_2"),),
            start=2.0,
            end=2.75,
            channel=1,
            segment_key="1:2.000",
        ),
        received_at=101.0,
    )
    t.apply(PartialTranscript("still talking", segment_key="0:3725.05"))
    return t


def test_dataframe_exact(known, string_dtype):
    df = known.to_dataframe()
    expected = pd.DataFrame(
        {
            "segment_id": pd.Series([0, 1, 2], dtype="int64"),
            "start": [0.0, 3723.5, 2.0],
            "end": [1.5, 3725.05, 2.75],
            "text": pd.Series(["Hello there.", "Fish & <chips>", "Mm-hmm."], dtype=string_dtype),
            "confidence": [0.85, math.nan, math.nan],
            "speaker": pd.Series(["A", None, "speaker_2"], dtype=string_dtype),
            "channel": pd.Series([0, 0, 1], dtype="int64"),
            "is_final": [True, True, True],
            "end_of_turn": [True, False, False],
            "n_words": pd.Series([2, 0, 1], dtype="int64"),
            "provider": pd.Series(["deepgram"] * 3, dtype=string_dtype),
            "session_id": pd.Series(["sess-1"] * 3, dtype=string_dtype),
            "received_at": [100.25, math.nan, 101.0],
            "latency_s": [0.3, math.nan, math.nan],
        }
    )
    assert_frame_equal(df[SEGMENT_COLUMNS], expected)
    assert list(df.columns) == [*SEGMENT_COLUMNS, "key"]
    assert df["key"].tolist() == ["0:0.000", "0:3723.5", "1:2.000"]


def test_empty_dataframes_keep_columns_and_dtypes(known):
    full, empty = known.to_dataframe(), Transcript().to_dataframe()
    assert len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    full_words, empty_words = known.words_dataframe(), Transcript().words_dataframe()
    assert len(empty_words) == 0
    assert empty_words.dtypes.to_dict() == full_words.dtypes.to_dict()


def test_words_dataframe_exact(known, string_dtype):
    expected = pd.DataFrame(
        {
            "segment_id": pd.Series([0, 0, 2], dtype="int64"),
            "word_index": pd.Series([0, 1, 0], dtype="int64"),
            "text": pd.Series(["Hello", "there.", "Mm-hmm."], dtype=string_dtype),
            "start": [0.0, 0.7, 2.0],
            "end": [0.6, 1.5, 2.75],
            "confidence": [0.9, 0.8, 0.5],
            # A word without its own speaker takes its segment's.
            "speaker": pd.Series(["A", "A", "speaker_2"], dtype=string_dtype),
            # ... but not its confidence, which is about the word's own label.
            "speaker_confidence": [0.75, math.nan, math.nan],
            "channel": pd.Series([0, 0, 1], dtype="int64"),
        }
    )
    assert_frame_equal(known.words_dataframe(), expected)


def test_srt_exact(known):
    assert known.to_srt() == (
        "1\n"
        "00:00:00,000 --> 00:00:01,500\n"
        "Speaker A: Hello there.\n"
        "\n"
        "2\n"
        "00:00:02,000 --> 00:00:02,750\n"
        "speaker_2: Mm-hmm.\n"
        "\n"
        "3\n"
        "01:02:03,500 --> 01:02:05,050\n"
        "Fish & <chips>\n"
    )
    assert Transcript().to_srt() == ""


def test_vtt_exact(known):
    assert known.to_vtt() == (
        "WEBVTT\n"
        "\n"
        "00:00:00.000 --> 00:00:01.500\n"
        "<v Speaker A>Hello there.\n"
        "\n"
        "00:00:02.000 --> 00:00:02.750\n"
        "<v speaker_2>Mm-hmm.\n"
        "\n"
        "01:02:03.500 --> 01:02:05.050\n"
        "Fish &amp; &lt;chips&gt;\n"
    )
    assert Transcript().to_vtt() == "WEBVTT\n"


def test_exports_parse_back(known, srt_reader, vtt_reader):
    srt = srt_reader(known.to_srt())
    vtt = vtt_reader(known.to_vtt())
    assert [(c.start_ms, c.end_ms) for c in srt] == [(0, 1500), (2000, 2750), (3723500, 3725050)]
    assert [(c.start_ms, c.end_ms) for c in vtt] == [(c.start_ms, c.end_ms) for c in srt]
    assert [c.voice for c in vtt] == ["Speaker A", "speaker_2", None]
    assert [c.text for c in vtt] == ["Hello there.", "Mm-hmm.", "Fish & <chips>"]


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (0.0004, "00:00:00,000", "00:00:00.000"),
        (0.0006, "00:00:00,001", "00:00:00.001"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3599.999, "00:59:59,999", "00:59:59.999"),
        (360000.0, "100:00:00,000", "100:00:00.000"),
        (-1.0, "00:00:00,000", "00:00:00.000"),
        (math.nan, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamp_format(seconds, srt, vtt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == vtt


def test_cue_text_stays_on_one_line_and_end_never_precedes_start(srt_reader, vtt_reader):
    t = Transcript()
    t.apply(FinalTranscript("two\n\nlines  here", start=5.0, end=4.0))
    assert srt_reader(t.to_srt())[0].text == "two lines here"
    cue = vtt_reader(t.to_vtt())[0]
    assert (cue.text, cue.start_ms, cue.end_ms) == ("two lines here", 5000, 5000)


def test_json_round_trip(known):
    data = known.to_json()
    doc = json.loads(data)
    assert (doc["format"], doc["version"]) == ("livetx-transcript", 1)
    loaded = Transcript.from_json(data)
    assert loaded.segments == known.segments
    assert (loaded.provider, loaded.session_id) == ("deepgram", "sess-1")
    assert loaded.partials == {}  # partials are transient and not saved
    assert loaded.to_json() == data
    assert Transcript.from_json(data.encode()).segments == known.segments
    # The key index is rebuilt: a re-final after loading still replaces in place.
    seg = loaded.apply(FinalTranscript("Hello there!", start=0.0, end=1.5, segment_key="0:0.000"))
    assert seg is not None and seg.segment_id == 0 and len(loaded) == 3


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{not json", "needs the text written by Transcript.to_json"),
        ('{"segments": []}', "not a livetx transcript"),
        ('{"format": "livetx-transcript", "version": 99, "segments": []}', "upgrade"),
        ('{"format": "livetx-transcript", "version": 1}', "no \"segments\" list"),
        ('{"format": "livetx-transcript", "version": 1, "segments": [{"text": "a"}]}',
         "Segment 0 .* malformed"),
        ('{"format": "livetx-transcript", "version": 1, "segments": [{"segment_id": 3, '
         '"key": "", "start": 0, "end": 1, "text": "a"}]}', "segment ids must be"),
    ],
)  # fmt: skip
def test_from_json_rejects_bad_input(data, match):
    with pytest.raises(ConfigurationError, match=match):
        Transcript.from_json(data)


def test_save_by_extension(known, tmp_path, srt_reader):
    assert (
        Transcript.from_json(known.save(tmp_path / "t.json").read_text("utf-8")).segments
        == known.segments
    )
    assert (tmp_path / "t.srt").name == known.save(tmp_path / "t.srt").name
    assert (tmp_path / "t.srt").read_text("utf-8") == known.to_srt()
    known.save(str(tmp_path / "t.VTT"))
    assert (tmp_path / "t.VTT").read_text("utf-8") == known.to_vtt()
    known.save(tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text("utf-8") == (
        "Speaker A: Hello there.\nFish & <chips>\nspeaker_2: Mm-hmm.\n"
    )
    known.save(tmp_path / "t.csv")
    csv = pd.read_csv(tmp_path / "t.csv")
    assert csv["text"].tolist() == ["Hello there.", "Fish & <chips>", "Mm-hmm."]
    assert csv["segment_id"].tolist() == [0, 1, 2]


def test_save_rejects_unknown_extension(known, tmp_path):
    with pytest.raises(ConfigurationError) as info:
        known.save(tmp_path / "t.docx")
    message = str(info.value)
    for ext in (".json", ".srt", ".vtt", ".csv", ".txt"):
        assert ext in message
    assert not (tmp_path / "t.docx").exists()
    with pytest.raises(ConfigurationError, match="'\\(none\\)'"):
        known.save(tmp_path / "noext")
