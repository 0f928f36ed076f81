"""The fuzz targets (``targets.py``) as a fixture: test modules cannot import a sibling module
under ``--import-mode=importlib``, and ``benchmarks/fuzz.py`` loads the same file by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

MODULE = "livetx_fuzz_targets"


def _load():
    if MODULE not in sys.modules:
        path = Path(__file__).with_name("targets.py")
        spec = importlib.util.spec_from_file_location(MODULE, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[MODULE]


@pytest.fixture(scope="session")
def fz():
    """The targets module: ``fz.make_targets()``, ``fz.Mutator``, ``fz.load_seeds()``..."""
    return _load()


@pytest.fixture(scope="session")
def targets(fz):
    return fz.make_targets()


@pytest.fixture(scope="session")
def mutator(fz):
    return fz.Mutator(fz.load_seeds())
