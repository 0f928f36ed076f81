"""What a comparison measures, per provider, on the one audio clock the tee keeps.

Where speech starts and ends comes from the audio itself, never from a provider (a provider
that reports its words early would otherwise look fast): a simple energy VAD over the teed
audio (``speech_regions``: RMS per 20 ms frame, a threshold 12 dB over the noise floor,
clamped to -50..-35 dBFS, pauses shorter than ``MAX_GAP_S`` bridged, blips shorter than
``MIN_SPEECH_S`` dropped), or, when the caller knows better (a script with known word times),
the regions it passes as ``speech=``.

Times on the shared clock: a region boundary at ``t`` seconds of audio maps to the moment the
tee read that audio from the source (``AudioTee.clock_at``, one chunk's resolution, ~50 ms);
a result's arrival is ``time.monotonic()`` when the session's receiver handed it over. So for
a real-time source the latencies are what a listener would see, and they are comparable
across providers because every provider's audio came from the same read.

* ``first_partial_s``: from the start of the first speech region to the first result with
  text (a partial, or a final when a provider sends no partials) that arrived after it.
* ``final_p50_s`` / ``final_p95_s``: for each speech region, from its end to the arrival of
  its final: each final belongs to the region it overlaps most, and a region's final is the
  last-ending one of those (it holds the end of that speech). A region no final overlaps
  counts in ``missed_regions``, not as a latency. A value can be negative when the VAD hears a
  tail of sound (breath, reverberation) after the provider has already finalised.
* ``revisions_per_final``: partial updates per final; ``words_per_final``: words per final.
* ``wer``: word error rate with jiwer against ``reference``, both sides lower-cased, without
  punctuation, whitespace collapsed.

Pure functions over plain values (``ProviderLog`` is what the listeners recorded); no clock,
no threads. jiwer is imported only when a reference is given.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..extras import require

MIN_SPEECH_S = 0.1
MAX_GAP_S = 0.5
#: Speech that starts at ``s`` exists once the sample at ``s`` was read: one sample later.
START_EPS_S = 1 / 16000
#: Arrivals of the first partials kept per provider (enough to find the first after speech).
MAX_PARTIAL_ARRIVALS = 2000

#: ``summary()`` columns, in order.
COLUMNS = (
    "provider", "name", "model", "wer", "first_partial_s", "final_p50_s", "final_p95_s",
    "revisions_per_final", "words_per_final", "finals", "words", "partials", "reconnects",
    "missed_regions", "state", "error",
)  # fmt: skip


@dataclass
class ProviderLog:
    """What one provider's listeners recorded: O(1) per result, no transcript walks."""

    partial_arrivals: list[float] = field(default_factory=list)  # monotonic, with text
    #: segment_id -> (first arrival, start, end, words), finals with text; a re-final (a
    #: speaker revision) keeps its first arrival.
    finals: dict[int, tuple[float, float, float, int]] = field(default_factory=dict)
    partials: int = 0

    def partial(self, arrival: float, text: str) -> None:
        self.partials += 1
        if text and len(self.partial_arrivals) < MAX_PARTIAL_ARRIVALS:
            self.partial_arrivals.append(arrival)

    def final(self, arrival: float, segment_id: int, start: float, end: float,
              text: str) -> None:  # fmt: skip
        if not text.strip():
            return
        first = self.finals.get(segment_id)
        self.finals[segment_id] = (first[0] if first else arrival, start, end, len(text.split()))


@dataclass(frozen=True)
class Metrics:
    """One provider's row of ``summary()`` (see the module docstring for each value)."""

    provider: str  # the label
    name: str  # the provider behind it
    model: str | None
    wer: float | None
    first_partial_s: float | None
    final_p50_s: float | None
    final_p95_s: float | None
    revisions_per_final: float | None
    words_per_final: float | None
    finals: int
    words: int
    partials: int
    reconnects: int
    missed_regions: int
    state: str
    error: str
    final_latencies_s: tuple[float, ...] = ()

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


def frame_loudness(pcm: bytes, frame_samples: int) -> np.ndarray:
    """RMS loudness (0..1, float32) of each whole ``frame_samples`` frame of s16le ``pcm``:
    what ``speech_regions`` reads (the tee measures what it reads with it; benchmarks and
    tests measure a recording the same way)."""
    n = len(pcm) // (2 * frame_samples)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = np.frombuffer(pcm, dtype="<i2", count=n * frame_samples)
    frames = frames.reshape(n, frame_samples).astype(np.float32)
    return (np.sqrt(np.mean(frames**2, axis=1)) / 32768.0).astype(np.float32)


def speech_regions(energy: np.ndarray, frame_s: float) -> list[tuple[float, float]]:
    """Speech as ``[(start, end), ...]`` seconds from frame loudness (see the docstring)."""
    if energy.size == 0:
        return []
    db = 20 * np.log10(np.maximum(energy.astype(np.float64), 1e-10))
    threshold = float(np.clip(np.percentile(db, 10) + 12.0, -50.0, -35.0))
    voiced = np.flatnonzero(db > threshold)
    if voiced.size == 0:
        return []
    regions: list[list[int]] = [[int(voiced[0]), int(voiced[0])]]
    max_gap = round(MAX_GAP_S / frame_s)
    for i in voiced[1:]:
        if i - regions[-1][1] <= max_gap:
            regions[-1][1] = int(i)
        else:
            regions.append([int(i), int(i)])
    min_frames = MIN_SPEECH_S / frame_s
    return [
        (round(a * frame_s, 3), round((b + 1) * frame_s, 3))
        for a, b in regions
        if b + 1 - a >= min_frames
    ]


def first_partial_latency(regions: Sequence[tuple[float, float]], log: ProviderLog,
                          clock: Callable[[float], float | None]) -> float | None:  # fmt: skip
    if not regions:
        return None
    t = clock(regions[0][0] + START_EPS_S)  # once its first sample had been read
    if t is None:
        return None
    arrivals = [a for a in log.partial_arrivals if a >= t]
    arrivals += [f[0] for f in log.finals.values() if f[0] >= t]
    return round(min(arrivals) - t, 4) if arrivals else None


def final_latencies(regions: Sequence[tuple[float, float]], log: ProviderLog,
                    clock: Callable[[float], float | None]) -> tuple[list[float], int]:  # fmt: skip
    """Latency of each region's final, and how many regions got no final at all.

    Each final belongs to the region it overlaps most (a final that spills a little into the
    next region still belongs to its own); a region's final is the last-ending final that
    belongs to it (the one that holds the end of that speech). O(finals x regions it spans).
    """
    starts = [s for s, _ in regions]
    ends = [e for _, e in regions]
    last: dict[int, tuple[float, float, float, int]] = {}
    for final in log.finals.values():
        _arrival, start, end, _words = final
        best, best_overlap = None, 0.0
        for i in range(bisect_left(ends, start), len(regions)):  # regions ending after it starts
            if starts[i] > end:
                break
            overlap = min(ends[i], end) - max(starts[i], start)
            if overlap > best_overlap or (best is None and start == end):
                best, best_overlap = i, overlap
        if best is not None:
            mine = last.get(best)
            if mine is None or (end, -final[0]) > (mine[2], -mine[0]):
                last[best] = final
    latencies: list[float] = []
    missed = 0
    for i, (_start, end) in enumerate(regions):
        t = clock(end)
        if t is None:
            continue  # that audio was never read (stopped before it)
        if i not in last:
            missed += 1
        else:
            latencies.append(round(last[i][0] - t, 4))
    return latencies, missed


def normalise(text: str) -> str:
    """What WER compares: lower case, no punctuation, single spaces."""
    import re

    text = re.sub(r"[^\w\s']|(?<!\w)'|'(?!\w)", " ", text.lower())
    return " ".join(text.replace("'", "").split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """jiwer's WER of the normalised texts (1.0 for an empty hypothesis)."""
    require("word error rate (reference=)", "compare")
    import jiwer

    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


def measure(*, label: str, name: str, model: str | None, log: ProviderLog, text: str,
            regions: Sequence[tuple[float, float]], clock: Callable[[float], float | None],
            reference: str | None, reconnects: int, state: str,
            error: str) -> Metrics:  # fmt: skip
    finals = len(log.finals)
    words = sum(f[3] for f in log.finals.values())
    latencies, missed = final_latencies(regions, log, clock)
    return Metrics(
        provider=label,
        name=name,
        model=model,
        wer=None if reference is None else round(word_error_rate(reference, text), 4),
        first_partial_s=first_partial_latency(regions, log, clock),
        final_p50_s=percentile(latencies, 50),
        final_p95_s=percentile(latencies, 95),
        revisions_per_final=round(log.partials / finals, 3) if finals else None,
        words_per_final=round(words / finals, 3) if finals else None,
        finals=finals,
        words=words,
        partials=log.partials,
        reconnects=reconnects,
        missed_regions=missed,
        state=state,
        error=error,
        final_latencies_s=tuple(latencies),
    )
