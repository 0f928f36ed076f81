"""Bounded fuzzing in the fast lane: a few hundred mutated inputs per target, derandomized.

Each example is a seed payload (the protocol notes' and the recorded fixtures' JSON) changed by
a sequence of mutations drawn from a Random that Hypothesis seeds (``st.randoms``; derandomized,
so every run tries the same inputs; a failure is reproduced from its seed).
``benchmarks/fuzz.py`` runs the same targets on >= 100,000 inputs each (and with atheris).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TARGETS = ["deepgram-codec", "assemblyai-codec", "deepgram-core", "assemblyai-core",
           "browser-audio"]  # fmt: skip

bounded = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@pytest.mark.parametrize("name", TARGETS)
@bounded
@given(rng=st.randoms(use_true_random=True))
def test_mutated_inputs_keep_the_contract(targets, mutator, name, rng):
    target = targets[name]
    target.run(target.generate(mutator, rng))


def test_every_target_is_fuzzed(targets):
    assert sorted(targets) == sorted(TARGETS)


def test_the_seeds_are_the_real_payloads(fz):
    seeds = fz.load_seeds()
    kinds = {p: {s.get("type") for s in seeds[p]} for p in seeds}
    assert {"Results", "Metadata", "Finalize", "CloseStream"} <= kinds["deepgram"]
    assert {"Begin", "Turn", "Termination", "Terminate"} <= kinds["assemblyai"]


def test_a_broken_contract_is_found(fz, targets, monkeypatch):
    """The harness itself can fail: a codec that raises is reported as a Finding."""
    from livetx_widgets.providers import DeepgramCodec

    def broken(self, text):
        raise KeyError("channel")

    monkeypatch.setattr(DeepgramCodec, "decode", broken)
    with pytest.raises(fz.Finding, match="KeyError"):
        targets["deepgram-codec"].run(['{"type": "Results"}'])
