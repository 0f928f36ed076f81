"""``Microphone``: the kernel machine's sound input through PortAudio (pyaudio).

pyaudio is optional (``pip install "livetx-widgets[mic]"``) and imported only when a
microphone is opened or listed, so the package imports without it. PortAudio's audio thread
runs our callback, which only copies the bytes into a queue (the pattern of
python-sounddevice's ``rec_unlimited.py``): conversion and re-chunking happen in ``read``, on
the caller's thread, so a slow consumer can never make the audio thread drop input.

Opening PortAudio makes ALSA and JACK print dozens of lines on file descriptor 2, which
Jupyter shows as red noise under the cell. Every PortAudio call that may do so runs with fd 2
pointed at ``/dev/null`` (``quiet_stderr``), restored afterwards even on error.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np

from ..errors import AudioDeviceError, ConfigurationError
from ..extras import MissingExtraError, require
from .base import SAMPLE_RATE, AudioSource, chunk_bytes
from .finite import check_chunk_ms
from .resampler import Resampler

_REMOTE_HINT = (
    'if the kernel runs on a remote machine (JupyterHub, Colab, a container), use source="browser" '
    "to record from the browser's microphone instead"
)
# How long the device may deliver nothing before it counts as gone. PortAudio's PulseAudio
# route takes up to ~2 s to deliver its first buffer, hence the longer grace at the start.
FIRST_DATA_TIMEOUT_S = 6.0
STALL_TIMEOUT_S = 3.0
_POLL_S = 0.1  # how often a waiting read checks that the stream is still alive
_STOP = object()  # queue sentinel that wakes a pending read


@contextmanager
def quiet_stderr():
    """Point file descriptor 2 at /dev/null for the duration (C libraries' chatter).

    Process-wide: anything another thread writes to fd 2 meanwhile is lost too, so keep the
    block short. Python's own ``sys.stderr`` buffer is flushed first so nothing of ours is.
    """
    with suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class PyAudioMissingError(MissingExtraError, AudioDeviceError):
    """pyaudio is not installed. A missing extra (a ``ConfigurationError``: the CLI exits 2) and
    still an ``AudioDeviceError``, which callers already catch for "no microphone here"."""


def _import_pyaudio():
    require("the kernel microphone", "mic", error=PyAudioMissingError)
    import pyaudio

    return pyaudio


@dataclass(frozen=True)
class InputDevice:
    """One sound input as PortAudio sees it."""

    index: int
    name: str
    max_input_channels: int
    default_sample_rate: float
    is_default: bool


def _input_devices(pa) -> list[InputDevice]:
    try:
        default = pa.get_default_input_device_info()["index"]
    except OSError:
        default = None
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if info.get("maxInputChannels", 0) > 0:
            devices.append(
                InputDevice(
                    index=int(info["index"]),
                    name=str(info["name"]),
                    max_input_channels=int(info["maxInputChannels"]),
                    default_sample_rate=float(info["defaultSampleRate"]),
                    is_default=info["index"] == default,
                )
            )
    return devices


def list_devices() -> list[InputDevice]:
    """The input devices PortAudio can open (raises ``AudioDeviceError`` without pyaudio)."""
    pyaudio = _import_pyaudio()
    with quiet_stderr():
        pa = pyaudio.PyAudio()
        try:
            return _input_devices(pa)
        finally:
            pa.terminate()


def _names(devices: list[InputDevice]) -> str:
    if not devices:
        return "none"
    return ", ".join(f"{d.index}: {d.name!r}" for d in devices)


def _choose(devices: list[InputDevice], device: int | str | None) -> InputDevice:
    if not devices:
        raise AudioDeviceError(f"no audio input device found; {_REMOTE_HINT}")
    if device is None:
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(device, int):
        for d in devices:
            if d.index == device:
                return d
        raise AudioDeviceError(
            f"no input device with index {device}; available inputs: {_names(devices)}"
        )
    wanted = device.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    partial = [d for d in devices if wanted in d.name.casefold()]
    if exact or partial:
        return (exact or partial)[0]
    raise AudioDeviceError(
        f"no input device matching {device!r}; available inputs: {_names(devices)}. "
        f"Pass an index or part of a name (livetx_widgets.audio.list_devices() lists them)"
    )


class Microphone(AudioSource):
    """Live audio from a sound input of the kernel's machine, as 16 kHz mono s16le.

    Args:
        device: ``None`` for the default input, an index from ``list_devices()``, or a
            case-insensitive part of a device name (an exact name match wins).
        chunk_ms: chunk duration in milliseconds.

    The device is opened at 16 kHz mono when it supports that, otherwise at its own rate and
    channel count and converted. ``read`` raises ``AudioDeviceError`` if the device stops
    delivering audio (unplugged, sound server gone). ``overflows`` counts PortAudio input
    overflows (audio the device lost before we saw it).
    """

    live = True
    realtime = True
    _PREFER_16K = True  # tests turn this off to exercise the convert-from-native path

    def __init__(self, device: int | str | None = None, *, chunk_ms: int = 50) -> None:
        super().__init__()
        if device is not None and (isinstance(device, bool) or not isinstance(device, (int, str))):
            raise ConfigurationError(
                f"device must be None, an index or part of a device name, got {device!r}"
            )
        self.device = device
        self.chunk_ms = check_chunk_ms(chunk_ms)
        self._chunk_bytes = chunk_bytes(self.chunk_ms)
        self._lock = threading.Lock()  # guards _pa/_stream/_running against concurrent stop
        self._pa = None
        self._stream = None
        self._running = False
        self._stopped = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._buf = bytearray()
        self._resampler: Resampler | None = None
        self._channels = 1
        self._last_data = 0.0
        self._got_data = False
        self.device_name: str | None = None
        self.input_rate: int | None = None
        self.overflows = 0

    def __repr__(self) -> str:
        state = "open" if self._running else "closed"
        return f"Microphone(device={self.device!r}, name={self.device_name!r}, {state})"

    def start(self) -> None:
        """Open the device and start capturing. A no-op while already running."""
        with self._lock:
            if self._running:
                return
            pyaudio = _import_pyaudio()
            self._queue = queue.SimpleQueue()
            self._buf = bytearray()
            self._stopped = False
            self.position_s = 0.0
            self.overflows = 0
            with quiet_stderr():
                pa = pyaudio.PyAudio()
                try:
                    self._open(pa, pyaudio)
                except BaseException:
                    pa.terminate()
                    raise
            self._pa = pa
            self._running = True
            self._got_data = False
            self._last_data = time.monotonic()

    def _open(self, pa, pyaudio) -> None:
        info = _choose(_input_devices(pa), self.device)
        native = int(info.default_sample_rate)
        candidates = [(SAMPLE_RATE, 1)] if self._PREFER_16K else []
        candidates += [(native, 1), (native, min(2, info.max_input_channels))]
        errors = []
        for rate, channels in dict.fromkeys(candidates):  # ordered, without repeats
            try:
                pa.is_format_supported(
                    rate,
                    input_device=info.index,
                    input_channels=channels,
                    input_format=pyaudio.paInt16,
                )
                stream = pa.open(
                    format=pyaudio.paInt16,
                    channels=channels,
                    rate=rate,
                    input=True,
                    input_device_index=info.index,
                    frames_per_buffer=max(1, rate * self.chunk_ms // 1000),
                    stream_callback=self._make_callback(pyaudio, self._queue),
                )
            except (OSError, ValueError) as exc:
                errors.append(f"{rate} Hz x{channels}: {exc}")
                continue
            self._stream = stream
            self.device_name = info.name
            self.input_rate = rate
            self._channels = channels
            self._resampler = (
                None if rate == SAMPLE_RATE and channels == 1 else Resampler(rate, SAMPLE_RATE)
            )
            return
        raise AudioDeviceError(
            f"cannot open input device {info.index}: {info.name!r} ({'; '.join(errors)}); "
            f"check that no other program holds it, or choose another device "
            f"(livetx_widgets.audio.list_devices())"
        )

    def _make_callback(self, pyaudio, q: queue.SimpleQueue):
        overflow = pyaudio.paInputOverflow
        cont = pyaudio.paContinue

        def callback(in_data, frame_count, time_info, status):
            # PortAudio's thread: copy and return, nothing that can block or raise.
            q.put(in_data)
            if status & overflow:
                self.overflows += 1
            return (None, cont)

        return callback

    def read(self, timeout: float | None = None) -> bytes | None:
        if self._stopped:
            return None
        if not self._running:
            raise ConfigurationError(
                "Microphone.read() called before start(); "
                "call start() first or use the source as a context manager"
            )
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while len(self._buf) < self._chunk_bytes:  # bounded by the deadline or the stall check
            wait = _POLL_S
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                if self._stopped:
                    return None
                self._check_alive()
                if deadline is not None and time.monotonic() >= deadline:
                    return b""
                continue
            if item is _STOP:
                return None
            self._got_data = True
            self._last_data = time.monotonic()
            self._buf += self._convert(item)
        chunk = bytes(self._buf[: self._chunk_bytes])
        del self._buf[: self._chunk_bytes]
        self.position_s += len(chunk) / (2 * SAMPLE_RATE)
        return chunk

    def _convert(self, data: bytes) -> bytes:
        if self._resampler is None:
            return data
        frames = np.frombuffer(data, "<i2").reshape(-1, self._channels)
        return self._resampler.process(frames).tobytes()

    def _check_alive(self) -> None:
        """Raise ``AudioDeviceError`` (and close) if the stream died or went silent."""
        with self._lock:
            stream = self._stream
            if stream is None:
                return
            try:
                active = stream.is_active()
            except OSError:
                active = False
        quiet_for = time.monotonic() - self._last_data
        limit = STALL_TIMEOUT_S if self._got_data else FIRST_DATA_TIMEOUT_S
        if active and quiet_for < limit:
            return
        name = self.device_name
        self.stop()
        why = "its stream stopped" if not active else f"no audio for {quiet_for:.1f} s"
        raise AudioDeviceError(
            f"the input device {name!r} stopped delivering audio ({why}): it was unplugged or "
            f"the sound server stopped. Reconnect it and start again, or pick another device "
            f"(livetx_widgets.audio.list_devices()); {_REMOTE_HINT}"
        )

    def stop(self) -> None:
        """Close the stream and terminate PortAudio. Idempotent, callable from any thread."""
        with self._lock:
            self._stopped = True
            self._queue.put(_STOP)
            stream, pa = self._stream, self._pa
            self._stream = self._pa = None
            self._running = False
            if stream is None and pa is None:
                return
            with quiet_stderr():
                try:
                    if stream is not None:
                        # close() on a running stream aborts it (pending buffers discarded),
                        # where stop_stream() would first wait for a whole buffer to fill.
                        with suppress(OSError):  # device gone; terminate() still runs
                            stream.close()
                finally:
                    if pa is not None:
                        pa.terminate()
