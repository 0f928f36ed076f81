"""``record_to=``: a WAV file of exactly the audio the session sent, as the provider heard it.

Chunks are written when they enter the audio ledger (after being cut and padded to what the
provider accepts), never again on a replay, so the file is the session's audio clock: a
segment's ``start``/``end`` can be looked up in it directly.
"""

from __future__ import annotations

import contextlib
import wave
from pathlib import Path

from ..audio.base import SAMPLE_RATE, SAMPLE_WIDTH
from ..errors import ConfigurationError


class Recorder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 -- closed by close()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot write the recording to {self.path}: {exc.strerror}"
            ) from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(SAMPLE_RATE)

    def write(self, pcm: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframes(pcm)

    def close(self) -> None:
        """Finish the WAV header. Idempotent."""
        if self._wav is not None:
            with contextlib.suppress(Exception):
                self._wav.close()
            self._wav = None
