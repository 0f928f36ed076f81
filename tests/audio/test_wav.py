"""WavFile: every PCM layout decodes correctly, streams in blocks, paces without drift, stops."""

from __future__ import annotations

import struct
import threading
import time
import tracemalloc

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets.audio import WavFile, chunk_bytes, resample
from livetx_widgets.errors import ConfigurationError


def drain(src, limit: int = 100_000) -> list[bytes]:
    chunks = []
    for _ in range(limit):  # bounded
        c = src.read(timeout=5)
        if c is None:
            return chunks
        assert c, "a finite non-realtime source never times out"
        chunks.append(c)
    raise AssertionError("source did not end")


def pcm(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), np.int16)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_layouts_decode_and_resample(tmp_path, wav_writer, rate, channels, width):
    left = wav_writer.tone(440, rate, 0.3, amp=0.6)
    right = wav_writer.tone(660, rate, 0.3, amp=0.2)
    samples = np.stack([left, right], axis=1)[:, :channels]
    path = tmp_path / f"t{rate}_{channels}_{width}.wav"
    decoded = wav_writer.pcm(path, samples, rate, width)

    src = WavFile(path, realtime=False)
    assert src.duration_s == pytest.approx(0.3, abs=1 / rate)
    assert (src.format.sample_rate, src.format.channels, src.format.bits) == (
        rate,
        channels,
        8 * width,
    )
    with src:
        got = pcm(drain(src))
    want = resample(decoded.mean(axis=1).astype(np.float32), rate)
    assert len(got) == len(want) == -(-len(samples) * 16000 // rate)
    assert np.abs(got.astype(np.int32) - want).max() <= 1
    assert src.position_s == pytest.approx(len(got) / 16000)


def test_16k_mono_16bit_is_bit_exact(short_wav):
    raw = short_wav.read_bytes()
    data = raw[raw.index(b"data") + 8 :]
    with WavFile(short_wav, realtime=False) as src:
        assert b"".join(drain(src)) == data
    assert WavFile(short_wav).read_all().tobytes() == data


def test_tone_survives_44k_stereo_24bit(tmp_path, wav_writer):
    # An end-to-end sanity check that does not reuse the resampler as the reference.
    rate = 44100
    s = wav_writer.tone(1000, rate, 1.0, amp=0.5)
    path = tmp_path / "t.wav"
    wav_writer.pcm(path, np.stack([s, s], axis=1), rate, 3)
    with WavFile(path, realtime=False) as src:
        y = pcm(drain(src)).astype(np.float64) / 32768
    core = y[2000:-2000]
    t = np.arange(len(core)) / 16000
    assert 2 * abs(np.mean(core * np.exp(-2j * np.pi * 1000 * t))) == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("bits,dtype", [(32, "<f4"), (64, "<f8")])
@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav(tmp_path, wav_writer, bits, dtype, extensible):
    s = wav_writer.tone(500, 48000, 0.2, amp=0.7)
    path = tmp_path / "f.wav"
    data = np.stack([s, -s * 0.5], axis=1).astype(dtype).tobytes()
    wav_writer.raw(path, data, rate=48000, channels=2, bits=bits, tag=3, extensible=extensible)
    with WavFile(path, realtime=False) as src:
        got = pcm(drain(src))
    want = resample((s - s * 0.5) / 2, 48000)
    assert np.abs(got.astype(np.int32) - want).max() <= 1


def test_extensible_24bit_with_odd_chunk_before_data(tmp_path, wav_writer):
    s = wav_writer.tone(300, 22050, 0.2)
    q = wav_writer.quantize(s, 3)
    path = tmp_path / "e.wav"
    wav_writer.raw(
        path,
        wav_writer.pcm_bytes(q, 3),
        rate=22050,
        channels=1,
        bits=24,
        extensible=True,
        extra_chunk=True,
    )
    with WavFile(path, realtime=False) as src:
        got = pcm(drain(src))
    want = resample((q / 2**23).astype(np.float32), 22050)
    assert np.abs(got.astype(np.int32) - want).max() <= 1


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF, 0x7FFFFFFF])
def test_streaming_data_size_uses_the_file_length(tmp_path, wav_writer, size):
    q = wav_writer.quantize(wav_writer.tone(200, 16000, 0.25), 2)
    path = tmp_path / "s.wav"
    data = wav_writer.pcm_bytes(q, 2)
    wav_writer.raw(path, data, rate=16000, channels=1, bits=16, data_size=size)
    src = WavFile(path, realtime=False)
    assert src.duration_s == pytest.approx(0.25)
    with src:
        assert np.array_equal(pcm(drain(src)), q.astype(np.int16))


def test_truncated_file_plays_what_it_holds_then_says_where_it_stopped(tmp_path, wav_writer):
    from livetx_widgets import AudioFileError

    q = wav_writer.quantize(wav_writer.tone(200, 16000, 0.25), 2)
    path = tmp_path / "cut.wav"
    wav_writer.raw(path, wav_writer.pcm_bytes(q, 2), rate=16000, channels=1, bits=16,
                   data_size=16000 * 2 * 3)  # the header says 3 s  # fmt: skip
    src = WavFile(path, realtime=False)
    got = []
    with pytest.raises(AudioFileError, match="truncated") as info, src:
        for _ in range(100):
            got.append(src.read())
    assert np.array_equal(pcm(got), q.astype(np.int16))  # all of it first
    assert info.value.stopped_at_s == pytest.approx(0.25) and info.value.duration_s == 3.0
    assert str(path) in str(info.value)
    with WavFile(path, realtime=False, loop=True) as looping:  # a loop plays on regardless
        assert all(looping.read() for _ in range(20))


@pytest.mark.parametrize("chunk_ms", [10, 20, 50, 100])
def test_chunks_are_full_except_the_last(short_wav, chunk_ms):
    with WavFile(short_wav, realtime=False, chunk_ms=chunk_ms) as src:
        chunks = drain(src)
    assert {len(c) for c in chunks[:-1]} == {chunk_bytes(chunk_ms)}
    assert 0 < len(chunks[-1]) <= chunk_bytes(chunk_ms)


def test_not_realtime_is_fast(dialogue_wav):
    t = time.monotonic()
    with WavFile(dialogue_wav, realtime=False) as src:
        chunks = drain(src)
    assert time.monotonic() - t < 3.0 * support.TIMING  # 28 s of audio
    assert len(b"".join(chunks)) / 32000 == pytest.approx(src.duration_s, abs=1e-3)


def test_streams_from_disk_in_blocks(tmp_path, wav_writer):
    # 60 s of 48 kHz stereo 16-bit is 11.5 MB; the first chunk must not load it all.
    rate, seconds = 48000, 60
    path = tmp_path / "long.wav"
    frame = wav_writer.pcm_bytes(wav_writer.quantize(wav_writer.tone(440, rate, 1.0), 2), 2)
    stereo = np.repeat(np.frombuffer(frame, np.int16), 2).tobytes()
    wav_writer.raw(path, stereo * seconds, rate=rate, channels=2, bits=16)
    tracemalloc.start()
    try:
        src = WavFile(path, realtime=False)
        src.start()
        first = src.read()
        _, peak = tracemalloc.get_traced_memory()
        src.stop()
    finally:
        tracemalloc.stop()
    assert len(first) == chunk_bytes(50)
    assert src.duration_s == pytest.approx(seconds)
    assert peak < 3_000_000, f"peak {peak} bytes: the file was not streamed"


def test_loop_restarts_at_the_end(tmp_path, wav_writer):
    q = wav_writer.quantize(wav_writer.tone(440, 16000, 0.12), 2).astype(np.int16)
    path = tmp_path / "loop.wav"
    wav_writer.raw(path, q.tobytes(), rate=16000, channels=1, bits=16)
    with WavFile(path, realtime=False, loop=True) as src:
        got = pcm([src.read() for _ in range(20)])  # 1 s from a 0.12 s file
        assert src.duration_s == pytest.approx(0.12)
    assert np.array_equal(got, np.tile(q, 9)[: len(got)])


def test_realtime_paces_to_the_audio_clock_without_drift(tmp_path, wav_writer):
    path = tmp_path / "one_second.wav"
    wav_writer.pcm(path, wav_writer.tone(440, 16000, 1.0), 16000, 2)
    lateness = []
    with WavFile(path, realtime=True) as src:
        t0 = time.monotonic()
        returned = 0
        for _ in range(100):  # bounded: 20 chunks expected
            c = src.read(timeout=2)
            if c is None:
                break
            now = time.monotonic()
            returned += len(c)
            due = returned / 32000  # a chunk is due when the clock reaches its end
            assert now - t0 >= due - 0.005, "chunk released before its audio time"
            lateness.append(now - t0 - due)
        elapsed = time.monotonic() - t0
    assert returned == 32000
    assert elapsed >= 1.0 - 0.005
    # Loose bounds (CI machines are noisy); exact drift belongs in the benchmark.
    assert lateness[-1] < 0.25 * support.TIMING
    assert elapsed < 1.5 * support.TIMING


def test_read_timeout_returns_empty_until_the_chunk_is_due(short_wav):
    with WavFile(short_wav, realtime=True, chunk_ms=500) as src:
        t = time.monotonic()
        assert src.read(timeout=0.05) == b""
        assert 0.04 <= time.monotonic() - t < 0.4 * support.TIMING
        assert src.read(timeout=0) == b""
        chunk = src.read(timeout=2)
        assert len(chunk) == chunk_bytes(500)
        assert time.monotonic() - t >= 0.5 - 0.005
        assert src.position_s == pytest.approx(0.5)


def test_stop_interrupts_a_paced_wait(short_wav):
    src = WavFile(short_wav, realtime=True, chunk_ms=1000)
    src.start()
    timer = threading.Timer(0.2, src.stop)
    t = time.monotonic()
    timer.start()
    try:
        result = src.read(timeout=None)  # would wait 1 s for the chunk
    finally:
        timer.join(timeout=5)
    assert result is None
    assert time.monotonic() - t < 0.6 * support.TIMING
    assert src.read() is None  # stopped stays stopped


def test_start_after_stop_starts_over(short_wav):
    src = WavFile(short_wav, realtime=False)
    src.start()
    first = src.read()
    src.read()
    src.stop()
    assert src.read() is None
    src.start()
    assert src.read() == first
    assert src.position_s == pytest.approx(0.05)
    src.stop()
    src.stop()  # idempotent


def test_read_before_start_is_a_clear_error(short_wav):
    with pytest.raises(ConfigurationError, match="start"):
        WavFile(short_wav).read()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(ConfigurationError, match="not found") as e:
        WavFile(path)
    assert str(path) in str(e.value)


def test_directory(tmp_path):
    with pytest.raises(ConfigurationError, match="not a file"):
        WavFile(tmp_path)


@pytest.mark.parametrize(
    "content,match",
    [
        (b"this is not audio at all", "not a RIFF/WAVE"),
        (b"", "not a RIFF/WAVE"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (b"ID3\x03\x00\x00\x00" + b"\x00" * 100, "not a RIFF/WAVE"),
        (b"RF64\xff\xff\xff\xffWAVE", "RF64"),
    ],
)
def test_invalid_files(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=match) as e:
        WavFile(path)
    assert str(path) in str(e.value)
    assert "sox" in str(e.value) or match == "RF64"


def test_unsupported_encodings(tmp_path, wav_writer):
    path = tmp_path / "bad.wav"
    wav_writer.raw(path, b"\x00" * 100, rate=16000, channels=1, bits=16, tag=0x0055)
    with pytest.raises(ConfigurationError, match="format tag 0x0055"):
        WavFile(path)
    wav_writer.raw(path, b"\x00" * 100, rate=16000, channels=1, bits=12)
    with pytest.raises(ConfigurationError, match="12-bit"):
        WavFile(path)
    wav_writer.raw(path, b"\x00" * 100, rate=16000, channels=1, bits=16, tag=3)
    with pytest.raises(ConfigurationError, match="16-bit float"):
        WavFile(path)
    wav_writer.raw(path, b"\x00" * 100, rate=0, channels=1, bits=16)
    with pytest.raises(ConfigurationError, match="0 Hz"):
        WavFile(path)


def test_data_before_fmt_and_missing_data(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00")
    with pytest.raises(ConfigurationError, match="before the fmt"):
        WavFile(path)
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + fmt)
    with pytest.raises(ConfigurationError, match="no data chunk"):
        WavFile(path)


def test_bad_arguments(short_wav):
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        WavFile(short_wav, chunk_ms=0)
    with pytest.raises(ConfigurationError, match="chunk_ms"):
        WavFile(short_wav, chunk_ms=2.5)


def test_empty_file_ends_at_once(tmp_path, wav_writer):
    path = tmp_path / "empty.wav"
    wav_writer.raw(path, b"", rate=44100, channels=2, bits=16)
    src = WavFile(path, realtime=True, loop=True)
    assert src.duration_s == 0
    with src:
        assert src.read(timeout=1) is None


def test_the_servers_stream_header_uses_the_same_parser(tmp_path, wav_writer):
    """``livetx serve`` reads a WAV stream's header with this parser (one parser): extensible
    and odd chunks as for files, only 16-bit PCM accepted, a header cut short said so."""
    from livetx_widgets.server.pcm import parse_wav_header
    from livetx_widgets.wavheader import WavHeaderError, WavHeaderIncomplete

    path = tmp_path / "x.wav"
    wav_writer.raw(path, b"\x00" * 8, rate=22050, channels=2, bits=16, extensible=True,
                   extra_chunk=True)  # fmt: skip
    data = path.read_bytes()
    rate, channels, offset = parse_wav_header(data)
    assert (rate, channels) == (22050, 2) and data[offset - 8 : offset - 4] == b"data"
    with pytest.raises(WavHeaderIncomplete, match="incomplete in the first audio frame"):
        parse_wav_header(data[: offset - 10])
    wav_writer.raw(path, b"\x00" * 9, rate=16000, channels=1, bits=24)
    with pytest.raises(WavHeaderError, match="24-bit integer PCM WAV is not 16-bit"):
        parse_wav_header(path.read_bytes())
