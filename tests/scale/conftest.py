"""Scale tests load the benchmarks they are the small versions of (``benchmarks/*.py``) by
path, so that a test and its benchmark run the same code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str):
    module_name = f"livetx_benchmark_{name}"
    if module_name not in sys.modules:
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))  # for their shared ``figure`` module
        spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(scope="session")
def storms():
    return load_benchmark("storms")


@pytest.fixture(scope="session")
def run_all():
    return load_benchmark("run_all")
