"""``LiveTranscriber``: live transcription as a notebook widget (anywidget).

The widget is a thin shell around :class:`~livetx_widgets.session.TranscriptionSession`: the
session streams and keeps the transcript; the widget shows it. State the front end needs is a
handful of small synced traits (status, elapsed time, level, partial text, menus); finals go
out as custom messages carrying only new segments, and a view that renders asks for the last
``max_rows`` (see ``wire.py``), so nothing sent grows with the transcript and the transcript
is not stored in the notebook file. Every change to the widget goes through one ``Updater``
(see ``updater.py``), which batches and throttles them from one flusher thread.

API keys live in a private dict, never in a trait: they cannot reach the front end, the saved
notebook, the repr or a log. When the chosen provider has no key, the front end shows a
password field whose value comes to the kernel as a custom message and is cleared at once.

The browser microphone (``source="browser"``): the page captures and sends numbered chunks;
the exchange with the page is in ``browser_link.py``.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from typing import Any

import numpy as np
import traitlets

from ..audio import AudioSource, BrowserMicrophone, list_devices
from ..audio.resolve import make_source, source_kind
from ..config import LISTENERS, check_provider
from ..config import resolve as resolve_config
from ..config import signature as config_signature
from ..credentials import KEY_ENV as _KEY_ENV
from ..errors import (
    AudioDeviceError,
    ConfigurationError,
    LivetxError,
    SegmentNotFoundError,
    SessionStateError,
)
from ..session import SessionMetadata, TranscriptionSession
from ..transcript import Transcript
from .assets import BUILT, STATIC, asset
from .browser_link import BrowserLink
from .choices import env_key, models_for
from .playback import audio as _audio_display
from .playback import clip_reply
from .shell import (  # _RUNNING, _keep_front_end_route: tests reach them through this module
    _RUNNING,  # noqa: F401
    WidgetShell,
    _end_all,
    _keep_front_end_route,  # noqa: F401
    check_max_rows,
)
from .updater import STATUS_TEXT, Updater
from .wire import plain_error


class LiveTranscriber(WidgetShell):
    """Live speech transcription in a notebook cell: choose, Start, speak, Stop.

    Takes the same keyword arguments as ``TranscriptionSession`` (one table:
    ``livetx_widgets.config.PARAMS``; a misspelled name raises ``TypeError`` naming the
    closest one), plus ``max_rows``, the transcript rows a view keeps. ``source="auto"`` is
    the kernel's microphone when it has one, else the browser's. Listeners (``on_final``,
    ...) are attached to every session the widget starts; ``keyterms`` can be edited in the
    widget while it records (``update()``).

    ``start()`` returns at once; the notebook stays usable while it records. Each Start
    begins a new session with a fresh transcript; earlier ones stay in ``sessions``.

    Playback: clicking a transcript row plays its audio in the page; ``play(segment_id)``
    returns it as an ``IPython.display.Audio``. The audio is the session's kept audio
    (``keep_audio``): only the current (last) session's is kept, a new Start releases the
    previous one's.
    """

    # One module built from capture.js + host.js + widget.js (assets.py); its text, or a
    # watched file under hot reload (see assets.py: a watched file kept every instance alive).
    _esm = asset(BUILT)
    _css = asset(STATIC / "widget.css")

    # State shown by the front end: small values only (see the module docstring); those both
    # widgets show (status, error, notice, running, run, elapsed, progress, n_partials,
    # source_kind, source_label, capture_stats, max_rows) are WidgetShell's (shell.py).
    session_id = traitlets.Unicode("").tag(sync=True)
    level = traitlets.Float(0.0).tag(sync=True)
    time_left = traitlets.Float(0.0).tag(sync=True)
    partial = traitlets.Unicode("").tag(sync=True)
    n_finals = traitlets.Int(0).tag(sync=True)
    keyterms = traitlets.Unicode("").tag(sync=True)  # comma-separated, editable while live
    n_warnings = traitlets.Int(0).tag(sync=True)  # malformed/unknown provider messages
    last_warning = traitlets.Unicode("").tag(sync=True)
    # Choices the user makes in the front end.
    provider = traitlets.Unicode("auto").tag(sync=True)
    model = traitlets.Unicode("").tag(sync=True)
    models = traitlets.List(traitlets.Unicode()).tag(sync=True)
    file = traitlets.Unicode("").tag(sync=True)
    devices = traitlets.List(traitlets.Dict()).tag(sync=True)
    device = traitlets.Int(-1).tag(sync=True)
    needs_key = traitlets.Bool(False).tag(sync=True)
    key_env = traitlets.Unicode("").tag(sync=True)

    def __init__(self, provider: str = "auto", /, *, max_rows: int = 200, **config: Any):
        self.config = cfg = resolve_config(
            type(self).__name__, {"provider": provider, **config}, extra=("max_rows",)
        )
        provider = cfg.provider
        check_max_rows(max_rows)
        # Private, never synced: keys by provider, the custom source, session objects.
        self._keys: dict[str, str] = {}
        if cfg.api_key:
            if provider not in _KEY_ENV:
                raise ConfigurationError(
                    'api_key= needs provider="deepgram" or provider="assemblyai" '
                    "(with auto or local there is no way to tell which service it is for)."
                )
            self._keys[provider] = cfg.api_key
        self._url = cfg.url
        self._stop_timeout = cfg.stop_timeout
        self._custom_source: AudioSource | None = None
        self._browser_source: BrowserMicrophone | None = None
        self._link = BrowserLink(self)  # the page's microphone: capture messages
        self._device_arg: int | str | None = cfg.device
        self._session: TranscriptionSession | None = None
        self._start_error: LivetxError | None = None
        self._sessions: list[TranscriptionSession] = []
        self._empty = Transcript(provider=provider)
        self._updater = Updater(self)
        source = cfg.source
        kind, path = source_kind(source, cfg.file)
        if isinstance(source, BrowserMicrophone):
            kind, self._browser_source = "browser", source
        elif kind == "custom":
            self._custom_source = source  # type: ignore[assignment]
        super().__init__(max_rows=max_rows, file=path, keyterms=", ".join(cfg.keyterms))
        # Observed traits are set after construction so their observers run in order.
        self.provider = provider
        self._provider_changed({"new": provider})
        if cfg.model:
            self.model = cfg.model
        if kind in ("auto", "kernel"):
            self._refresh_devices()
            if kind == "auto":
                kind = "kernel" if self.devices else "browser"
        self.source_label = _describe(source) if kind == "custom" else ""
        self.source_kind = kind
        # Collected without close(), or its marimo cell re-run: the sessions end (shell.py).
        self._session_refs = self._connect_front_end(self._sessions)

    # -- public API -----------------------------------------------------------------------
    @property
    def session(self) -> TranscriptionSession | None:
        """The current (or last) session, ``None`` before the first Start."""
        return self._session

    @property
    def sessions(self) -> list[TranscriptionSession]:
        """Every session this widget started, oldest first."""
        return list(self._sessions)

    @property
    def last_error(self) -> LivetxError | None:
        """The error that ended (or prevented) the last Start, typed; ``None`` if none.

        A session's own error is also in ``session.error``; an error that prevented the
        session from being created at all (no key, a missing file) is only here.
        """
        if self._start_error is not None:
            return self._start_error
        return self._session.error if self._session is not None else None

    @property
    def transcript(self) -> Transcript:
        """The current (or last) session's transcript; an empty one before any Start."""
        return self._session.transcript if self._session is not None else self._empty

    @property
    def metadata(self) -> SessionMetadata:
        """A snapshot of the current (or last) session's metadata."""
        if self._session is None:
            return SessionMetadata(provider=self.provider, model=self.model)
        return self._session.metadata

    def play(self, segment_id: int, *, autoplay: bool = False):
        """The audio of segment ``segment_id`` of the current (or last) session, exactly as
        sent, as an ``IPython.display.Audio`` (a player when it ends a cell).

        Raises what ``TranscriptionSession.segment_audio`` raises (``SegmentNotFoundError``,
        ``AudioNotKeptError``, ``AudioDroppedError``).
        """
        session = self._session
        if session is None:
            raise SegmentNotFoundError(
                f"No segment {segment_id!r}: this widget has not recorded anything yet."
            )
        return _audio_display(session.segment_audio(segment_id), autoplay=autoplay)

    def to_dataframe(self):
        """``transcript.to_dataframe()``: one row per final segment (a snapshot while live)."""
        return self.transcript.to_dataframe()

    def start(self) -> None:
        """Start a new session and return at once (Start button).

        Local problems (no microphone, a missing file, no API key) are shown in the widget
        *and* raised here, so a script notices them; the Start button only shows them.
        Remote problems (a refused key, a lost connection) arrive later, in the widget and
        in ``session.error``. Starting while recording does nothing. Returns ``None`` so
        that ``w.start()`` at the end of a cell does not display the widget a second time.
        """
        error = self._start()
        if error is not None:
            raise error

    def stop(self, timeout: float | None = None) -> Transcript:
        """End the session gracefully (Stop button), wait for it, return its transcript.

        The whole call takes at most ``timeout`` seconds (default ``stop_timeout``), like
        ``TranscriptionSession.stop``. A browser microphone's queue (audio the page already
        delivered, a backlog included) is transcribed first, within that time; audio the
        page sends while this very cell runs waits behind it and is not included. Never
        raises for remote faults; they are in ``session.error`` and in the widget.
        """
        session = self._session
        if session is None:
            return self.transcript
        timeout = self._stop_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + timeout
        if self._link.drain(STATUS_TEXT["stopping"]):
            session.wait(timeout)
        session.stop(max(0.0, deadline - time.monotonic()))
        self._updater.join(max(0.5, deadline - time.monotonic()))
        return session.transcript

    def pause(self) -> None:
        """Stop sending audio without ending the session (Pause button).

        Does nothing when no session is recording (as the button is then disabled); a
        session that is already stopping cannot be paused and says so.
        """
        if self._session is not None and self._session.running:
            self._session.pause()

    def resume(self) -> None:
        if self._session is not None and self._session.running:
            self._session.resume()

    def finalize(self) -> bool:
        """Ask the provider to commit what it heard so far now ("Finalize now" button)."""
        if self._session is None or not self._session.running:
            return False
        return self._session.finalize()

    def update(self, **changes: Any) -> None:
        """Change settings of the running session (and of the next ones), e.g.
        ``update(keyterms=["Kubernetes"])``: see ``TranscriptionSession.update``."""
        if "keyterms" in changes:
            self.keyterms = ", ".join(changes.pop("keyterms") or ())  # observed: sends it
        if changes and self._session is not None and self._session.running:
            self._session.update(**changes)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session ends by itself (a file source); True if it has.

        For headless notebooks: ``w.start(); w.wait(60)``. The widget is up to date when
        this returns True.
        """
        session = self._session
        if session is None:
            return True
        if not session.wait(timeout):
            return False
        return self._updater.join(timeout)

    def _ran(self) -> list[TranscriptionSession]:  # closed with the widget (shell.py)
        return getattr(self, "_sessions", [])

    def __repr__(self) -> str:
        return (
            f"LiveTranscriber(provider={self.provider!r}, source={self.source_kind!r}, "
            f"status={self.status!r}, segments={len(self.transcript)})"
        )

    # -- starting (WidgetShell._start) ---------------------------------------------------
    def _new_run(self) -> TranscriptionSession:
        return self._new_session()

    def _keep(self, session: TranscriptionSession) -> None:
        self._session = session
        self._sessions.append(session)
        self._session_refs.add(session)

    def _follow(self, session: TranscriptionSession, run: int) -> dict[str, Any]:
        """Attach the updater (before ``start()``: no status is missed); the traits a new
        session resets besides those every run does."""
        self._updater.attach(session, run, connecting_text=self._connecting_text())
        return {
            "status_text": self._connecting_text(), "session_id": "", "level": 0.0,
            "partial": "", "n_finals": 0, "time_left": float(session.source.duration_s or 0.0),
        }  # fmt: skip

    def _new_session(self) -> TranscriptionSession:
        provider = self.provider
        if self.needs_key:
            raise ConfigurationError(
                f"No API key for {provider}: paste it in the key field (it stays in this "
                f"kernel's memory only) or set {_KEY_ENV[provider]}, then press Start."
            )
        session = TranscriptionSession(
            provider,
            **{
                **self.config.values,
                "provider": provider,
                "model": self.model or None,
                "keyterms": _terms(self.keyterms),
                "source": self._make_source(),
                "api_key": self._keys.get(provider),
                "url": self._url,
                **{name: None for name in LISTENERS},
            },
        )
        for name, handler in {**self.config.listeners(), **self._updater.listeners()}.items():
            session.on(name.removeprefix("on_"), handler)
        return session

    def _make_source(self) -> AudioSource:
        kind = self.source_kind
        if kind == "browser" and self._browser_source is not None:
            return self._browser_source
        device = self._device_arg
        if kind == "kernel" and self.device >= 0:
            device = self.device
        return make_source(
            kind, custom=self._custom_source, file=self.file or None, device=device,
            realtime=self.config.realtime, browser_ok=True,
        )  # fmt: skip

    def _connecting_text(self) -> str:
        if self.provider == "local" or (self.provider == "auto" and not self._any_key()):
            return "Starting the offline engine…"
        return "Connecting…"

    # -- keys -----------------------------------------------------------------------------
    def _own_keys(self) -> list[str]:  # masked out of anything shown, with the env's
        return list(self._keys.values())

    def _any_key(self) -> bool:
        return any(self._keys.get(p) or env_key(p) for p in _KEY_ENV)

    def _refresh_key_state(self) -> None:
        provider = self.provider
        missing = (
            provider in _KEY_ENV
            and self._url is None
            and not self._keys.get(provider)
            and not env_key(provider)
        )
        self._updater.apply(needs_key=bool(missing), key_env=_KEY_ENV.get(provider, ""))

    def _set_key(self, value: Any) -> None:
        provider = self.provider
        key = value.strip() if isinstance(value, str) else ""
        if provider not in _KEY_ENV or not key:
            return
        self._keys[provider] = key
        self._refresh_key_state()
        self._updater.apply(
            notice="Key received. It is kept in this kernel's memory only.", error=""
        )

    # -- devices --------------------------------------------------------------------------
    def _refresh_devices(self) -> None:
        try:
            found = list_devices()
        except AudioDeviceError:
            found = []
        devices = [{"index": d.index, "name": d.name, "default": d.is_default} for d in found]
        self._updater.apply(devices=devices)
        if isinstance(self._device_arg, int):
            self._updater.apply(device=self._device_arg)
        elif isinstance(self._device_arg, str):
            wanted = self._device_arg.casefold()
            match = next((d["index"] for d in devices if wanted in d["name"].casefold()), -1)
            if match >= 0:  # else keep the name: Microphone() says what is available
                self._updater.apply(device=match)

    # -- front end ------------------------------------------------------------------------
    @traitlets.observe("provider")
    def _provider_changed(self, change: dict) -> None:
        provider = check_provider(change["new"])
        models = models_for(provider)
        model = self.model if self.model in models else (models[0] if models else "")
        self._updater.apply(models=models, model=model)
        self._refresh_key_state()

    @traitlets.observe("keyterms")
    def _keyterms_changed(self, change: dict) -> None:
        """Edited in the page while recording: send it to the provider now (never blocks)."""
        session = self._session
        if session is None or not session.running:
            return
        try:
            session.update(keyterms=_terms(change["new"]), wait=False)
        except LivetxError as exc:
            self._updater.apply(notice=plain_error(exc, self._secrets()))
        else:
            self._updater.apply(notice="Keyterms updated for this session.")

    @traitlets.observe("source_kind")
    def _source_kind_changed(self, change: dict) -> None:
        if change["new"] == "kernel" and not self.devices:
            self._refresh_devices()

    @traitlets.observe("device")
    def _device_changed(self, change: dict) -> None:
        self._device_arg = None if change["new"] < 0 else change["new"]

    def _other_msg(self, kind: Any, content: dict) -> None:
        """The page's actions only this widget has (the rest: ``WidgetShell``)."""
        if kind == "finalize":
            with contextlib.suppress(SessionStateError):
                self.finalize()
        elif kind == "key":
            self._set_key(content.get("value"))
        elif kind == "devices":
            self._refresh_devices()

    def _play_clip(self, content: dict) -> None:
        """A row was clicked: send that segment's audio to the page (see ``playback.py``)."""
        session = self._session if content.get("run") == self.run else None
        self._send_clip(*clip_reply(session, content, self._secrets()))

    def _request_stop(self) -> None:
        """Stop button: end the session; a browser source is drained first (nothing lost)."""
        session = self._session
        if session is None or not session.running:
            return
        if not self._link.drain(STATUS_TEXT["stopping"]):
            session.request_stop(self._stop_timeout)  # the flusher sees the end


# Kept here by its old name (tests reach it through this module).
_end_sessions = _end_all


def _describe(source: Any) -> str:
    """What the source menu shows for a source object (an array has no useful repr)."""
    if isinstance(source, np.ndarray):
        return f"array of {source.size / 16000:.1f} s"
    return repr(source)


def _terms(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


LiveTranscriber.__init__.__signature__ = config_signature(  # type: ignore[attr-defined]
    extra=[inspect.Parameter("max_rows", inspect.Parameter.KEYWORD_ONLY, default=200)]
)
