"""Small files shipped with the package, so demos and notebooks work on a fresh machine."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def demo_wav() -> Path:
    """A 4.1 s recording of real speech (16 kHz mono): "I do. I think that America do it
    very well." (see README.md in this folder for its provenance and licence)."""
    return _HERE / "short-16k.wav"
