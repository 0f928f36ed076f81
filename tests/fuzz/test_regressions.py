"""Every crash fuzzing found, replayed from its fixture (``tests/fixtures/fuzz/<target>-<what>``),
and what the fixed code answers instead."""

from __future__ import annotations

import json
import math

import pytest

from livetx_widgets.audio import BrowserMicrophone
from livetx_widgets.errors import ConfigurationError
from livetx_widgets.server.params import QueryError

FIXTURES = sorted(p.name for p in (__import__("pathlib").Path(__file__).parents[1] / "fixtures"
                                   / "fuzz").glob("*.json"))  # fmt: skip


def test_there_are_fixtures():
    assert len(FIXTURES) >= 9


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_replays_clean(fz, targets, fixture):
    name, case = fz.case_from_json((fz.FUZZ_FIXTURES / fixture).read_text())
    assert fixture.startswith(name + "-")
    targets[name].run(case)


def _driver(fz, protocol):
    return fz.server_helpers().CoreDriver(protocol, options={"rate_limit": False})


def test_deep_nesting_gets_the_documented_answers(fz):
    dg = _driver(fz, "deepgram").text("[" * 100_000)
    [error] = dg.messages
    assert error["type"] == "Error" and error["variant"] == "SchemaError"
    assert dg.closed is None  # Deepgram keeps the session open after a SchemaError
    aai = _driver(fz, "assemblyai").text("[" * 100_000)
    assert aai.closed.code == 3006 and "Invalid JSON" in aai.messages[-1]["error"]


def test_deeply_nested_query_values_are_refused_with_400(fz):
    from livetx_widgets.server import assemblyai_protocol

    for name, value in (("keyterms_prompt", "[" * 5000), ("llm_gateway", '{"a":' * 5000)):
        with pytest.raises(QueryError):
            assemblyai_protocol.parse_query([(name, value)])


def test_channels_are_bounded():
    from livetx_widgets.server import deepgram_protocol

    assert deepgram_protocol.parse_query([("channels", "32")]).channels == 32
    with pytest.raises(QueryError, match="maximum 32"):
        deepgram_protocol.parse_query([("channels", "999999999999"), ("multichannel", "true")])


def test_an_offset_far_ahead_costs_the_bound_not_gigabytes():
    mic = BrowserMicrophone(max_backlog_s=1.0)
    mic.start()
    mic.receive(b"\1\0" * 1600, seq=0, offset=0)
    mic.receive(b"\1\0" * 1600, seq=1, offset=2**40)
    stats = mic.stats()
    assert stats["gaps"] == 1 and stats["dropped_s"] > 1e6
    assert mic.backlog_s <= 1.0
    with pytest.raises(ConfigurationError, match="offset"):
        mic.receive(b"\0\0", seq=2, offset=10**400)
    mic.stop()


def test_a_seq_jump_is_one_skipped_range():
    mic = BrowserMicrophone(reorder_wait_s=0.0)
    mic.start()
    mic.receive(b"\0\0" * 1600, seq=0, offset=0)
    assert mic.receive(b"\0\0" * 1600, seq=10**12, offset=1600) == "ok"
    assert mic.receive(b"\0\0", seq=5, offset=0) == "late"  # its place was given up on
    assert mic.receive(b"\0\0", seq=10**12, offset=1600) == "duplicate"
    mic.stop()


@pytest.mark.parametrize("captured", [math.nan, math.inf, 10**400, True, "12"])
def test_bad_capture_times_are_ignored(captured):
    from types import SimpleNamespace

    from livetx_widgets.ui.browser_link import BrowserLink

    mic = BrowserMicrophone()
    mic.start()
    widget = SimpleNamespace(_session=SimpleNamespace(source=mic, running=True))
    BrowserLink(widget).audio({"capture": "c", "seq": 0, "offset": 0, "capturedAt": captured},
                              [b"\0\0" * 1600])  # fmt: skip
    stats = mic.stats()
    json.dumps(stats, allow_nan=False)  # the kernel's message packer refuses NaN
    assert stats["chunks"] == 1 and stats["late_s"] == 0
    assert mic.captured_at(0.05) is None
    mic.stop()


def test_a_lone_surrogate_type_is_an_invalid_message_type(fz):
    aai = _driver(fz, "assemblyai").text('{"type": "\\ud800"}')
    assert aai.closed.code == 3006 and aai.closed.reason == "Invalid Message Type: \\ud800"
    aai.closed.reason.encode("utf-8")  # sendable in a close frame
