"""Metrics: pure functions on known inputs, and end to end on scripted sessions in real time."""

from __future__ import annotations

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import CompareSession
from livetx_widgets.compare.align import aligned_rows
from livetx_widgets.compare.metrics import (
    ProviderLog,
    final_latencies,
    first_partial_latency,
    normalise,
    speech_regions,
    word_error_rate,
)
from livetx_widgets.server import LocalServer
from livetx_widgets.transcript import Segment


def _clock(audio_s: float) -> float:
    return 100.0 + audio_s  # a real-time source read from t=100


def test_energy_vad_finds_the_loud_stretches_and_bridges_short_pauses():
    frame = 0.02
    energy = np.full(300, 1e-4, np.float32)  # 6 s at -80 dBFS
    energy[25:60] = 0.1  # 0.5-1.2 s
    energy[70:100] = 0.1  # 1.4-2.0 s: a 0.2 s pause, bridged
    energy[200:204] = 0.1  # 4.0-4.08 s: a blip, dropped
    energy[250:280] = 0.05  # 5.0-5.6 s
    assert speech_regions(energy, frame) == [(0.5, 2.0), (5.0, 5.6)]
    assert speech_regions(np.zeros(0, np.float32), frame) == []
    assert speech_regions(np.zeros(100, np.float32), frame) == []  # digital silence


def test_latencies_are_measured_from_the_audio_on_the_shared_clock():
    log = ProviderLog()
    log.partial(100.2, "")  # before speech, no text: ignored
    log.partial(100.8, "one")
    log.final(102.1, 0, 0.5, 1.6, "one two three")
    log.final(105.9, 1, 4.0, 5.4, "four five")
    log.final(106.5, 1, 4.0, 5.4, "four, five")  # a re-final keeps its first arrival
    regions = [(0.5, 1.6), (4.0, 5.5), (8.0, 9.0)]  # the last one nobody finalised
    assert first_partial_latency(regions, log, _clock) == pytest.approx(0.3, abs=1e-3)
    latencies, missed = final_latencies(regions, log, _clock)
    assert latencies == pytest.approx([0.5, 0.4])
    assert missed == 1
    assert first_partial_latency([], log, _clock) is None


def test_a_region_s_final_is_the_last_one_that_belongs_to_it():
    log = ProviderLog()
    log.final(101.2, 0, 0.5, 1.0, "one")  # the region split in two finals...
    log.final(102.0, 1, 1.0, 1.5, "two")  # ...this one holds its end
    log.final(104.9, 2, 1.55, 4.4, "three four")  # spills a little into region 0, mostly 1
    log.final(105.0, 3, 3.5, 3.5, "")  # no text: not a final that counts
    regions = [(0.5, 1.6), (3.0, 4.5)]
    latencies, missed = final_latencies(regions, log, _clock)
    assert latencies == pytest.approx([102.0 - 101.6, 104.9 - 104.5])
    assert missed == 0


def test_word_error_rate_ignores_case_and_punctuation():
    assert normalise("Hello, World! It's   fine.") == "hello world its fine"
    assert word_error_rate("Hello, world.", "hello world") == 0.0
    assert word_error_rate("hello big world", "Hello world!") == pytest.approx(1 / 3)
    assert word_error_rate("hello world", "") == 1.0


def _seg(i: int, start: float, end: float, text: str) -> Segment:
    return Segment(segment_id=i, key=str(i), start=start, end=end, text=text)


def test_aligned_rows_group_overlapping_finals():
    rows = aligned_rows({
        "a": [_seg(0, 0.5, 2.0, "one two"), _seg(1, 3.0, 4.0, "three")],
        "b": [_seg(0, 0.4, 1.1, "one"), _seg(1, 1.2, 2.1, "two"), _seg(2, 3.1, 3.9, "tree")],
        "c": [],
    })  # fmt: skip
    assert rows == [
        {"start": 0.4, "end": 2.1, "a": "one two", "b": "one two", "c": ""},
        {"start": 3.0, "end": 4.0, "a": "three", "b": "tree", "c": ""},
    ]


def test_metrics_on_scripted_sessions_with_known_timing(words, words_audio):
    """Real time, two providers on one file: the script engine's first partial comes when the
    audio clock passes the first word's end (0.8 s: 0.3 s after speech starts at 0.5 s, less
    the 50 ms chunk that carried the start), its final 0.5 s (the endpoint) after the last
    word (1.6 s). Both providers hear the same clock, so both measure the same."""
    with LocalServer(engine="script", script=words["script"]) as srv:
        providers = [("deepgram", {"url": srv.url}), ("assemblyai", {"url": srv.url})]
        compare = CompareSession(providers, source=words_audio, api_key="k",
                                 reference="One, two, three!")  # fmt: skip
        with compare:
            assert compare.wait(15 * support.TIMING)
    assert compare.speech_regions() == words["speech"]  # the VAD heard the tone where the words are
    required = {"provider", "wer", "first_partial_s", "final_p50_s", "final_p95_s",
                "revisions_per_final", "finals", "words", "reconnects", "error"}  # fmt: skip
    assert required <= set(compare.summary().columns)
    summary = compare.summary().set_index("provider")
    slack = 0.15 * support.TIMING
    for label in ("deepgram", "assemblyai"):
        row = summary.loc[label]
        assert row["wer"] == 0.0
        assert 0.23 <= row["first_partial_s"] <= 0.25 + slack, label
        assert 0.48 <= row["final_p50_s"] <= 0.5 + slack, label
        assert row["finals"] == 1 and row["words"] == 3 and row["words_per_final"] == 3
        assert row["revisions_per_final"] == 3  # a partial per word, then the final
        assert row["reconnects"] == 0 and row["missed_regions"] == 0 and row["error"] == ""
    aligned = compare.aligned()
    assert list(aligned.columns) == ["start", "end", "deepgram", "assemblyai"]
    assert aligned[["deepgram", "assemblyai"]].values.tolist() == [["one two three"] * 2]


def test_frame_loudness_is_the_rms_of_each_whole_frame():
    from livetx_widgets.compare.metrics import frame_loudness

    full = np.full(320, 16384, dtype="<i2")  # half scale: RMS 0.5
    silent = np.zeros(320, dtype="<i2")
    pcm = np.concatenate([full, silent, -full, full[:100]]).tobytes()  # last frame not whole
    loud = frame_loudness(pcm, 320)
    assert loud.dtype == np.float32 and loud.tolist() == [0.5, 0.0, 0.5]
    assert frame_loudness(pcm[:100], 320).size == 0
