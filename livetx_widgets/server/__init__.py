"""``livetx serve``: a local server that speaks Deepgram's and AssemblyAI's streaming protocols.

Point any Deepgram or AssemblyAI client at it (``ws://127.0.0.1:PORT``; the client adds
``/v1/listen`` or ``/v3/ws``) to transcribe offline (``engine="whisper"``) or to get exactly
scripted results (``engine="script"``), with faults injected on demand::

    from livetx_widgets.server import Faults, LocalServer

    with LocalServer(engine="script", faults=Faults(drop_after_frames=20, connections=1)) as srv:
        ...  # connect to srv.url; inspect srv.sessions

It is an independent implementation of the wire protocols (written from their documentation,
never from this package's client codecs) so that it can catch the client's mistakes.

The names below are imported on first access (PEP 562), so that importing one submodule
(``livetx --help`` reads ``server.faults``' flags) does not need websockets, which only the
server extra installs.
"""

from __future__ import annotations

from ..lazy import lazy_exports

# name -> submodule that defines it; resolved on first access.
_LAZY = {
    "ENGINE_NAMES": ".engines",
    "Engine": ".engine",
    "EngineResult": ".engine",
    "EngineStream": ".engine",
    "EngineWord": ".engine",
    "Faults": ".faults",
    "LivetxServer": ".app",
    "LocalServer": ".local",
    "ScriptEngine": ".script_engine",
    "ServerOptions": ".context",
    "SessionRecord": ".records",
    "Trigger": ".faults",
    "load_script": ".script_engine",
    "make_engine": ".engines",
    "timecode_pcm": ".script_engine",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
