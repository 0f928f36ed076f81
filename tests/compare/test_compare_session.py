"""CompareSession over real sockets against LocalServer (script engine): the tee, faults."""

from __future__ import annotations

import wave
from pathlib import Path

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import BrowserMicrophone, CompareSession
from livetx_widgets.compare.tee import LaggingError
from livetx_widgets.errors import (
    AudioDeviceError,
    AudioNotKeptError,
    AuthenticationError,
    ConfigurationError,
    SegmentNotFoundError,
)
from livetx_widgets.server import LocalServer
from livetx_widgets.server.faults import Faults, Trigger

FAST = {"realtime": False, "pace": False, "api_key": "test-key"}
TEXT = "Hello there, this is the first sentence. And here is the second one."
TEXT_FINALS = ["Hello there, this is the first sentence.", "And here is the second one."]


@pytest.fixture
def servers():
    with (
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False) as a,
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False) as b,
    ):
        yield a, b


def _wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_every_provider_receives_the_identical_audio(servers, turns_audio, tmp_path):
    a, b = servers
    before = support.livetx_threads(exclude=support.SERVER_THREADS)
    providers = [
        ("deepgram", {"url": a.url, "record_to": tmp_path / "dg.wav"}),
        ("assemblyai", {"url": b.url, "record_to": tmp_path / "aai.wav"}),
        ("deepgram", {"url": b.url, "record_to": tmp_path / "dg2.wav", "label": "nova-b"}),
    ]
    shared: list[str] = []  # on_final given to the comparison: attached to every session
    labelled: list[tuple[str, str]] = []  # compare.on(): told which provider
    compare = CompareSession(
        providers, source=turns_audio, on_final=lambda s: shared.append(s.text), **FAST
    )
    compare.on("final", lambda label, segment: labelled.append((label, segment.text)))
    with compare:
        assert compare.wait(20 * support.TIMING)
    assert compare.labels == ["deepgram", "assemblyai", "nova-b"]
    assert sorted(shared) == sorted(TEXT_FINALS * 3)
    assert sorted(labelled) == sorted((lb, t) for lb in compare.labels for t in TEXT_FINALS)
    for name in ("dg", "aai", "dg2"):
        recorded = _wav_samples(tmp_path / f"{name}.wav")
        # Exactly the source, sample for sample (the last chunk may be padded to the
        # provider's minimum frame with silence).
        assert np.array_equal(recorded[: turns_audio.size], turns_audio), name
        assert not recorded[turns_audio.size :].any()
    # What the servers counted: the same bytes on every connection.
    counts = {r.audio_bytes for r in a.sessions + b.sessions}
    assert len(a.sessions + b.sessions) == 3 and min(counts) >= turns_audio.nbytes
    assert {label: t.text for label, t in compare.transcripts.items()} == dict.fromkeys(
        compare.labels, TEXT
    )
    assert compare.state == "stopped"
    assert support.livetx_threads(exclude=support.SERVER_THREADS) == before


def test_a_refused_provider_does_not_stop_the_others(turns_audio):
    with (
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False) as good,
        LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False,
                    faults=Faults(refuse_auth=True)) as bad,
    ):  # fmt: skip
        providers = [("deepgram", {"url": good.url}), ("assemblyai", {"url": bad.url}),
                     ("assemblyai", {"url": good.url, "label": "aai-ok"})]  # fmt: skip
        with CompareSession(providers, source=turns_audio, **FAST) as compare:
            assert compare.wait(20 * support.TIMING)
    assert isinstance(compare.errors["assemblyai"], AuthenticationError)
    assert compare.transcripts["deepgram"].text == TEXT
    assert compare.transcripts["aai-ok"].text == TEXT
    summary = compare.summary().set_index("provider")
    assert summary.loc["assemblyai", "error"].startswith("AuthenticationError")
    assert summary.loc["assemblyai", "state"] == "error"
    assert summary.loc["deepgram", "error"] == "" and summary.loc["deepgram", "finals"] == 2
    assert summary.loc["aai-ok", "finals"] == 2


def test_an_unresponsive_provider_never_stalls_the_others(servers, turns_audio):
    """One server stops reading after 3 frames: the others still finish at their pace."""
    a, _ = servers
    with LocalServer(engine="script", script=support.TWO_TURNS, rate_limit=False,
                     faults=Faults(stop_reading_when=Trigger(frames=3))) as stuck:  # fmt: skip
        providers = [("deepgram", {"url": a.url}), ("deepgram", {"url": stuck.url,
                     "label": "stuck", "max_reconnects": 0})]  # fmt: skip
        compare = CompareSession(providers, source=turns_audio, stop_timeout=1.0, **FAST)
        compare.start()
        try:
            assert compare.sessions["deepgram"].wait(10 * support.TIMING)
            assert compare.transcripts["deepgram"].text == TEXT
            assert compare.transcripts["stuck"].text == ""
        finally:
            compare.stop(timeout=3 * support.TIMING)
    assert not compare.running
    summary = compare.summary().set_index("provider")
    assert summary.loc["deepgram", "error"] == ""
    assert summary.loc["stuck", "finals"] == 0 and summary.loc["stuck", "error"] != ""


def test_a_provider_that_falls_too_far_behind_is_cut_off(servers):
    """AssemblyAI is paced at real time; Deepgram (pace off) races through 12 s of audio.
    With max_lag_s=5 the paced one (~2.5 s read ahead of its socket) falls more than 5 s
    behind and is stopped, with a reason; the fast one is unaffected."""
    a, b = servers
    audio = support.tone(12.0)
    providers = [("deepgram", {"url": a.url}), ("assemblyai", {"url": b.url, "pace": True})]
    compare = CompareSession(providers, source=audio, max_lag_s=5, **FAST)
    with compare:
        assert compare.wait(20 * support.TIMING)
    assert compare.transcripts["deepgram"].text == TEXT
    assert isinstance(compare.errors["assemblyai"], LaggingError)
    summary = compare.summary().set_index("provider")
    assert "fell more than 5 s behind" in summary.loc["assemblyai", "error"]
    assert compare.metadata["assemblyai"].audio_sent_s < 5  # stopped long before the end


# -- configuration ----------------------------------------------------------------------------
def test_misspelled_keywords_name_the_closest_one(turns_audio):
    with pytest.raises(TypeError, match=r"'modle' \(did you mean 'model'\?\)"):
        CompareSession(["deepgram"], source=turns_audio, modle="nova-3")
    with pytest.raises(TypeError, match=r"'referense' \(did you mean 'reference'\?\)"):
        CompareSession(["deepgram"], source=turns_audio, referense="hello")
    with pytest.raises(TypeError, match=r"providers\[1\] \(assemblyai\).*'ulr'.*'url'"):
        CompareSession(["deepgram", ("assemblyai", {"ulr": "ws://x"})], source=turns_audio)


def test_values_are_checked_like_the_sessions(turns_audio):
    with pytest.raises(ConfigurationError, match="max_lag_s= must be a number of seconds >= 5"):
        CompareSession(["deepgram"], source=turns_audio, max_lag_s=1, api_key="k")
    with pytest.raises(ConfigurationError, match="keepalive_s"):
        CompareSession(["deepgram"], source=turns_audio, keepalive_s=-1, api_key="k")
    with pytest.raises(ConfigurationError, match="Unknown provider 'deepgramm'"):
        CompareSession(["deepgramm"], source=turns_audio)
    with pytest.raises(ConfigurationError, match="shared by every provider"):
        CompareSession([("deepgram", {"source": "x.wav"})], source=turns_audio)
    with pytest.raises(ConfigurationError, match="per provider"):
        CompareSession(["deepgram"], source=turns_audio, record_to="x.wav", api_key="k")
    with pytest.raises(ConfigurationError, match="labelled 'x'"):
        CompareSession([("deepgram", {"label": "x"}), ("local", {"label": "x"})],
                       source=turns_audio)  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"providers=\[\.\.\.\]"):
        CompareSession(source=turns_audio, provider="deepgram")


def test_a_provider_that_cannot_be_made_is_kept_with_its_error(servers, turns_audio,
                                                               monkeypatch):  # fmt: skip
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    a, _ = servers
    compare = CompareSession([("deepgram", {"url": a.url, "api_key": "k"}), "assemblyai"],
                             source=turns_audio, realtime=False, pace=False)  # fmt: skip
    assert compare.sessions["assemblyai"] is None
    with compare:
        assert compare.wait(10 * support.TIMING)
    assert compare.transcripts["deepgram"].text == TEXT
    assert compare.transcripts["assemblyai"].text == ""
    row = compare.summary().set_index("provider").loc["assemblyai"]
    assert "ASSEMBLYAI_API_KEY" in row["error"] and row["state"] == "error"
    # When no provider can be made there is nothing to compare: that raises.
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="DEEPGRAM_API_KEY"):
        CompareSession(["deepgram"], source=turns_audio)


def test_the_same_span_from_every_provider_is_the_source_audio(servers, turns_audio):
    a, b = servers
    providers = [("deepgram", {"url": a.url}), ("assemblyai", {"url": b.url}),
                 ("deepgram", {"url": b.url, "keep_audio": False, "label": "nokeep"})]  # fmt: skip
    with CompareSession(providers, source=turns_audio, **FAST) as compare:
        assert compare.wait(20 * support.TIMING)
    spans = compare.audio_span(1.0, 2.5)
    assert list(spans) == ["deepgram", "assemblyai"]  # nokeep kept nothing
    for samples in spans.values():
        assert np.array_equal(samples, turns_audio[16000:40000])
    segment = compare.transcripts["assemblyai"][1]
    exact = turns_audio[round(segment.start * 16000) : round(segment.end * 16000)]
    assert np.array_equal(compare.segment_audio("assemblyai", 1), exact)
    with pytest.raises(SegmentNotFoundError, match="did you mean 'deepgram'"):
        compare.segment_audio("deepgrm", 0)
    compare.close()
    with pytest.raises(AudioNotKeptError):
        compare.segment_audio("deepgram", 0)
    assert compare.transcripts["deepgram"].text == TEXT  # the transcripts stay


def test_a_browser_microphone_headless_is_teed_to_every_provider(servers):
    """A fed source (``BrowserMicrophone``: what a page pushes in) through the tee: every
    provider hears each chunk once, in order; ``end()`` ends every session after the queue."""
    a, b = servers
    mic = BrowserMicrophone()
    # pace=False: AssemblyAI's pacing (5 s of real time here) is not what this test is about
    providers = [("deepgram", {"url": a.url}), ("assemblyai", {"url": b.url, "pace": False})]
    compare = CompareSession(providers, source=mic, api_key="test-key")
    compare.start()
    try:
        chunks = support.tone_chunks(50)
        order = [*range(0, 20), *range(30, 50), *range(20, 30)]  # put back in order
        for seq in order:
            mic.receive(chunks[seq], seq=seq, offset=seq * support.PAGE_CHUNK)
        mic.end()
        assert compare.wait(20 * support.TIMING)
    finally:
        compare.stop(5 * support.TIMING)
    assert {label: t.text for label, t in compare.transcripts.items()} == dict.fromkeys(
        compare.labels, TEXT
    )
    assert {r.audio_bytes for r in a.sessions + b.sessions} == {50 * 3200}
    for meta in compare.metadata.values():
        assert meta.raw["source"]["reordered"] == 10 and meta.error is None


def test_a_browser_microphone_that_fails_ends_every_provider(servers):
    a, b = servers
    mic = BrowserMicrophone()
    compare = CompareSession([("deepgram", {"url": a.url}), ("assemblyai", {"url": b.url})],
                             source=mic, api_key="test-key")  # fmt: skip
    with compare:
        mic.receive(support.tone_chunks(1)[0], seq=0)
        mic.fail("The microphone was unplugged.")
        assert compare.wait(20 * support.TIMING)
    for error in compare.errors.values():
        assert isinstance(error, AudioDeviceError) and "unplugged" in str(error)
