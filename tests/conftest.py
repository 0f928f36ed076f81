"""Fixtures every test area shares: where the shared recordings and protocol notes live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared material not found at {SHARED}; set LIVETX_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def short_wav(shared_dir: Path) -> Path:
    """4.1 s, one speaker: "I do. I think that America do it very well." (approximate)."""
    return shared_dir / "audio" / "short-16k.wav"


@pytest.fixture(scope="session")
def dialogue_wav(shared_dir: Path) -> Path:
    """28.3 s, two voices with pauses between turns."""
    return shared_dir / "audio" / "dialogue-16k.wav"
