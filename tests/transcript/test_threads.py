"""A receiver thread applies events while the notebook thread exports snapshots."""

from __future__ import annotations

import re
import threading
import time

from livetx_widgets.events import FinalTranscript, PartialTranscript
from livetx_widgets.transcript import Transcript

N_EVENTS = 10_000
PENDING = re.compile(r"(word \d+)?")


def _apply_all(t: Transcript, errors: list[BaseException]) -> None:
    try:
        for i in range(N_EVENTS // 2):
            key = f"0:{i}"
            t.apply(PartialTranscript(f"word {i}", start=i, end=i + 0.5, segment_key=key))
            t.apply(FinalTranscript(f"Word {i}.", start=i, end=i + 1.0, segment_key=key))
    except BaseException as exc:  # reported to the test thread
        errors.append(exc)


def test_exports_while_another_thread_applies():
    t = Transcript(provider="local")
    errors: list[BaseException] = []
    writer = threading.Thread(target=_apply_all, args=(t, errors), name="apply-events")
    deadline = time.monotonic() + 60
    snapshots = 0
    last_rows = 0
    writer.start()
    try:
        while writer.is_alive() and time.monotonic() < deadline and snapshots < 100_000:
            df = t.to_dataframe()
            rows = len(df)
            assert rows >= last_rows
            assert df["segment_id"].tolist() == list(range(rows))
            assert df["text"].tolist() == [f"Word {i}." for i in range(rows)]
            tail = t.tail(3)
            assert [s.segment_id for s in tail] == sorted(s.segment_id for s in tail)
            # At most one partial is pending at a time, and never a half-applied one.
            assert PENDING.fullmatch(t.partial_text)
            last_rows = rows
            snapshots += 1
    finally:
        writer.join(timeout=60)
    assert not writer.is_alive(), "the applying thread did not finish in time"
    assert errors == []
    assert snapshots > 0
    assert len(t) == N_EVENTS // 2
    assert t.partial_text == ""
    assert t.version == N_EVENTS
    assert t.to_dataframe()["segment_id"].tolist() == list(range(N_EVENTS // 2))
