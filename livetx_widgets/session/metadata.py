"""What a session knows about itself, for ``session.metadata`` / ``widget.metadata``.

Filled from the provider's greeting and closing messages (AssemblyAI ``Begin`` and
``Termination``, Deepgram's ``dg-request-id`` header and ``Metadata``) and from the session's
own clock and counters, so it is complete even when the provider never sent its summary
(an error, a drop): the reference scripts lost their metadata exactly then.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SessionMetadata:
    """A snapshot of a session's metadata. Never contains an API key.

    Times: ``started_at``/``ended_at`` are Unix seconds; durations are seconds.
    ``audio_duration_s`` is what the provider reports having processed (or, without a
    summary, the audio the session sent); ``audio_sent_s`` is always the session's own count.
    """

    provider: str = ""
    model: str = ""
    url: str = ""  # redacted
    session_id: str | None = None
    session_ids: list[str] = field(default_factory=list)  # one per connection
    request_id: str | None = None
    expires_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    state: str = "idle"  # see session/lifecycle.py: idle connecting live paused reconnecting
    #                      stopping stopped error
    audio_duration_s: float | None = None
    audio_sent_s: float = 0.0
    session_duration_s: float | None = None
    reconnects: int = 0
    dropped_audio_s: float = 0.0
    source_gaps: int = 0  # holes in the source's input (a network stream's drops, the browser's
    source_gap_s: float = 0.0  # lost chunks), each filled with as much silence: times stay true
    source_reconnects: int = 0  # times the source reopened its input (a network stream)
    keepalives_sent: int = 0
    paused_s: float = 0.0
    finals: int = 0
    partials: int = 0
    terminal_message: bool = False  # did the provider send its closing summary?
    unrequested_terminals: int = 0  # summaries the provider sent without being asked
    warnings: int = 0  # ProviderWarnings: malformed or unknown frames (each logged)
    last_warning: str | None = None
    error: str | None = None
    # Audio kept for segment_audio()/play() (see session/audio_store.py): the earliest time
    # still kept (None: none is kept; > 0 once keep_audio_max_s dropped the oldest), and why
    # some is missing.
    kept_audio_from_s: float | None = None
    kept_audio_warning: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # provider dicts: begin, summary
    final_latencies_s: list[float] = field(default_factory=list, repr=False)

    @property
    def latency(self) -> dict[str, float | None]:
        """Final-result latency (seconds from sending the audio to receiving its final)."""
        values = self.final_latencies_s
        if not values:
            return {"final_p50_s": None, "final_p95_s": None, "n": 0}
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return {"final_p50_s": statistics.median(ordered), "final_p95_s": p95, "n": len(ordered)}

    def copy(self) -> SessionMetadata:
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("final_latencies_s")
        data["latency"] = self.latency
        return data
