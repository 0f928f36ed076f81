"""The whisper engine's segmenter and glue without the model: made-up speech probabilities, the
audio clock and reported decode costs in, decisions out.

The driver below plays the engine's part: it advances the audio clock in 50 ms chunks, gives
the segmenter one probability per 32 ms window and reports a chosen cost for every decode, so
every expected position is computed from the settings, never measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from livetx_widgets.server.whisper import WhisperEngine, WhisperStream
from livetx_widgets.server.whisper.recognizer import Decoded, Decoding
from livetx_widgets.server.whisper.segmenter import (
    WINDOW,
    DecodeEarly,
    DecodePartial,
    Final,
    PartialSkipped,
    Segmenter,
    SegmenterSettings,
    SpeechStarted,
)

RATE = 16000
CHUNK = 800  # 50 ms
SPEECH, QUIET = 0.9, 0.05


def probs(*spans: tuple[float, float]) -> list[float]:
    """One probability per window for spans of (seconds, probability), in order."""
    out: list[float] = []
    for seconds, p in spans:
        out += [p] * round(seconds * RATE / WINDOW)
    return out


def run(seg: Segmenter, window_probs: list[float], cost=lambda d: 0.0, produced=True):
    """Drive ``seg`` as the engine does; return ``(audio clock, decision)`` pairs."""
    out: list[tuple[int, object]] = []
    total = len(window_probs) * WINDOW
    i = 0

    def carry_out(decisions):
        for d in decisions:
            out.append((seg.received, d))
            if isinstance(d, (DecodePartial, DecodeEarly)) or (
                isinstance(d, Final) and d.decode == "now"
            ):
                seg.report(d, cost_s=cost(d), work_s=1.0, produced=produced, shown=produced)

    while seg.received < total:
        seg.advance(min(CHUNK, total - seg.received))
        while i < len(window_probs) and seg.windowed + WINDOW <= seg.received:
            carry_out(seg.window(window_probs[i]))
            i += 1
        carry_out(seg.poll())
        assert len(out) < 100_000
    return out


def of(kind, decisions):
    return [(at, d) for at, d in decisions if isinstance(d, kind)]


def starts(*spans: tuple[float, float]) -> list[int]:
    """The sample at which each span of ``probs(*spans)`` begins."""
    return [len(probs(*spans[:k])) * WINDOW for k in range(len(spans))]


def test_speech_onset_and_first_partial_then_one_per_interval():
    s = SegmenterSettings()
    seg = Segmenter(s, work_of=lambda d: 1.0)
    spans = (1.0, QUIET), (3.0, SPEECH)
    decisions = run(seg, probs(*spans))
    onset = starts(*spans)[1]
    assert [d for _, d in of(SpeechStarted, decisions)] == [SpeechStarted(at=onset)]
    partials = of(DecodePartial, decisions)
    first_at, first = partials[0]
    due = onset + int(s.first_partial_s * RATE)
    assert due <= first_at < due + CHUNK, "the first partial comes with the chunk that reaches it"
    assert first == DecodePartial(start=onset - int(s.preroll_s * RATE), end=first_at, onset=onset)
    gaps = np.diff([at for at, _ in partials])
    interval = int(s.partial_interval_s * RATE)
    assert all(interval <= g < interval + CHUNK for g in gaps), gaps
    assert len(partials) >= 4 and not of(PartialSkipped, decisions) and not of(Final, decisions)


def test_no_partial_before_min_speech_is_voiced():
    s = SegmenterSettings(min_speech_s=1.0, first_partial_s=0.5)
    seg = Segmenter(s)
    spans = (0.2, QUIET), (2.0, SPEECH)
    decisions = run(seg, probs(*spans))
    first_at, _ = of(DecodePartial, decisions)[0]
    assert first_at - starts(*spans)[1] >= s.min_speech_s * RATE


def test_pause_decodes_the_final_early_and_the_endpoint_returns_it():
    s = SegmenterSettings()
    seg = Segmenter(s)
    spans = (0.5, QUIET), (1.5, SPEECH), (1.0, QUIET)
    decisions = run(seg, probs(*spans))
    _, onset, quiet = starts(*spans)
    early = of(DecodeEarly, decisions)
    assert len(early) == 1
    # The pause begins with the first quiet window; the early decode is due with the window
    # that makes it early_final_s long, the endpoint with the one that makes it end_silence_s.
    early_end = quiet + WINDOW * int(np.ceil(s.early_final_s * RATE / WINDOW))
    assert early[0][1] == DecodeEarly(start=onset - int(s.preroll_s * RATE), end=early_end,
                                      onset=onset)  # fmt: skip
    finals = [d for _, d in of(Final, decisions)]
    end = quiet + WINDOW * int(np.ceil(s.end_silence_s * RATE / WINDOW))
    assert finals == [
        Final(start=early[0][1].start, end=end, end_of_speech=True, decode="early",
              onset=early[0][1].onset)
    ]
    assert not seg.in_speech


def test_speech_resuming_makes_the_early_decode_a_partial_and_the_utterance_go_on():
    s = SegmenterSettings()
    seg = Segmenter(s)
    decisions = run(seg, probs((1.0, SPEECH), (0.25, QUIET), (1.0, SPEECH), (0.6, QUIET)))
    assert len(of(DecodeEarly, decisions)) == 2, "one per pause"
    finals = [d for _, d in of(Final, decisions)]
    assert len(finals) == 1 and finals[0].start == 0 and finals[0].decode == "early"
    assert len(of(SpeechStarted, decisions)) == 1


def test_probabilities_between_the_thresholds_neither_start_nor_end_a_pause():
    s = SegmenterSettings(vad_threshold=0.5)
    seg = Segmenter(s)
    unsure = 0.4  # below the speech threshold, above threshold - 0.15
    decisions = run(seg, probs((0.5, SPEECH), (2.0, unsure)))
    assert not of(DecodeEarly, decisions) and not of(Final, decisions)
    assert seg.in_speech


def test_an_early_decode_without_text_is_asked_again_and_the_final_decodes_now():
    seg = Segmenter(SegmenterSettings())
    decisions = run(seg, probs((1.0, SPEECH), (1.0, QUIET)), produced=False)
    early = of(DecodeEarly, decisions)
    assert len(early) > 1, "each quiet window until the endpoint asks again"
    finals = [d for _, d in of(Final, decisions)]
    assert len(finals) == 1 and finals[0].decode == "now" and finals[0].end_of_speech


def test_a_blip_too_short_to_be_speech_ends_without_a_decode():
    seg = Segmenter(SegmenterSettings(min_speech_s=0.1, early_final_s=0.0001))
    decisions = run(seg, probs((0.5, QUIET), (0.032, SPEECH), (1.0, QUIET)), produced=False)
    assert [d.decode for _, d in of(Final, decisions)] == ["none"]
    assert not of(DecodePartial, decisions)


def test_max_utterance_length_cuts_at_the_quietest_recent_window_and_speech_goes_on():
    s = SegmenterSettings(max_utterance_s=5.0, preroll_s=0.0)
    seg = Segmenter(s)
    # 7 s of speech with one dip inside the cut search span (the last 3 s before 5 s).
    spans = (3.0, SPEECH), (0.032, 0.6), (4.0, SPEECH)
    decisions = run(seg, probs(*spans))
    finals = [d for _, d in of(Final, decisions)]
    assert finals[0].end_of_speech is False and finals[0].decode == "now"
    assert finals[0].start == 0 and finals[0].end == starts(*spans)[1] + WINDOW // 2
    assert finals[0].end - finals[0].start <= s.max_utterance_s * RATE
    assert len(of(SpeechStarted, decisions)) == 1, "voice did not start again"
    later = [d for _, d in of(DecodePartial, decisions) if d.start >= finals[0].end]
    assert later and later[0].start == finals[0].end == later[0].onset
    assert seg.flush() == [
        Final(start=finals[0].end, end=seg.received, end_of_speech=False, decode="now",
              onset=finals[0].end)
    ]
    assert finals[0].onset == 0, "the cut final keeps the onset of the voice"


def test_cut_without_a_dip_falls_back_to_now():
    s = SegmenterSettings(max_utterance_s=2.0, preroll_s=0.0, cut_search_s=0.4)
    seg = Segmenter(s)
    decisions = run(seg, probs((3.0, SPEECH)))
    first = of(Final, decisions)[0][1]
    # No window in the search span: cut where the limit was reached (the end of that window).
    limit = s.max_utterance_s * RATE
    assert first.end == WINDOW * int(np.ceil(limit / WINDOW)) and first.end - first.start >= limit
    assert first.end_of_speech is False


def test_flush_ends_the_utterance_and_the_next_onset_starts_after_it():
    s = SegmenterSettings()
    seg = Segmenter(s)
    run(seg, probs((1.0, SPEECH)))
    flushed = seg.flush()
    assert flushed == [
        Final(start=0, end=seg.received, end_of_speech=False, decode="now", onset=0)
    ]
    assert seg.flush() == []
    seg.advance(CHUNK)
    while seg.windowed + WINDOW <= seg.received:
        started = seg.window(SPEECH)
        if started:
            break
    assert isinstance(started[0], SpeechStarted) and started[0].at >= flushed[0].end


def test_window_before_its_audio_arrived_is_refused():
    seg = Segmenter()
    with pytest.raises(ValueError, match="advance"):
        seg.window(0.9)


# -- the budget ------------------------------------------------------------------------------


def speech_with_pauses() -> list[float]:
    turn = probs((3.0, SPEECH), (0.6, QUIET))
    return probs((0.5, QUIET)) + turn * 4


def final_positions(decisions) -> list[int]:
    return [at for at, _ in of(Final, decisions)]


def test_expensive_partials_are_skipped_and_finals_keep_their_timing():
    s = SegmenterSettings(compute_budget=0.1)
    cheap = run(Segmenter(s), speech_with_pauses(), cost=lambda d: 0.01)
    dear = run(Segmenter(s), speech_with_pauses(), cost=lambda d: 0.3)
    assert not of(PartialSkipped, cheap)
    assert of(PartialSkipped, dear)
    assert len(of(DecodePartial, dear)) < len(of(DecodePartial, cheap)) / 2
    assert final_positions(dear) == final_positions(cheap), "finals are never delayed"
    assert len(final_positions(cheap)) == 4


def test_first_partial_of_each_utterance_may_borrow_later_ones_may_not():
    s = SegmenterSettings(compute_budget=0.0)
    seg = Segmenter(s)
    decisions = run(seg, speech_with_pauses(), cost=lambda d: 0.05)
    partials = of(DecodePartial, decisions)
    onsets = {d.onset for _, d in partials}
    assert len(partials) == len(onsets) >= 1, "only first partials, borrowed"
    assert partials[0][1].onset == of(SpeechStarted, decisions)[0][1].at
    skipped = of(PartialSkipped, decisions)
    assert skipped and all(d.credit_s < d.cost_s for _, d in skipped)
    # Every partial was charged (finals are not: they go into the lag), and with no budget
    # the debt is never paid back.
    assert seg.credit_s == pytest.approx(-0.05 * len(partials))


def test_credit_is_earned_on_the_audio_clock_and_capped():
    s = SegmenterSettings(compute_budget=0.1, max_credit_s=0.5)
    seg = Segmenter(s)
    seg.advance(RATE)
    assert seg.credit_s == pytest.approx(0.1)
    seg.advance(60 * RATE)
    assert seg.credit_s == pytest.approx(0.5)


def test_partial_cost_is_an_average_of_measured_cost_per_work_second():
    s = SegmenterSettings(initial_cost_per_work_s=0.01, cost_smoothing=0.5, compute_budget=0.1)
    seg = Segmenter(s, work_of=lambda duration_s: 10.0 + duration_s)
    seg.advance(RATE)
    assert seg.partial_cost_s() == pytest.approx(0.01 * 11.0)
    d = DecodePartial(start=0, end=RATE, onset=0)
    seg.report(d, cost_s=0.33, work_s=11.0)  # 0.03 s per work second
    assert seg.partial_cost_s() == pytest.approx(0.02 * 11.0)
    assert seg.credit_s == pytest.approx(0.1 - 0.33)
    seg.report(Final(start=0, end=RATE, end_of_speech=True, decode="now"), cost_s=1.0, work_s=30)
    assert seg.partial_cost_s() == pytest.approx(0.02 * 11.0), "finals do not move it"
    assert seg.credit_s == pytest.approx(0.1 - 0.33), "nor the partials' credit"
    assert seg.behind_s == pytest.approx(1.33), "but they count in the lag"


def test_no_partial_while_the_stream_is_behind_real_time():
    s = SegmenterSettings(max_behind_s=0.1, first_partial_s=0.3, partial_interval_s=0.2)
    seg = Segmenter(s)
    # A final that took 1.2 s (a slow machine): the stream is 1.2 s behind until that much
    # more audio was fed; the next utterance's partials wait for it to catch up.
    spans = (1.0, SPEECH), (0.6, QUIET), (3.0, SPEECH)
    decisions = run(seg, probs(*spans), cost=lambda d: 1.2 if isinstance(d, DecodeEarly) else 0)
    ((early_at, _),) = of(DecodeEarly, decisions)[:1]
    skipped = [d for _, d in of(PartialSkipped, decisions)]
    assert skipped and all(d.behind_s > 0.1 for d in skipped), skipped
    after = [at for at, _ in of(DecodePartial, decisions) if at > early_at]
    assert after and after[0] - early_at >= (1.2 - 0.1) * RATE
    assert seg.behind_s == 0.0


# -- the engine around it, with a fake model ------------------------------------------------


class LoudVad:
    """Stands in for the Silero session: a window is speech when it is loud."""

    def run(self, _outputs, inputs):
        windows = inputs["input"][:, -WINDOW:]
        p = np.where(np.abs(windows).mean(axis=1) > 0.05, SPEECH, QUIET).astype(np.float32)
        return p[:, None], inputs["h"], inputs["c"]


class FakeRecognizer:
    """Returns a fixed text and reports ``seconds`` as each decode's cost, whatever it took."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.calls: list[tuple[int, bool]] = []

    def decode(
        self, audio, *, language, beam_size, with_words, min_context_s, allow_retry, keyterms
    ):
        self.calls.append((len(audio), with_words))
        n = len(self.calls)
        words = (("Hello", 0.31, 0.6, 0.9), ("there.", 0.6, 0.9, 0.8)) if with_words else ()
        text = "Hello there." if with_words else f"Hello {n}"
        decoded = Decoded(text, words, 0.01, -0.2, language or "en", 10.0)
        return Decoding(result=decoded, seconds=self.seconds, window_s=10.0)


def talk() -> bytes:
    t = np.arange(int(1.5 * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    pcm = np.concatenate([np.zeros(RATE // 2), tone, np.zeros(RATE)] * 3)
    return (pcm * 32767).astype("<i2").tobytes()


def stream_results(seconds: float):
    rec = FakeRecognizer(seconds)
    stream = WhisperStream(WhisperEngine(), rec, LoudVad(), RATE, "en")
    pcm, out = talk(), []
    for off in range(0, len(pcm), 2 * CHUNK):
        out += stream.feed(pcm[off : off + 2 * CHUNK])
    stats = {**stream.stats, "partial_decodes": sum(not words for _, words in rec.calls)}
    return out + stream.close(), stats


def test_engine_charges_the_cost_the_recognizer_measured():
    """The budget spends the decode cost the recognizer reports (here made up and instant),
    not the time the engine waited for the call, so a slow-reporting decoder loses partials
    while its finals come at the same audio positions."""
    cheap, cheap_stats = stream_results(seconds=0.001)
    dear, dear_stats = stream_results(seconds=0.4)
    assert dear_stats["partial_decode_s"] == pytest.approx(0.4 * dear_stats["partial_decodes"])
    assert dear_stats["partials_skipped"] > cheap_stats["partials_skipped"] == 0
    assert dear_stats["partials"] < cheap_stats["partials"]

    def finals(results):
        return [(r.start, r.end, r.text, r.end_of_speech) for r in results if r.kind == "final"]

    assert finals(dear) == finals(cheap)
    assert [f[2] for f in finals(cheap)] == ["Hello there."] * 3
    kinds = [r.kind for r in cheap]
    assert kinds.count("speech_started") == 3 and kinds[0] == "speech_started"


# -- scheduling for latency, and the load policy -------------------------------------------------


def test_no_partial_is_decoded_during_a_pause_and_partials_go_on_when_speech_resumes():
    s = SegmenterSettings(partial_interval_s=0.2)
    seg = Segmenter(s)
    spans = (1.0, SPEECH), (0.3, QUIET), (1.0, SPEECH)
    decisions = run(seg, probs(*spans))
    _, quiet, resume = starts(*spans)
    during = [at for at, _ in of(DecodePartial, decisions) if quiet + WINDOW < at <= resume]
    assert during == [], "the pause belongs to the early final's decode"
    ((early_at, _),) = of(DecodeEarly, decisions)  # it served as the pause's partial
    after = [at for at, _ in of(DecodePartial, decisions) if at > resume]
    assert after and after[0] <= max(resume, early_at + int(0.2 * RATE)) + CHUNK


def test_a_first_partial_that_showed_nothing_is_retried_sooner_than_the_interval():
    s = SegmenterSettings(first_partial_s=0.3, first_partial_retry_s=0.2, partial_interval_s=1.0)
    spans = (0.5, QUIET), (2.5, SPEECH)
    blank = run(Segmenter(s), probs(*spans), produced=False)
    shown = run(Segmenter(s), probs(*spans), produced=True)
    gap = lambda ds: np.diff([at for at, _ in of(DecodePartial, ds)][:2])[0]  # noqa: E731
    assert gap(blank) < int(0.2 * RATE) + CHUNK <= gap(shown) - int(0.7 * RATE)


def test_a_slower_machine_loses_partials_first_and_keeps_final_and_first_partial_timing():
    """The same speech on machines 1x, 3x and 10x slower (each decode's measured cost scaled):
    fewer partials the slower it gets, but every early final and final at the same audio clock
    position; up to 3x every utterance's first partial is still decoded when it is due (it
    may borrow)."""
    s = SegmenterSettings(first_partial_s=0.3, partial_interval_s=0.4)
    speeds = (1, 3, 10)
    runs = [run(Segmenter(s), speech_with_pauses(), cost=lambda d, k=k: 0.04 * k) for k in speeds]
    partials = [len(of(DecodePartial, r)) for r in runs]
    assert partials[0] > partials[1] > partials[2], partials
    for r in runs[1:]:
        assert final_positions(r) == final_positions(runs[0])
        assert [at for at, _ in of(DecodeEarly, r)] == [at for at, _ in of(DecodeEarly, runs[0])]

    def firsts(r):
        return {d.onset: at for at, d in reversed(of(DecodePartial, r))}

    assert firsts(runs[1]) == firsts(runs[0]) and len(firsts(runs[0])) == 4
