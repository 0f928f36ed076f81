"""Playing segments back in a notebook: ``play()`` objects and the clips a widget view plays.

The samples come from the session (``TranscriptionSession.segment_audio`` / ``audio_span``:
exactly the audio sent, on the session's clock); this module only wraps them for Jupyter:

* ``audio(samples)``: an ``IPython.display.Audio`` holding a 16-bit WAV of those exact
  samples (IPython's own numpy path rescales them, so it is not used);
* ``clip_reply(session, content)``: the answer to a view's ``{"type": "play"}`` message, one
  custom message with the segment's WAV as its binary buffer, or an error in plain words. A
  clip is at most ``MAX_CLIP_S`` seconds (a longer segment plays its beginning and says so),
  so one click never sends more than ~3.8 MB to the page. Shared by every widget that plays
  segments (``LiveTranscriber``, the compare widget).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from IPython.display import Audio

from ..errors import LivetxError, SegmentNotFoundError
from ..session.recorder import wav_header
from .wire import mask

RATE = 16000
#: The longest clip a click sends to the page (seconds): 120 s is 3.8 MB of WAV.
MAX_CLIP_S = 120.0


def wav_bytes(samples: np.ndarray) -> bytes:
    """A WAV file (16 kHz mono s16le) of exactly these int16 samples."""
    pcm = np.asarray(samples, dtype="<i2").tobytes()
    return wav_header(len(pcm)) + pcm


def audio(samples: np.ndarray, *, autoplay: bool = False) -> Audio:
    """``IPython.display.Audio`` of the exact samples (shows a player in the notebook)."""
    return Audio(data=wav_bytes(samples), autoplay=autoplay)


def bounded_span(session: Any, start: float, end: float) -> tuple[np.ndarray, bool]:
    """``session.audio_span(start, end)`` cut to ``MAX_CLIP_S``: ``(samples, truncated)``.
    What any widget sends to the page for one click (raises what ``audio_span`` raises)."""
    stop = min(end, start + MAX_CLIP_S)
    return session.audio_span(start, stop), stop < end


def clip_reply(
    session: Any, content: dict, secrets: Iterable[str] = ()
) -> tuple[dict, list[bytes]]:
    """The reply to a view's play request: ``(message, buffers)``.

    ``content`` is the request, ``{"type": "play", "id", "view", "req"}``; the reply echoes
    ``view`` and ``req`` so that only the view that asked plays it. ``session`` is ``None``
    when the segment belongs to a session whose audio is gone.
    """
    segment_id = content.get("id")
    reply: dict[str, Any] = {
        "type": "clip", "view": content.get("view"), "req": content.get("req"),
        "id": segment_id, "run": content.get("run"),
    }  # fmt: skip
    try:
        if session is None:
            raise SegmentNotFoundError(
                "That row belongs to an earlier session: its audio was released when the "
                "next one started."
            )
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            raise SegmentNotFoundError(f"No segment {segment_id!r} to play.")
        if not 0 <= segment_id < len(session.transcript):  # it only grows
            session.segment_audio(segment_id)  # raises SegmentNotFoundError naming the ids
        segment = session.transcript[segment_id]
        samples, truncated = bounded_span(session, segment.start, segment.end)
    except LivetxError as exc:
        reply["error"] = mask(f"Cannot play this segment: {exc}", secrets)
        return reply, []
    reply.update(
        start=round(segment.start, 3), end=round(segment.end, 3),
        duration=round(len(samples) / RATE, 4), truncated=truncated,
    )  # fmt: skip
    return reply, [wav_bytes(samples)]
