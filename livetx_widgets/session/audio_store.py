"""The audio a session sent, kept on disk so that any stretch of it can be played back.

Why: people check a transcript by listening to the passage it came from. The session already
knows each segment's span on its audio clock; this keeps the audio of that clock.

What is kept is exactly what was sent: the sender hands every chunk to ``SessionAudio.write``
once, when it enters the audio ledger (cut and padded as the provider got it), never again on a
replay. So byte ``n`` kept is byte ``n`` of the session's audio clock, the clock segment times
are on, continuous across reconnects. The same call feeds ``record_to``: one writer
(``PcmFile``) for both, and when both are on, playback reads the recording itself, so no
second copy is made.

Where it lives:

* ``keep_audio=True`` (the default), no ``record_to``: an anonymous temporary file
  (``tempfile.TemporaryFile`` in ``TMPDIR``: on POSIX it is unlinked as it is created, so not
  even a killed kernel leaves it behind; the disk space is freed when it is closed). It is a
  ring of ``keep_audio_max_s`` seconds (one hour is 115 MB): past that the oldest audio is
  overwritten, asking for it raises ``AudioDroppedError``, and ``metadata.kept_audio_warning``
  says so (once, also logged).
* with ``record_to``: the WAV file; all of it, as asked.
* ``keep_audio=False``: nothing (``record_to`` still records); asking raises
  ``AudioNotKeptError`` saying how to turn it on.

The files are closed by ``close()`` (``TranscriptionSession.close``), when the session is
garbage-collected, and at interpreter exit (a ``weakref.finalize`` that holds only the files).

Threads: the sender writes, any thread reads (the kernel's, while the session runs). One lock
guards the files and the counters; it is held for one chunk's write or one span's read, so a
read never sees a partly written chunk, nor a ring slot being overwritten under it. A chunk
that cannot be written (a full disk) stops that copy with a warning; the session goes on.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import weakref
from pathlib import Path

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH
from ..errors import AudioDroppedError, AudioNotKeptError
from .pcmfile import PcmFile
from .recorder import Recorder

log = logging.getLogger("livetx_widgets.session")

BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH
NOT_KEPT = (
    "This session does not keep its audio (keep_audio=False). Create it with keep_audio=True "
    "(the default) to play segments back, or with record_to='file.wav' to save the audio."
)
RELEASED = (
    "This session's kept audio was released (close() was called, or the widget started a "
    "new session, which releases the previous one's). Audio is kept until then; "
    "record_to='file.wav' saves it for good."
)


class SessionAudio:
    """Where a session's sent audio goes: the ``record_to`` recording and/or the kept copy."""

    def __init__(self, *, keep: bool = True, max_s: float = 3600.0,
                 record_to: str | Path | None = None):  # fmt: skip
        self.keep = keep
        self.max_s = max_s
        self.record_to = Path(record_to) if record_to else None
        self._lock = threading.Lock()
        # Guarded by _lock:
        self._recording: Recorder | None = None
        self._kept: PcmFile | None = None  # what reads come from (the recording or the ring)
        self._ring: PcmFile | None = None  # the temporary file, when it is not the recording
        self._written = 0  # bytes of the clock handed to write(), kept or not
        self._why_not = None if keep else NOT_KEPT
        self._warning: str | None = None
        self._closed = False
        self._files: list[PcmFile | Recorder] = []
        weakref.finalize(self, _close_all, self._files)

    # -- the sender's side ----------------------------------------------------------------
    def open(self) -> None:
        """Create the files (at ``start()``). A recording that cannot be written raises
        ``ConfigurationError``; a temporary file that cannot be made only disables keeping."""
        with self._lock:
            if self._closed:
                return
            if self.record_to is not None:
                self._recording = Recorder(self.record_to)
                self._files.append(self._recording)
            if not self.keep:
                return
            if self._recording is not None:
                self._kept = self._recording.pcm
                return
            capacity = max(SAMPLE_WIDTH, int(self.max_s * BYTES_PER_SECOND) // 2 * 2)
            try:
                file = tempfile.TemporaryFile(prefix="livetx-audio-", buffering=0)  # noqa: SIM115
            except OSError as exc:
                self._why_not = (
                    f"No temporary file could be made for this session's audio "
                    f"({exc.strerror}); set TMPDIR to a writable folder, or use record_to=."
                )
                log.warning("%s", self._why_not)
                return
            self._ring = self._kept = PcmFile(file, capacity=capacity)
            self._files.append(self._ring)

    def write(self, pcm: bytes) -> None:
        """Append one chunk as it enters the ledger (the sender thread only)."""
        with self._lock:
            self._written += len(pcm)
            if self._closed:
                return
            if self._recording is not None:
                try:
                    self._recording.write(pcm)
                except OSError as exc:
                    self._lost_recording(exc)
            ring = self._ring
            if ring is not None:
                try:
                    ring.write(pcm)
                except OSError as exc:
                    self._stop_keeping(f"the temporary file could not be written ({exc})")
                    return
                if ring.first > 0 and self._warning is None:
                    self._warning = (
                        f"Only the newest {self.max_s:g} s of audio are kept for playback "
                        f"(keep_audio_max_s): older segments can no longer be played. Raise "
                        "keep_audio_max_s, or use record_to= to keep all of it."
                    )
                    log.warning("%s", self._warning)

    def finish(self) -> None:
        """The sending ended: bring the recording's header up to date (reading still works)."""
        with self._lock:
            if self._recording is not None:
                try:
                    self._recording.finish()
                except OSError as exc:
                    self._lost_recording(exc)

    # -- any thread -----------------------------------------------------------------------
    def read(self, start_s: float, end_s: float) -> bytes:
        """The bytes of ``start_s..end_s`` seconds of the clock (sample-aligned; the end is
        cut to what was sent so far). Raises ``AudioNotKeptError`` / ``AudioDroppedError``."""
        start = round(start_s * SAMPLE_RATE) * SAMPLE_WIDTH
        end = round(end_s * SAMPLE_RATE) * SAMPLE_WIDTH
        with self._lock:
            if self._closed:
                raise AudioNotKeptError(RELEASED)
            kept = self._kept
            if kept is None:
                if self._why_not is None and self._written == 0:
                    return b""  # not started yet: nothing was sent
                raise AudioNotKeptError(self._why_not or NOT_KEPT)
            end = min(end, kept.written)
            start = min(start, end)
            if start < kept.first:
                raise AudioDroppedError(
                    f"The audio from {start_s:.2f} s to {end_s:.2f} s is no longer kept: the "
                    f"session keeps the newest {self.max_s:g} s (keep_audio_max_s), from "
                    f"{kept.first / BYTES_PER_SECOND:.2f} s on. Raise keep_audio_max_s, or "
                    "use record_to= to keep all of it."
                )
            return kept.read(start, end)

    @property
    def kept_from_s(self) -> float | None:
        """The earliest time that can still be read; ``None`` when nothing is kept."""
        with self._lock:
            if self._closed or self._kept is None:
                return None
            return self._kept.first / BYTES_PER_SECOND

    @property
    def warning(self) -> str | None:
        with self._lock:
            return self._warning

    def close(self) -> None:
        """Finish the recording, close every file (the temporary one is gone). Idempotent."""
        with self._lock:
            self._closed = True
            self._kept = self._ring = self._recording = None
            _close_all(self._files)

    # -- failures (lock held) ---------------------------------------------------------------
    def _lost_recording(self, exc: OSError) -> None:
        message = f"The recording {self.record_to} could not be written ({exc}); it stops here."
        log.warning("%s", message)
        self._warning = self._warning or message
        if self._kept is not None and self._kept is self._recording.pcm:
            self._why_not = message
            self._kept = None
        self._recording.close()
        self._recording = None

    def _stop_keeping(self, why: str) -> None:
        message = f"Audio is no longer kept for playback: {why}."
        log.warning("%s", message)
        self._warning = self._warning or message
        self._why_not = message
        if self._ring is not None:
            self._ring.close()
        self._kept = self._ring = None


def _close_all(files: list) -> None:
    """Close the files (also from the finalizer: it must not hold the store itself)."""
    while files:
        files.pop().close()
