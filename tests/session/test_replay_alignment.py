"""After a reconnect the replay starts exactly where the last final ended: no overlap, no gap.

Found by the soak benchmark (benchmarks/soak.py): two final segments in 120 minutes started one
50 ms frame before the final before them, each right after a reconnect. Two client faults made
the replay start early: the ack offset was ``int(end * 32000)``, which truncates
``0.7 + 0.6 == 1.2999999999999998`` to one byte short of the frame that ends at 1.3 s (so that
frame stayed unacknowledged), and the ledger replayed whole chunks, so a final ending inside a
chunk had the chunk's head sent again. The new connection's clock then started before the end
of the previous final: Deepgram's first window (``start`` 0 on a new stream) began inside the
previous final, and both providers were sent audio that was already final.

Real sockets on 127.0.0.1: ``LocalServer`` with the script engine reading the timecoded audio
(``timecode=True``), so each connection hears the script from the first sample it really got.
"""

from __future__ import annotations

import itertools

import livetx_test_support as support  # loaded by tests/conftest.py
import numpy as np
import pytest

from livetx_widgets import ArraySource, TranscriptionSession
from livetx_widgets.server import Faults, LocalServer, Trigger, timecode_pcm
from livetx_widgets.session.ledger import AudioLedger

RATE = 16000
PROVIDERS = ["deepgram", "assemblyai"]

#: The second final ends at 0.6 + 0.7 on the clock of a connection that starts at 0.6 s: the
#: float sum is 1.2999999999999998, one byte short of the frame boundary at 1.3 s.
FLOAT_EDGE = {
    "words": [
        {"text": "one", "start": 0.30, "end": 0.60},
        {"text": "two", "start": 1.20, "end": 1.30},
        {"text": "three", "start": 2.00, "end": 2.40},
    ]
}
#: The first final ends at 0.62 s, inside the 50 ms frame [0.60, 0.65).
MID_FRAME = {
    "words": [
        {"text": "one", "start": 0.30, "end": 0.62},
        {"text": "two", "start": 1.40, "end": 1.80},
    ]
}
CASES = {
    # script, connections dropped after their first final, end of the last final before the
    # last reconnect
    "float-edge": (FLOAT_EDGE, 2, 1.30),
    "mid-frame": (MID_FRAME, 1, 0.62),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_replay_starts_at_the_end_of_the_last_final(provider, case):
    script, drops, last_acked_s = CASES[case]
    audio = np.frombuffer(timecode_pcm(3.0), dtype="<i2")
    faults = Faults(drop_when=Trigger(finals=1), connections=drops)
    with LocalServer(engine="script", script=script, rate_limit=False, faults=faults,
                     engine_options={"timecode": True}) as srv:  # fmt: skip
        session = TranscriptionSession(provider, source=ArraySource(audio), url=srv.url,
                                       pace=False)  # fmt: skip
        session.start()
        assert session.wait(30 * support.TIMING)
        session.stop()
        records = srv.sessions
    assert session.error is None, session.error
    assert session.metadata.reconnects == drops and len(records) == drops + 1
    finals = [s for s in session.transcript.segments if s.is_final]
    # Every word once, at its scripted time (the wire carries milliseconds).
    words = [w for s in finals for w in s.words]
    assert [w.text.lower().strip(".") for w in words] == [w["text"] for w in script["words"]]
    for got, want in zip(words, script["words"], strict=True):
        assert got.start == pytest.approx(want["start"], abs=1e-6)
        assert got.end == pytest.approx(want["end"], abs=1e-6)
    # No final segment starts before the one before it ended.
    for before, after in itertools.pairwise(finals):
        assert after.start >= before.end - 1e-6, (before, after)
    # The last connection got exactly the audio from the end of the last final on.
    sent_bytes = round(session.metadata.audio_sent_s * RATE) * 2
    assert records[-1].audio_bytes == sent_bytes - round(last_acked_s * RATE) * 2


# -- the ledger's cut, without sockets -------------------------------------------------------
def ledger_with(chunks: list[int], acked: int) -> AudioLedger:
    """Chunks of the given sizes (bytes), all sent, acknowledged up to ``acked``."""
    ledger = AudioLedger()
    for i, size in enumerate(chunks):
        ledger.append(bytes([i + 1]) * size)
        ledger.mark_sent(0.0)
    ledger.ack(acked)
    return ledger


def pending(ledger: AudioLedger) -> list[tuple[int, int]]:
    """(start, size) of every pending chunk, in order, checking they are contiguous."""
    out = []
    while (item := ledger.next_pending()) is not None:
        out.append((item[0], len(item[1])))
        ledger.mark_sent(0.0)
    for (s, n), (t, _) in itertools.pairwise(out):
        assert t == s + n
    return out


def test_rewind_cuts_the_chunk_holding_the_ack_point():
    ledger = ledger_with([1600, 1600, 1600], acked=1600 + 640)
    assert ledger.rewind(640, 8000) == 2240
    assert ledger.pending_bytes == 4800 - 2240
    assert pending(ledger) == [(2240, 960), (3200, 1600)]


def test_rewind_joins_a_head_shorter_than_a_frame_to_the_next_chunk():
    ledger = ledger_with([1600, 1600, 1600], acked=1600 + 1280)  # 320 bytes left of chunk 2
    assert ledger.rewind(1600, 32000) == 2880
    assert pending(ledger) == [(2880, 1920)]
    # The joined piece would exceed the largest frame: two pieces, both in range.
    ledger = ledger_with([1600, 8000, 8000], acked=1600 + 7680)
    assert ledger.rewind(1600, 8000) == 9280
    assert pending(ledger) == [(9280, 1600), (10880, 6720)]


def test_rewind_with_nothing_after_a_short_head_replays_one_minimum_frame():
    ledger = ledger_with([1600, 1600], acked=1600 + 1280)
    assert ledger.rewind(1600, 8000) == 1600  # the whole chunk: the shortest frame allowed
    assert pending(ledger) == [(1600, 1600)]
    ledger = ledger_with([1600, 1600], acked=1601)  # never mid-sample
    assert ledger.rewind(2, 8000) == 1600
    assert pending(ledger) == [(1600, 1600)]
