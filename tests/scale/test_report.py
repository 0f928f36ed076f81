"""The one report: the common figure format, discovery, and the adapters that read the older
benchmarks' text reports (checked against their committed results)."""

from __future__ import annotations

import math

import pytest


def test_figures_compare_with_target_or_reference(run_all):
    F = run_all.Figure
    assert F("b", "x", 5, target=4).passed and F("b", "x", 5, target=4).ratio == 1.25
    assert F("b", "x", 2.0, "ms", 500, "lower", reference=500.3).ratio == pytest.approx(250.15)
    assert F("b", "x", 2.0, target=1.0, better="lower").passed is False
    assert F("b", "x", 0, target=0, better="equal").passed
    assert F("b", "x", 1, target=0, better="equal").passed is False
    assert F("b", "x", 3).passed is None
    assert F("b", "x", math.nan, target=1).passed is False
    assert F.from_dict(F("b", "x", 1.5, "s", 2, "lower").to_dict()).ratio == pytest.approx(4 / 3)
    text = run_all.table([F("b", "stop", 2.0, "ms", 500, "lower", reference=500.0),
                          F("b", "leaks", 1, "", 0, "equal")])  # fmt: skip
    assert "250x vs ref" in text and "FAIL" in text and "pass" in text


def test_every_benchmark_is_run_by_figures_or_an_adapter(run_all):
    names = {p.name for p in run_all.discover()}
    assert {"fuzz.py", "soak.py", "storms.py", "server_load.py", "session.py"} <= names
    for path in run_all.discover():
        assert run_all.has_figures(path) or path.name in run_all.ADAPTERS, path.name


@pytest.mark.parametrize("name, at_least", [("session", 6), ("widget", 4), ("engine", 4),
                                            ("browser", 2)])  # fmt: skip
def test_adapters_read_the_committed_reports(run_all, name, at_least):
    text = (run_all.RESULTS / f"{name}.txt").read_text()
    figures = run_all.ADAPTERS[f"{name}.py"].parse(text)
    assert len(figures) >= at_least, [f.name for f in figures]
    assert all(f.measured is not None for f in figures)


def test_the_session_adapter_reads_the_reference_ratio(run_all):
    text = (run_all.RESULTS / "session.txt").read_text()
    stop = [f for f in run_all.parse_session(text) if "stop()" in f.name]
    assert [f.reference > 100 * f.measured for f in stop] == [True, True]


def test_the_readme_block_is_replaced_in_place(run_all, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\ntext\n")
    monkeypatch.setattr(run_all, "README", readme)
    run_all.update_readme("first")
    run_all.update_readme("second")
    text = readme.read_text()
    assert text.count(run_all.README_BEGIN) == 1 and "second" in text and "first" not in text
