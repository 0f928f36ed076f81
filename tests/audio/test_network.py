"""``NetworkStream`` against local stations: an endless real-time mp3/aac stream and a live HLS
playlist, with drops, stalls and errors injected (``media.RadioServer`` / ``media.HlsServer``).

The content is a tone clock (second ``k`` of the station holds ``media.tone_hz(k)``), so a test
can tell from the audio alone which second of the station it hears at every output position:
that is how the clock after a gap is checked.
"""

from __future__ import annotations

import threading
import time

import livetx_test_media as media  # loaded by tests/audio/conftest.py
import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import AudioStreamError, NetworkStream
from livetx_widgets.audio.resolve import resolve_source, source_kind

pytest.importorskip("av")
T = support.TIMING
FAST = {"stall_timeout_s": 0.5, "backoff_s": 0.1, "max_backoff_s": 0.2}


def collect(stream: NetworkStream, seconds: float, limit_s: float) -> np.ndarray:
    """Read ``seconds`` of audio (at most ``limit_s`` of wall time)."""
    out = bytearray()
    deadline = time.monotonic() + limit_s
    while len(out) < seconds * 32000 and time.monotonic() < deadline:
        chunk = stream.read(timeout=0.1)
        if chunk is None:
            break
        out += chunk
    return np.frombuffer(bytes(out), "<i2")


def tones(pcm: np.ndarray) -> list[int | None]:
    """The tone heard in each 0.2 s window (content second mod 10; None: silence)."""
    win = 3200
    return [media.nearest_tone(media.dominant_hz(pcm[i : i + win]))
            for i in range(0, len(pcm) - win + 1, win)]  # fmt: skip


def assert_on_clock(pcm: np.ndarray, *, allow_silence: bool = False) -> None:
    """The audio follows the station's clock: one phase and start second explain the tone of
    every 0.2 s window (windows straddling a second's edge, and gap silence, are not judged).
    A gap filled with too little or too much silence shifts the tones after it: no fit."""
    heard = tones(pcm)
    if not allow_silence:
        assert None not in heard, f"silence at {heard.index(None) * 0.2:.1f} s"
    best = None
    for phase in np.arange(0.0, 1.0, 0.05):  # output time of the first change of second
        for base in range(10):
            wrong = []
            for i, k in enumerate(heard):
                t0, t1 = i * 0.2 - phase, i * 0.2 + 0.2 - phase
                if k is None or np.floor(t0 + 0.03) != np.floor(t1 - 0.03):
                    continue  # silence, or the window holds two seconds
                if k != (base + int(np.floor(t0 + 0.03)) + 1) % 10:
                    wrong.append((round(i * 0.2, 1), k))
            if best is None or len(wrong) < len(best):
                best = wrong
    assert not best, f"tones off the station's clock at (time, tone): {best}"


@pytest.fixture
def threads_before():
    before = threading.enumerate()
    yield before
    assert support.wait_until(lambda: not support.livetx_threads(besides=before), 5 * T)


# aac in the full suite only: the same live path as mp3 (the HLS tests decode aac frames too)
@pytest.mark.parametrize("ext", ["mp3", pytest.param("aac", marks=pytest.mark.slow)])
def test_radio_stream_is_live_and_paced_by_the_station(clock_frames, ext, threads_before):
    with media.RadioServer(clock_frames[ext]) as radio:
        stream = NetworkStream(radio.url, **FAST)
        assert source_kind(radio.url) == ("file", radio.url)
        t0 = time.monotonic()
        stream.start()
        first = collect(stream, 0.05, 5 * T)
        started = time.monotonic() - t0
        pcm = np.concatenate([first, collect(stream, 2.45, 10 * T)])
        elapsed = time.monotonic() - t0
        stats = stream.stats()
        stream.stop()
    assert len(pcm) >= 2.5 * 16000
    assert started < 0.8 * T  # decoding starts after a few KB, not seconds of probing
    assert elapsed >= 2.3  # not faster than the station sends it
    assert stats["kind"] == "http" and stats["reconnects"] == 0 and stats["gaps"] == 0
    assert stats["format"] in ({"mp3"} if ext == "mp3" else {"aac"})
    assert_on_clock(pcm)
    assert stream.live and stream.duration_s is None


def test_shoutcast_icy_status_line_and_a_connect_burst(clock_frames, threads_before):
    with media.RadioServer(clock_frames["mp3"], icy=True, burst_s=1.0) as radio:
        time.sleep(1.2)  # the station has been on air for a while: there is a burst to send
        stream = NetworkStream(radio.url, **FAST)
        t0 = time.monotonic()
        stream.start()
        pcm = collect(stream, 2.0, 10 * T)
        elapsed = time.monotonic() - t0
        stats = stream.stats()
        stream.stop()
    assert len(pcm) >= 2.0 * 16000 and stats["reconnects"] == 0
    assert elapsed < 1.9  # the burst arrives at once, then the station's pace
    assert_on_clock(pcm)


def test_a_dropped_connection_is_reopened_and_the_gap_keeps_the_clock(clock_frames,
                                                                     threads_before):  # fmt: skip
    plan = {0: media.Fault(after_s=1.0, drop=True)}
    with media.RadioServer(clock_frames["mp3"], plan=plan) as radio:
        stream = NetworkStream(radio.url, stall_timeout_s=2.0, backoff_s=0.6, max_backoff_s=0.6)
        stream.start()
        pcm = collect(stream, 3.5, 15 * T)
        stats = stream.stats()
        stream.stop()
        assert radio.connections == 2
    assert stats["reconnects"] == 1 and stats["gaps"] == 1
    # The station kept playing during the 0.6 s backoff: that much silence was put in, so the
    # tones after it are the station's seconds at those output positions.
    assert 0.5 <= stats["gap_s"] <= 0.6 + 0.5 * T
    assert_on_clock(pcm, allow_silence=True)
    silent = sum(k is None for k in tones(pcm)) * 0.2
    assert silent >= 0.4


def test_a_stall_is_detected_and_the_stream_reopened(clock_frames, threads_before):
    plan = {0: media.Fault(after_s=1.0, stall_s=30.0)}
    with media.RadioServer(clock_frames["aac"], plan=plan) as radio:
        # The stall bound scales with the timing unit: on a loaded machine a real-time server
        # can fall silent for 0.5 s without stalling, and that would count as a second stall.
        stream = NetworkStream(radio.url, **{**FAST, "stall_timeout_s": 0.5 * T})
        stream.start()
        pcm = collect(stream, 3.0, 15 * T)
        stats = stream.stats()
        stream.stop()
    assert stats["stalls"] == 1 and stats["reconnects"] == 1 and stats["gaps"] == 1
    # At least the stall timeout went by, less what arrived late in the last codec frames
    # before the stall (an HTTP stream's gap is the wall clock minus the audio received: one
    # AAC frame is 64 ms at 16 kHz; a fresh-clone CI run measured 0.465 s).
    assert stats["gap_s"] >= 0.5 - 0.1
    assert len(pcm) >= 3.0 * 16000
    assert_on_clock(pcm, allow_silence=True)


def test_stop_during_a_stalled_read_is_prompt(clock_frames, threads_before):
    plan = {0: media.Fault(after_s=1.0, stall_s=30.0)}
    with media.RadioServer(clock_frames["mp3"], plan=plan) as radio:
        stream = NetworkStream(radio.url, stall_timeout_s=20.0)
        stream.start()
        assert len(collect(stream, 0.6, 5 * T)) == 0.6 * 16000  # decoding, mid-stream
        time.sleep(0.8)  # the station has gone silent: the reader is blocked in recv
        t0 = time.monotonic()
        stream.stop()
        assert time.monotonic() - t0 < 1.0 * T
        assert stream.read(timeout=0.1) is None
    assert not support.livetx_threads(besides=threads_before)


def test_gives_up_after_max_retries_with_a_typed_error(clock_frames, threads_before):
    plan = {i: media.Fault(status=503) for i in range(10)}
    with media.RadioServer(clock_frames["mp3"], plan=plan) as radio:
        stream = NetworkStream(radio.url, max_retries=2, **FAST)
        stream.start()
        with pytest.raises(AudioStreamError, match="gave up after 3 attempts") as info:
            collect(stream, 1.0, 10 * T)
        assert radio.connections == 3
        assert stream.read(timeout=0.1) is None  # raised once
        stream.stop()
    assert info.value.attempts == 3 and "503" in str(info.value)


def test_not_found_is_given_up_at_once(clock_frames, threads_before):
    with media.RadioServer(clock_frames["mp3"], plan={0: media.Fault(status=404)}) as radio:
        stream = NetworkStream(radio.url, **FAST)
        stream.start()
        with pytest.raises(AudioStreamError, match="404") as info:
            collect(stream, 1.0, 5 * T)
        stream.stop()
        assert radio.connections == 1
    assert info.value.status == 404


def test_connection_refused_retries_then_gives_up(threads_before):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/radio.mp3"
        stream = NetworkStream(url, max_retries=1, **FAST)
        stream.start()
        with pytest.raises(AudioStreamError, match="gave up after 2 attempts"):
            collect(stream, 1.0, 5 * T)
        stream.stop()


def test_a_page_that_is_not_audio(threads_before):
    import http.server

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>" + b"not a stream " * 2000 + b"</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        stream = NetworkStream(url, **FAST)
        stream.start()
        with pytest.raises(AudioStreamError, match="not an audio stream"):
            collect(stream, 1.0, 5 * T)
        stream.stop()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- HLS -------------------------------------------------------------------------------------------


@pytest.mark.slow  # ~4.5 s of live segments; a live playlist in the fast lane: the retry test
def test_hls_live_playlist_segments_in_order(clock_frames, threads_before):
    with media.HlsServer(clock_frames["aac"], segment_s=1.0) as hls:
        time.sleep(0)  # the station starts now; its first segments appear each second
        assert support.wait_until(lambda: hls.available() >= 3, 5 * T)
        stream = resolve_source(hls.url)
        assert isinstance(stream, NetworkStream)
        stream.start()
        pcm = collect(stream, 4.0, 12 * T)
        stats = stream.stats()
        stream.stop()
        fetched = sorted(int(p[4:].split(".")[0]) for p in hls.requests if p.startswith("/seg"))
    assert stats["kind"] == "hls" and stats["gaps"] == 0
    assert fetched == list(range(fetched[0], fetched[0] + len(fetched)))  # in order, once each
    assert hls.playlist_fetches >= 2  # reloaded
    assert_on_clock(pcm)


@pytest.mark.slow  # several seconds of live audio
def test_hls_master_playlist_and_mpegts_segments(clock_frames, threads_before, tmp_path):
    """FFmpeg's own HLS packaging (MPEG-TS with AAC) behind a master playlist: the audio-only
    variant is chosen, one decoder runs across the segments and the clock is continuous."""
    segments = media.ts_segments(media.tone_clock(10), media.CLOCK_RATE, tmp_path / "hls")
    with media.HlsServer(segments, window=4) as hls:
        assert support.wait_until(lambda: hls.available() >= 3, 6 * T)
        stream = NetworkStream(hls.master_url, **FAST)
        stream.start()
        pcm = collect(stream, 4.0, 12 * T)
        stats = stream.stats()
        stream.stop()
        paths = list(hls.requests)
    assert stats["kind"] == "hls" and stats["format"] == "mpegts" and stats["gaps"] == 0
    assert "/video.m3u8" not in paths and paths[:2] == ["/master.m3u8", "/live.m3u8"]
    assert stats["decode_errors"] == 0
    assert_on_clock(pcm)


def test_hls_segment_error_is_retried_without_a_gap(clock_frames, threads_before):
    with media.HlsServer(clock_frames["aac"], segment_s=1.0, ended_after=5,
                         faults={(1, 0): media.Fault(status=500)}) as hls:  # fmt: skip
        stream = NetworkStream(hls.url, **FAST)
        stream.start()
        pcm = collect(stream, 10.0, 12 * T)  # a finished playlist: the stream ends by itself
        assert stream.read(timeout=0.1) is None
        stats = stream.stats()
        stream.stop()
    assert stats["reconnects"] == 1 and stats["gaps"] == 0
    assert abs(len(pcm) / 16000 - 5 * hls.segment_s) < 0.15  # every segment, once
    assert hls.fetches[1] == 2
    assert_on_clock(pcm)


@pytest.mark.slow  # several seconds of live audio
def test_hls_segments_lost_in_a_stall_become_an_exact_gap(clock_frames, threads_before):
    """Playlist reloads stall for ~4.5 s; by the time one answers, the 2-segment window has
    moved past the next segment to read: the lost segments' duration is filled with silence,
    and the tones after it are on the station's clock (too little or too much would shift)."""
    stalls = {i: media.Fault(stall_s=30.0) for i in range(1, 5)}  # reloads 1-4 stall
    with media.HlsServer(clock_frames["aac"], segment_s=1.0, window=2,
                         playlist_faults=stalls) as hls:  # fmt: skip
        assert support.wait_until(lambda: hls.available() >= 2, 5 * T)
        stream = NetworkStream(hls.url, stall_timeout_s=1.0, backoff_s=0.1, max_backoff_s=0.1,
                               max_retries=10)  # fmt: skip
        stream.start()
        pcm = collect(stream, 7.0, 20 * T)
        stats = stream.stats()
        stream.stop()
    assert stats["gaps"] == 1 and stats["stalls"] == 4
    lost = stats["gap_s"] / hls.segment_s
    assert lost >= 1 and lost == pytest.approx(round(lost), abs=0.01)  # whole segments
    assert_on_clock(pcm, allow_silence=True)
    silent = sum(k is None for k in tones(pcm)) * 0.2
    assert silent == pytest.approx(stats["gap_s"], abs=0.45)


def test_a_session_reads_a_url_and_reports_the_gaps(clock_frames, threads_before):
    from livetx_widgets.server import LocalServer
    from livetx_widgets.session import TranscriptionSession

    script = {"turns": [{"text": "tone", "start": 0.2, "end": 0.6}]}
    plan = {0: media.Fault(after_s=0.8, drop=True)}
    with media.RadioServer(clock_frames["mp3"], plan=plan) as radio, \
            LocalServer(engine="script", script=script, rate_limit=False) as server:  # fmt: skip
        session = TranscriptionSession("deepgram", source=radio.url, url=server.url).start()
        assert isinstance(session.source, NetworkStream)
        assert support.wait_until(lambda: session.metadata.source_reconnects >= 1, 10 * T)
        assert support.wait_until(lambda: session.metadata.audio_sent_s >= 2.0, 10 * T)
        session.stop(timeout=5)
        meta = session.metadata
    assert session.error is None, session.error
    assert meta.source_gaps == 1 and meta.source_gap_s > 0
    assert meta.raw["source"]["kind"] == "http"


def test_livetx_transcribe_url(clock_frames, capsys, threads_before):
    """``livetx transcribe URL``: a finished HLS playlist plays to its end, then exit 0."""
    from livetx_widgets.cli import main
    from livetx_widgets.server import LocalServer

    script = {"turns": [{"text": "Tones on the radio.", "start": 0.3, "end": 1.2}]}
    with media.HlsServer(clock_frames["aac"], segment_s=1.0, ended_after=3) as hls, \
            LocalServer(engine="script", script=script, rate_limit=False) as server:  # fmt: skip
        code = main(["transcribe", "--provider", "deepgram", "--url", server.url, hls.url])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert out.splitlines() == ["[00:00.3] Tones on the radio."]
        assert main(["transcribe", hls.url, "--file", hls.url]) == 2
        assert "give the input once" in capsys.readouterr().err


@pytest.mark.slow  # several seconds of live audio
def test_the_widget_takes_a_url_in_its_source_box(clock_frames, encoded, monkeypatch,
                                                  threads_before):  # fmt: skip
    """A URL or an mp3 path typed into the widget's "File or URL" box; a dead URL's error is
    shown in the widget in plain words."""
    from livetx_widgets import LiveTranscriber

    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    script = {"turns": [{"text": "Heard it.", "start": 0.3, "end": 1.0}]}
    engine = {"local_engine": "script", "local_options": {"script": script}}
    with media.HlsServer(clock_frames["aac"], segment_s=1.0, ended_after=2) as hls:
        w = LiveTranscriber(provider="local", **engine)
        try:
            for typed in (hls.url, str(encoded["mp3"])):
                w.source_kind, w.file = "file", typed  # what the front end sets
                w.start()
                assert w.wait(30 * T)
                assert w.error == "" and w.transcript.text == "Heard it.", w.error
            assert isinstance(w.sessions[0].source, NetworkStream)
            assert w.sessions[0].metadata.raw["source"]["kind"] == "hls"
            w.file = hls.base + "/nothing.m3u8"
            w.start()
            assert w.wait(30 * T)
            assert "404" in w.error and "nothing.m3u8" in w.error
            assert isinstance(w.last_error, AudioStreamError)
        finally:
            w.close()
        w2 = LiveTranscriber(provider="local", source=hls.url, **engine)
        try:
            assert (w2.source_kind, w2.file) == ("file", hls.url)
        finally:
            w2.close()
