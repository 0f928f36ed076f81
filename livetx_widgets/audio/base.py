"""The audio source interface: where the session's sender thread gets its chunks.

Every source delivers 16 kHz mono signed 16-bit little-endian PCM ("s16le") in chunks of about
``chunk_ms`` milliseconds, whatever its input format, so providers and the session never deal
with resampling. Sources know nothing of providers or sockets.

The sender thread drives a source like this::

    source.start()
    while True:
        chunk = source.read(timeout=0.2)
        if chunk is None: break          # finite source exhausted: end the session gracefully
        if not chunk: continue           # nothing yet (timeout): check for stop, keepalive...
        send(chunk)
    source.stop()                        # idempotent; also unblocks a read in another thread
"""

from __future__ import annotations

SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes per sample (s16le)
CHUNK_MS = 50


def chunk_bytes(chunk_ms: int = CHUNK_MS, sample_rate: int = SAMPLE_RATE) -> int:
    """Size in bytes of ``chunk_ms`` of mono s16le audio."""
    return sample_rate * SAMPLE_WIDTH * chunk_ms // 1000


def pcm_seconds(n_bytes: int, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration in seconds of ``n_bytes`` of mono s16le audio."""
    return n_bytes / (sample_rate * SAMPLE_WIDTH)


class AudioSource:
    """Base class of audio sources.

    Attributes:
        sample_rate: always 16000 for what ``read`` returns.
        chunk_ms: nominal chunk duration.
        live: true for live inputs (microphones) that never end by themselves;
            false for finite ones (files, arrays) that end the session when exhausted.
        realtime: true when ``read`` is paced by the audio clock (live inputs always are).
        duration_s: total length when known (files, arrays), else ``None``.
        position_s: seconds of audio returned by ``read`` so far.
    """

    sample_rate: int = SAMPLE_RATE
    chunk_ms: int = CHUNK_MS
    live: bool = False
    realtime: bool = True
    duration_s: float | None = None

    def __init__(self) -> None:
        self.position_s = 0.0

    def start(self) -> None:
        """Open the input. Raises ``AudioDeviceError``/``ConfigurationError`` when it cannot."""

    def read(self, timeout: float | None = None) -> bytes | None:
        """The next chunk; ``b""`` if none arrived within ``timeout``; ``None`` when exhausted."""
        raise NotImplementedError

    def stop(self) -> None:
        """Close the input. Idempotent, callable from any thread, unblocks a pending ``read``.
        """

    def stats(self) -> dict:
        """What the input did, for ``metadata.raw["source"]`` (``{}``: nothing to report).

        Sources that fill holes with silence report ``gaps`` (how many) and ``gap_s`` (seconds
        of silence inserted), and ``reconnects`` when they reopen their input: the session
        copies those into ``metadata.source_gaps``, ``source_gap_s``, ``source_reconnects``.
        """
        return {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
