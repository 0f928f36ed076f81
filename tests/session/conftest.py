"""Session tests run real sessions over loopback against ``livetx serve`` (script engine)."""

from __future__ import annotations

from pathlib import Path

import livetx_test_support as support  # loaded by tests/conftest.py
import pytest

from livetx_widgets.server import LocalServer

# Two utterances; times are on the audio clock of the stream.
SCRIPT = support.TWO_TURNS


@pytest.fixture
def wav5(tmp_path: Path) -> Path:
    return support.tone_wav(tmp_path / "five.wav", 5.0)


@pytest.fixture
def server():
    with LocalServer(engine="script", script=SCRIPT, rate_limit=False) as srv:
        yield srv


class Helpers:
    """The shared helpers (``tests/support.py``) with this area's script, handed out as the
    ``h`` fixture (importlib mode has no conftest imports)."""

    script = SCRIPT
    script_words = support.words_of(SCRIPT)
    TIMING = support.TIMING
    tone_wav = staticmethod(support.tone_wav)
    open_fds = staticmethod(support.open_fds)
    wait_until = staticmethod(support.wait_until)

    @staticmethod
    def livetx_threads() -> list[str]:
        """The package's threads but for those of the servers the tests run (the ``server``
        fixture lives for the whole test): a session must leave none of its own."""
        return support.livetx_threads(exclude=support.SERVER_THREADS)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
