"""The server's per-connection records stay bounded on a server that runs for days."""

from __future__ import annotations

import threading

from livetx_widgets.server import records
from livetx_widgets.server.records import SessionLog


def _open(log: SessionLog, index: int) -> int:
    return log.open(index=index, protocol="deepgram", path="/v1/listen", query={}, headers={})


def test_tuple_fields_keep_their_latest_items_and_count_the_rest(monkeypatch):
    monkeypatch.setattr(records, "MAX_ITEMS", 5)
    log = SessionLog()
    pos = _open(log, 1)
    for i in range(12):
        log.append(pos, "sent", f"Results{i}")
    log.append(pos, "controls", {"type": "KeepAlive"})
    (rec,) = log.snapshot()
    assert rec.sent == tuple(f"Results{i}" for i in range(7, 12))
    assert rec.items_dropped == {"sent": 7}
    assert rec.controls == ({"type": "KeepAlive"},) and rec.control_types == ("KeepAlive",)


def test_finished_records_beyond_the_bound_are_let_go_open_ones_never(monkeypatch):
    monkeypatch.setattr(records, "MAX_RECORDS", 3)
    log = SessionLog()
    still_open = _open(log, 1)
    for i in range(2, 10):
        pos = _open(log, i)
        log.append(pos, "sent", "Metadata")
        log.update(pos, done=True)
    _open(log, 10)  # the next connection lets the oldest finished ones go
    kept = log.snapshot()
    assert [r.index for r in kept] == [1, 7, 8, 9, 10]
    log.update(still_open, done=True)  # positions stay valid after evictions
    assert log.snapshot()[0].done


def test_wait_sees_records_written_from_another_thread():
    log = SessionLog()
    pos = _open(log, 1)
    writer = threading.Thread(target=lambda: log.update(pos, done=True))
    writer.start()
    got = log.wait(lambda recs: recs and recs[0].done, timeout=10)
    writer.join(10)
    assert got[0].done and not writer.is_alive()
