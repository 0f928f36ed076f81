"""Many sessions at once; a broken session (fault, engine exception, garbage) hurts no other;
a slow engine never blocks the event loop."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from livetx_widgets.server import Engine, Faults, ScriptEngine

EXPECTED = ["Hello world.", "Second turn."]


def deepgram_session(h, srv, language: str | None = None) -> tuple[list[str], int | None]:
    with h.open_ws(h.dg_url(srv, punctuate="true", language=language)) as ws:
        h.send_all(ws, [*h.chunks(h.silence(4.0), 100), json.dumps({"type": "CloseStream"})])
        messages, code, _ = h.drain(ws)
    finals = [m["channel"]["alternatives"][0]["transcript"] for m in messages
              if m["type"] == "Results" and m["is_final"]]  # fmt: skip
    return finals, code


def assemblyai_session(h, srv, language: str | None = None,
                       garbage: bool = False) -> tuple[list[str], int | None]:  # fmt: skip
    with h.open_ws(h.aai_url(srv, language_code=language), scheme=None) as ws:
        assert h.recv_json(ws)["type"] == "Begin"
        frames = h.chunks(h.silence(4.0), 100)
        if garbage:
            frames.insert(10, "{this is not json")  # the server closes there (3006)
        h.send_all(ws, [*frames, json.dumps({"type": "Terminate"})])
        messages, code, _ = h.drain(ws)
    return [m["transcript"] for m in messages if m.get("end_of_turn")], code


def test_many_sessions_at_once_one_dropped_one_garbage_others_complete(server_factory, h):
    srv = server_factory(rate_limit=False, faults=Faults(drop_after_frames=5, connections=1))
    # Connection 1 (the faulty one) is opened first, then everything runs at once.
    first = h.open_ws(h.dg_url(srv))
    jobs = [(deepgram_session, {}), (assemblyai_session, {})] * 4
    jobs.append((assemblyai_session, {"garbage": True}))
    with first, ThreadPoolExecutor(len(jobs) + 1) as pool:
        futures = [pool.submit(fn, h, srv, **kw) for fn, kw in jobs]

        def dropped_session():
            h.send_all(first, h.chunks(h.silence(1.0), 100))
            return h.drain(first)[1]

        dropped = pool.submit(dropped_session)
        results = [f.result(timeout=4 * h.TIMEOUT) for f in futures]
        assert dropped.result(timeout=h.TIMEOUT) is None
    for (fn, kw), (finals, code) in zip(jobs, results, strict=True):
        if kw.get("garbage"):
            assert code == 3006
        else:
            assert (finals, code) == (EXPECTED, 1000), fn.__name__
    records = srv.wait_idle(h.TIMEOUT)
    assert len(records) == len(jobs) + 1
    assert records[0].dropped and sum(r.dropped for r in records) == 1


class ExplodingEngine(Engine):
    """Script engine whose streams for language ``boom`` raise once 0.5 s of audio arrived."""

    name = "exploding"

    def __init__(self):
        self.inner = ScriptEngine()

    def open_stream(self, sample_rate, *, language=None):
        stream = self.inner.open_stream(sample_rate, language=language)
        if language == "boom":
            original = stream.feed

            def feed(pcm):
                results = original(pcm)
                if stream.clock >= 0.5:
                    raise RuntimeError("engine bug")
                return results

            stream.feed = feed
        return stream


def test_engine_exception_ends_only_its_own_session(server_factory, h):
    srv = server_factory(engine=ExplodingEngine(), script=None, rate_limit=False)
    with ThreadPoolExecutor(4) as pool:
        bad_dg = pool.submit(deepgram_session, h, srv, "boom")
        bad_aai = pool.submit(assemblyai_session, h, srv, "boom")
        good_dg = pool.submit(deepgram_session, h, srv)
        good_aai = pool.submit(assemblyai_session, h, srv)
        assert bad_dg.result(timeout=2 * h.TIMEOUT) == ([], 1011)  # NET-0000
        assert bad_aai.result(timeout=2 * h.TIMEOUT) == ([], 3005)
        default_text = ["Hello from the livetx script engine."]
        assert good_dg.result(timeout=2 * h.TIMEOUT) == (default_text, 1000)
        assert good_aai.result(timeout=2 * h.TIMEOUT) == (default_text, 1000)
    records = srv.wait_idle(h.TIMEOUT)
    broken = [r for r in records if r.error]
    assert len(broken) == 2 and all("engine bug" in r.error for r in broken)
    assert {r.close_reason for r in broken} == {"NET-0000", "Session Cancelled: An error occurred"}


class SlowEngine(Engine):
    """Script engine whose ``slow`` streams take ``delay`` seconds per feed (like a decoder)."""

    name = "slow"

    def __init__(self, delay: float):
        self.inner = ScriptEngine()
        self.delay = delay
        self.feeding = threading.Event()

    def open_stream(self, sample_rate, *, language=None):
        stream = self.inner.open_stream(sample_rate, language=language)
        if language == "slow":
            original = stream.feed

            def feed(pcm):
                self.feeding.set()
                time.sleep(self.delay)  # stands in for CPU-bound decoding in a worker thread
                return original(pcm)

            stream.feed = feed
        return stream


def test_a_slow_engine_call_never_blocks_other_sessions(server_factory, h):
    engine = SlowEngine(delay=4 * h.SHORT)
    srv = server_factory(engine=engine, script=None, rate_limit=False)
    with h.open_ws(h.dg_url(srv, language="slow")) as slow:
        slow.send(h.silence(0.1))
        assert engine.feeding.wait(h.TIMEOUT)
        # While that feed runs, another session opens, streams and ends promptly.
        t0 = time.monotonic()
        with h.open_ws(h.aai_url(srv), scheme=None) as ws:
            assert h.recv_json(ws)["type"] == "Begin"
            ws.send(json.dumps({"type": "Terminate"}))
            messages, code, _ = h.drain(ws)
        assert code == 1000 and messages[-1]["type"] == "Termination"
        assert time.monotonic() - t0 < 4 * h.SHORT
        # The slow session's own receiver stays responsive too (KeepAlive, bad text).
        slow.send("garbage")
        assert h.recv_json(slow)["variant"] == "SchemaError"


def test_session_records_can_be_read_while_sessions_run(server_factory, h):
    srv = server_factory(rate_limit=False)
    stop = threading.Event()
    seen: list[int] = []

    def reader():
        for _ in range(100_000):
            if stop.is_set():
                return
            seen.append(sum(r.audio_frames for r in srv.sessions))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(deepgram_session, h, srv) for _ in range(4)]
            assert all(f.result(timeout=2 * h.TIMEOUT)[1] == 1000 for f in futures)
    finally:
        stop.set()
        thread.join(h.TIMEOUT)
    assert not thread.is_alive()
    assert seen == sorted(seen)  # counts only grow: every snapshot is consistent
    assert sum(r.audio_frames for r in srv.wait_idle(h.TIMEOUT)) == 4 * 40
