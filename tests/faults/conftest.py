"""Audio for the fault matrix: timecode recordings (see ``livetx_widgets.server.timecode_pcm``),
as arrays for the widget and as WAV files for the CLI, made once per test run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def load(name: str):
    """A module of this folder (test modules cannot import each other in importlib mode)."""
    qualified = f"livetx_fault_matrix_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fault_audio(tmp_path_factory) -> dict:
    matrix, harness = load("matrix"), load("harness")
    folder = tmp_path_factory.mktemp("fault-audio")
    short = harness.timecode_array(matrix.AUDIO_S)
    long = harness.timecode_array(matrix.LONG_AUDIO_S)
    return {
        "short": short,
        "long": long,
        "short_wav": harness.write_wav(folder / "short.wav", short),
        "long_wav": harness.write_wav(folder / "long.wav", long),
    }
