"""``livetx serve``: a local server that speaks Deepgram's and AssemblyAI's streaming protocols.

Point any Deepgram or AssemblyAI client at it (``ws://127.0.0.1:PORT``; the client adds
``/v1/listen`` or ``/v3/ws``) to transcribe offline (``engine="whisper"``) or to get exactly
scripted results (``engine="script"``), with faults injected on demand::

    from livetx_widgets.server import Faults, LocalServer

    with LocalServer(engine="script", faults=Faults(drop_after_frames=20, connections=1)) as srv:
        ...  # connect to srv.url; inspect srv.sessions

It is an independent implementation of the wire protocols (written from their documentation,
never from this package's client codecs) so that it can catch the client's mistakes.
"""

from __future__ import annotations

from .app import LivetxServer
from .context import ServerOptions
from .engine import Engine, EngineResult, EngineStream, EngineWord
from .engines import ENGINE_NAMES, make_engine
from .faults import Faults, Trigger
from .local import LocalServer
from .records import SessionRecord
from .script_engine import ScriptEngine, load_script, timecode_pcm

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineResult",
    "EngineStream",
    "EngineWord",
    "Faults",
    "LivetxServer",
    "LocalServer",
    "ScriptEngine",
    "ServerOptions",
    "SessionRecord",
    "Trigger",
    "load_script",
    "make_engine",
    "timecode_pcm",
]
