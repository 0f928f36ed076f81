"""Every common file format through ``AudioFile`` / ``open_file``, against the WAV it came from.

The files are encoded during the run from the shared speech (``encoded`` fixture, once per
session). Lossless ones must give exactly WavFile's samples; lossy ones the same length and
loudness envelope. Damaged inputs must give ``AudioFileError`` naming the file, a truncated one
only after the audio it holds.
"""

from __future__ import annotations

import sys
import time

import livetx_test_media as media  # loaded by tests/audio/conftest.py
import numpy as np
import pytest

from livetx_widgets import AudioFile, AudioFileError, ConfigurationError, WavFile
from livetx_widgets.audio import open_file
from livetx_widgets.audio.resolve import resolve_source, source_kind
from livetx_widgets.extras import MissingExtraError

pytest.importorskip("av")

LOSSY = [e for e in media.FORMATS if e not in ("flac", "wav")] + ["mp4+video", "mkv+video",
                                                                    "mov+video"]  # fmt: skip


def envelope(pcm: np.ndarray, win: int = 400) -> np.ndarray:
    n = len(pcm) // win
    x = pcm[: n * win].astype(np.float32).reshape(n, win)
    return np.sqrt((x**2).mean(axis=1))


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 8) -> float:
    """Correlation of two envelopes at the best lag (encoders delay by a few ms)."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


@pytest.fixture(scope="module")
def reference(short_wav):
    return WavFile(short_wav).read_all()


@pytest.mark.parametrize("ext", LOSSY)
def test_lossy_formats_decode_to_the_speech(encoded, ext, reference):
    source = open_file(encoded[ext], realtime=False)
    assert isinstance(source, AudioFile if ext != "wav" else WavFile)
    pcm = source.read_all()
    # Same length (encoders add priming/padding of a few tens of ms), same loudness contour.
    assert abs(len(pcm) - len(reference)) / 16000 < 0.1, (ext, len(pcm), len(reference))
    assert best_correlation(envelope(pcm), envelope(reference)) > 0.98, ext
    assert source.duration_s is None or source.duration_s > 0


def test_wav_through_any_rate_and_layout_is_still_wavfile(encoded, reference):
    source = open_file(encoded["wav"], realtime=False)  # 8 kHz stereo PCM
    assert type(source) is WavFile
    assert best_correlation(envelope(source.read_all()), envelope(reference)) > 0.98


def test_the_envelope_check_tells_other_audio_apart(reference):
    assert best_correlation(envelope(reference[::-1]), envelope(reference)) < 0.5


def test_lossless_flac_gives_exactly_wavfiles_chunks(tmp_path, wav_writer):
    """FLAC at 22.05 kHz and a 22.05 kHz WAV of the same samples: the same chunks, byte for
    byte (one decoder output, one resampler, one chunker)."""
    wav = tmp_path / "same.wav"
    wav_writer.pcm(wav, wav_writer.tone(440.0, 22050, 1.3), 22050)
    pcm, rate = media.read_wav(wav)
    flac = media.encode(pcm, rate, tmp_path / "same.flac", "flac")  # 22.05 kHz mono: lossless
    want = chunks(WavFile(wav, realtime=False))
    assert chunks(AudioFile(flac, realtime=False)) == want
    assert len(want) == 26  # 1.3 s in 50 ms chunks
    assert np.array_equal(AudioFile(flac).read_all(), WavFile(wav).read_all())


def chunks(source) -> list[bytes]:
    out = []
    with source:
        for _ in range(100000):  # bounded: a 4 s file is 83 chunks
            chunk = source.read()
            if chunk is None:
                break
            out.append(chunk)
    return out


def test_chunking_and_end_match_wavfile(encoded):
    source = AudioFile(encoded["mp3"], realtime=False, chunk_ms=20)
    got = chunks(source)
    assert all(len(c) == 640 for c in got[:-1]) and 0 < len(got[-1]) <= 640
    assert source.position_s == pytest.approx(sum(map(len, got)) / 32000)
    assert source.read() is None  # stays exhausted
    again = chunks(source)  # start() after the end starts over
    assert again == got


def test_realtime_pacing_like_wavfile(encoded):
    source = AudioFile(encoded["opus"], realtime=True)
    t0 = time.monotonic()
    with source:
        total = 0
        for _ in range(10):  # 0.5 s of audio (read as fast as the source gives it)
            total += len(source.read())
    elapsed = time.monotonic() - t0
    assert total == 10 * 1600
    assert elapsed >= 0.5 - 0.06  # the last chunk is released when the clock reaches its end


def test_stop_from_another_thread_ends_a_paced_read(encoded):
    import threading

    source = AudioFile(encoded["m4a"], realtime=True)
    source.start()
    source.read()
    timer = threading.Timer(0.2, source.stop)
    timer.start()
    t0 = time.monotonic()
    for _ in range(200):
        if source.read(timeout=None) is None:
            break
    timer.join()
    assert time.monotonic() - t0 < 1.0


def test_loop_rewinds_a_decoded_file(encoded):
    source = AudioFile(encoded["flac"], realtime=False, loop=True)
    with source:
        n = sum(len(source.read()) for _ in range(200))  # 10 s from a 4.1 s file
    assert n == 200 * 1600


def test_a_path_and_source_file_accept_every_format(encoded):
    for ext in ("mp3", "m4a", "webm", "mkv+video"):
        path = encoded[ext]
        assert source_kind(str(path)) == ("file", str(path))
        assert isinstance(resolve_source(str(path)), AudioFile)
        assert isinstance(resolve_source("file", file=str(path)), AudioFile)
        assert isinstance(resolve_source(path), AudioFile)  # os.PathLike


def test_not_audio_names_the_file(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are meeting notes, not a recording\n" * 20)
    with pytest.raises(AudioFileError, match="not an audio or video file") as info:
        resolve_source(str(path))
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, ConfigurationError)


def test_video_without_sound_says_there_is_no_audio_track(tmp_path):
    path = media.video_only(tmp_path / "screen.mp4")
    with pytest.raises(AudioFileError, match="has no audio track") as info:
        AudioFile(path)
    assert str(path) in str(info.value) and "video" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        resolve_source(str(tmp_path / "nope.m4a"))


@pytest.mark.parametrize("ext", ["mp3", "flac", "webm"])
def test_truncated_file_plays_what_it_holds_then_says_where_it_stopped(encoded, tmp_path, ext):
    data = encoded[ext].read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    source = AudioFile(cut, realtime=False)
    got = []
    with pytest.raises(AudioFileError, match="truncated") as info, source:
        for _ in range(1000):
            chunk = source.read()
            assert chunk is not None, "ended without saying it was truncated"
            got.append(chunk)
    played = sum(map(len, got)) / 32000
    error = info.value
    assert str(cut) in str(error)
    assert 1.0 < played < 3.5
    assert error.stopped_at_s == pytest.approx(played, abs=0.1)
    assert error.duration_s == pytest.approx(4.1, abs=0.15)
    assert f"{error.stopped_at_s:.1f} s" in str(error)
    assert source.read() is None  # said once


def test_moov_at_the_end_cut_off_cannot_be_played(encoded, tmp_path):
    data = encoded["m4a"].read_bytes()
    cut = tmp_path / "memo.m4a"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFileError, match="cut off") as info:
        open_file(cut)
    assert str(cut) in str(info.value)


def test_without_pyav_a_non_wav_file_names_the_pip_install(encoded, monkeypatch, short_wav):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` fails
    with pytest.raises(MissingExtraError) as info:
        resolve_source(str(encoded["mp3"]))
    assert 'pip install "livetx-widgets[formats]"' in str(info.value)
    assert "speech.mp3" in str(info.value)
    assert isinstance(resolve_source(str(short_wav)), WavFile)  # WAV needs no extra


def test_an_estimated_length_is_not_taken_for_truncation(dialogue_wav, tmp_path):
    """ADTS aac has no length in its header: FFmpeg estimates ~29.9 s for this 28.3 s file.
    It plays to its end without a truncation error."""
    pcm, rate = media.read_wav(dialogue_wav)
    path = media.encode(pcm, rate, tmp_path / "dialogue.aac", "aac")
    source = AudioFile(path, realtime=False)
    assert source.duration_s is not None and abs(source.duration_s - len(pcm) / rate) > 0.5
    assert len(source.read_all()) / 16000 == pytest.approx(len(pcm) / rate, abs=0.1)


def test_a_compressed_wav_goes_to_ffmpeg(tmp_path, reference):
    """mu-law WAV: WavFile's reader refuses it (PCM and float only); open_file hands it to
    FFmpeg instead of failing."""
    import av

    path = tmp_path / "phone.wav"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_mulaw", rate=8000, layout="mono")
        media.encode_into(out, stream, reference, 16000)
    with pytest.raises(ConfigurationError, match="format tag 0x0007"):
        WavFile(path)
    source = open_file(path, realtime=False)
    assert isinstance(source, AudioFile) and source.codec == "pcm_mulaw"
    assert best_correlation(envelope(source.read_all()), envelope(reference)) > 0.98


def test_a_session_on_a_truncated_file_keeps_its_transcript_and_ends_with_the_error(
    encoded, tmp_path
):
    from livetx_widgets.server import LocalServer
    from livetx_widgets.session import TranscriptionSession

    data = encoded["flac"].read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])  # ~1.8 s of the 4.1 s
    script = {"turns": [{"text": "Before the cut.", "start": 0.2, "end": 0.9},
                        {"text": "After the cut.", "start": 2.5, "end": 3.5}]}  # fmt: skip
    with LocalServer(engine="script", script=script, rate_limit=False) as server:
        session = TranscriptionSession("deepgram", source=str(cut), url=server.url,
                                       realtime=False).start()  # fmt: skip
        assert session.wait(30)
        transcript = session.stop()
    assert isinstance(session.error, AudioFileError), session.error
    assert str(cut) in str(session.error) and session.error.stopped_at_s < 2.0
    assert transcript.text == "Before the cut."
    assert session.metadata.audio_sent_s == pytest.approx(session.error.stopped_at_s, abs=0.1)
    assert session.metadata.state == "error"
