"""Lining up the providers' finals by time: one row per stretch of audio, one column each.

Providers cut speech into segments differently (one sentence here, two half-sentences there),
so rows cannot be "the i-th final". Instead the finals of every provider, as intervals on the
shared audio clock, are merged where they overlap: each group of overlapping finals becomes a
row ``[start, end]``, and each provider's cell holds the text of its finals in that group, in
order ("" when it heard nothing there). A provider with one long segment makes one long row:
that is what it said, and the row shows it. O(n log n) in the number of finals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..transcript import Segment

#: Finals closer than this (seconds) are not joined into one row.
OVERLAP_EPS_S = 1e-3


def aligned_rows(finals: Mapping[str, Sequence[Segment]]) -> list[dict]:
    """``[{"start", "end", label: text, ...}, ...]`` in time order (see the docstring)."""
    items = sorted(
        (seg.start, seg.end, label, seg.segment_id, seg.text)
        for label, segments in finals.items()
        for seg in segments
        if seg.text.strip()
    )
    rows: list[dict] = []
    group: list[tuple] = []
    group_end = float("-inf")
    for item in items:
        start, end = item[0], max(item[0], item[1])
        if group and start >= group_end - OVERLAP_EPS_S:
            rows.append(_row(group, finals))
            group, group_end = [], float("-inf")
        group.append(item)
        group_end = max(group_end, end)
    if group:
        rows.append(_row(group, finals))
    return rows


def _row(group: list[tuple], finals: Mapping[str, Sequence[Segment]]) -> dict:
    row: dict = {
        "start": round(min(i[0] for i in group), 3),
        "end": round(max(i[1] for i in group), 3),
    }
    for label in finals:
        texts = [i[4] for i in sorted(group, key=lambda i: (i[3], i[0])) if i[2] == label]
        row[label] = " ".join(t.strip() for t in texts)
    return row
