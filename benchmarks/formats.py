"""Benchmark the file sources: decode CPU per audio second for each format against WAV, and
peak memory while streaming a two-hour file.

Run under the shared timing lock (one timing benchmark at a time on this machine)::

    flock /tmp/livetx-bench.lock .venv/bin/python benchmarks/formats.py [--save] [--runs 5]

``--save`` also writes ``benchmarks/results/formats.txt``. Everything is made in a temporary
directory from the shared dialogue recording (28 s of speech), so nothing binary is committed.

1. **CPU per audio second.** Each file is played through the source the session would use
   (``open_file(path, realtime=False)``: ``WavFile`` for WAV, ``AudioFile`` via PyAV for the
   rest), reading every chunk as the sender thread does; ``time.process_time()`` around the
   whole loop, divided by the audio's length. Formats are measured side by side, interleaved
   run by run (``--runs``, median reported), so the ratios to the WAV baseline compare like
   with like on a shared machine. The source's cost has two parts, shown separately: FFmpeg's
   decoding (PyAV decode of the same file to frames, nothing else) and the rest (the
   windowed-sinc resampler to 16 kHz, the downmix, the chunking). Two WAV baselines: the
   16 kHz mono original (no resampling at all) and a 44.1 kHz stereo copy (the resampler's
   cost without a codec).
2. **Memory while streaming two hours.** A two-hour mp3 (the recording's frames repeated;
   44.1 kHz stereo, 64 kbit/s) is played through ``AudioFile`` as fast as possible in a fresh
   child process; its peak RSS (``VmHWM``) is compared with its RSS after imports and
   opening the file, and with the size of the decoded audio (what holding it whole would
   cost). The RSS is also sampled every 10 minutes of audio to show it stays flat.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from figure import load_file  # noqa: E402

SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
SPEECH = SHARED / "audio" / "dialogue-16k.wav"
RESULTS = REPO / "benchmarks" / "results" / "formats.txt"
ORDER = ["wav-16k", "wav-44k", "flac", "mp3", "m4a", "aac", "ogg", "opus", "webm", "mp4",
         "mkv", "mov"]  # fmt: skip
LONG_S = 2 * 3600


def _media():
    """``tests/audio/media.py``: the encoders the tests use (one place for them)."""
    return load_file("livetx_test_media", REPO / "tests" / "audio" / "media.py")


def make_files(media, out: Path) -> dict[str, Path]:
    pcm, rate = media.read_wav(SPEECH)
    files = {"wav-16k": SPEECH}
    for ext in ORDER:
        if ext.startswith("wav"):
            continue
        files[ext] = media.encode(pcm, rate, out / f"speech.{ext}", ext)
    import av  # a 44.1 kHz stereo PCM WAV: the resampler's cost without a codec

    path = out / "speech-44k.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=44100, layout="stereo")
        media.encode_into(container, stream, pcm, rate)
    files["wav-44k"] = path
    return files


def play(path: Path) -> tuple[float, float]:
    """(CPU seconds, audio seconds) to play ``path`` through its source, every chunk."""
    from livetx_widgets.audio import open_file

    source = open_file(path, realtime=False)
    t0 = time.process_time()
    n = 0
    with source:
        while True:
            chunk = source.read()
            if chunk is None:
                break
            n += len(chunk)
    return time.process_time() - t0, n / 32000


def decode_only(path: Path) -> float:
    """CPU seconds for PyAV alone to decode ``path`` to frames (0 for WAV: numpy reads it)."""
    if path.suffix == ".wav":
        return 0.0
    import av

    t0 = time.process_time()
    with av.open(str(path)) as container:
        for _ in container.decode(audio=0):
            pass
    return time.process_time() - t0


def cpu_section(files: dict[str, Path], runs: int) -> list[str]:
    from livetx_widgets.audio import open_file

    for path in files.values():  # warm up: imports, filter tables, page cache
        play(path)
    total: dict[str, list[float]] = {k: [] for k in files}
    codec: dict[str, list[float]] = {k: [] for k in files}
    audio: dict[str, float] = {}
    for _ in range(runs):
        for name in ORDER:  # interleaved: every format sees the same machine load
            cpu, seconds = play(files[name])
            total[name].append(cpu / seconds)
            codec[name].append(decode_only(files[name]) / seconds)
            audio[name] = seconds
    base = statistics.median(total["wav-16k"])
    base44 = statistics.median(total["wav-44k"])
    lines = [
        f"   {'format':8} {'source':10} {'input':>12} {'audio s':>8} {'CPU ms/audio s':>15} "
        f"{'x WAV 16k':>10} {'x WAV 44k':>10} {'FFmpeg ms/s':>12} {'rest ms/s':>10}"
    ]
    for name in ORDER:
        source = open_file(files[name], realtime=False)
        kind = type(source).__name__
        rate = getattr(source, "input_rate", None) or source.format.sample_rate
        ch = getattr(source, "channels", None) or source.format.channels
        t = statistics.median(total[name]) * 1000
        c = statistics.median(codec[name]) * 1000
        lines.append(
            f"   {name:8} {kind:10} {f'{rate} Hz {ch} ch':>12} {audio[name]:8.1f} {t:15.2f} "
            f"{t / (base * 1000):10.1f} {t / (base44 * 1000):10.2f} {c:12.2f} {t - c:10.2f}"
        )
    return lines


def make_long_mp3(media, out: Path, long_s: float) -> Path:
    """Two hours of mp3: the recording's frames (no Xing header) repeated to the length."""
    pcm, rate = media.read_wav(SPEECH)
    import av

    piece = out / "piece.mp3"
    with av.open(str(piece), "w", format="mp3",
                 options={"id3v2_version": "0", "write_xing": "0"}) as container:  # fmt: skip
        stream = container.add_stream("libmp3lame", rate=44100, layout="stereo")
        stream.bit_rate = 64000
        media.encode_into(container, stream, pcm, rate)
    data = piece.read_bytes()
    repeats = int(long_s / (len(pcm) / rate)) + 1
    path = out / "two-hours.mp3"
    with open(path, "wb") as f:
        for _ in range(repeats):
            f.write(data)
    return path


def child_stream(path: str) -> None:
    """In a fresh process: stream ``path`` to the end, print RSS figures (KB)."""
    from livetx_widgets.audio import AudioFile

    def rss_kb(field: str = "VmRSS") -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    source = AudioFile(path, realtime=False)
    source.start()
    after_open = rss_kb()
    samples = []
    n = 0
    t0 = time.process_time()
    next_sample = 0
    while True:
        chunk = source.read()
        if chunk is None:
            break
        n += len(chunk)
        if n >= next_sample:
            samples.append((round(n / 32000 / 60), rss_kb()))
            next_sample += 32000 * 600
    cpu = time.process_time() - t0
    source.stop()
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child would report
    # its parent's peak; the high-water mark belongs to this process's own memory map.
    peak = rss_kb("VmHWM")
    print(f"{after_open} {peak} {n} {cpu:.2f} " + ",".join(f"{m}:{r}" for m, r in samples))


def memory_section(media, out: Path, long_s: float) -> list[str]:
    path = make_long_mp3(media, out, long_s)
    done = subprocess.run([sys.executable, __file__, "--child-stream", str(path)],
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    if done.returncode != 0:
        return [f"   child failed: {done.stderr.strip()[-500:]}"]
    after_open, peak, n, cpu, samples = done.stdout.split()
    audio_s = int(n) / 32000
    decoded_mb = int(n) / 1e6
    lines = [
        f"   file: {path.stat().st_size / 1e6:.0f} MB mp3, 44.1 kHz stereo 64 kbit/s, "
        f"{audio_s / 3600:.2f} h of audio -> {decoded_mb:.0f} MB of 16 kHz s16le if held whole",
        f"   RSS after imports and start(): {int(after_open) / 1024:.0f} MB; peak RSS while "
        f"streaming it all: {int(peak) / 1024:.0f} MB (+{(int(peak) - int(after_open)) / 1024:.0f}"
        f" MB); CPU {float(cpu):.1f} s ({float(cpu) / audio_s * 1000:.2f} ms per audio second)",
        "   RSS sampled every 10 min of audio (min:MB): "
        + " ".join(_mb_sample(m) for m in samples.split(",")),
    ]
    return lines


def _mb_sample(sample: str) -> str:
    minute, kb = sample.split(":")
    return f"{minute}:{int(kb) / 1024:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--long-s", type=float, default=LONG_S,
                        help="length of the long file (default two hours)")  # fmt: skip
    parser.add_argument("--child-stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_stream:
        child_stream(args.child_stream)
        return 0
    sys.path.insert(0, str(REPO))
    import av

    media = _media()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "livetx_widgets"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    head = [
        "File formats benchmark (benchmarks/formats.py)",
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, PyAV {av.__version__} (FFmpeg libavformat "
        f"{'.'.join(map(str, av.library_versions['libavformat']))})",
        f"commit {commit}{' + uncommitted changes' if dirty else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; load average at start "
        f"{os.getloadavg()[0]:.2f} (other work shares this machine)",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="livetx-formats-") as tmp:
        out = Path(tmp)
        files = make_files(media, out)
        lines = [
            *head,
            f"1. CPU per audio second, each format played through its source ({SPEECH.name}, "
            f"28 s of speech), median of {args.runs} interleaved runs",
            *cpu_section(files, args.runs),
            "   source = what open_file() returns; FFmpeg = PyAV decoding alone; rest = resampling"
            " to 16 kHz, downmix, chunking.",
            "   x WAV 16k: against a WAV that needs no resampling at all; x WAV 44k: against a 44.1"
            " kHz stereo WAV, which pays the same resampler (the fair comparison for the codec).",
            "",
            f"2. Memory while streaming a {args.long_s / 3600:.2f}-hour file through AudioFile "
            "(fresh child process)",
            *memory_section(media, out, args.long_s),
        ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.save:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
