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

The browser microphone (``source="browser"``): the page captures (``static/capture.js``) and
sends numbered ~100 ms chunks as custom messages with a binary buffer; the kernel queues them
in a ``BrowserMicrophone`` (which fills holes with silence and drops repeats, see
``audio/browser.py``). The exchange:

* Start clicked with the browser source: the page starts capturing *inside the click* (the
  browser only lets a page start audio from a user gesture), names this capture with a fresh
  id and sends ``{"type": "start", "capture": id}``; the kernel starts the session bound to
  that id and answers ``{"type": "start-result", "capture": id, "ok": ...}`` (not ok: the page
  stops capturing; the error is in the widget). ``w.start()`` from code sends
  ``{"type": "capture"}`` instead and binds to the first capture whose audio arrives (a page
  that has been clicked before may start audio without a new click); audio of any other
  capture gets ``{"type": "capture-stop", "capture": id}``.
* ``{"type": "audio", "capture", "seq", "offset", "samples", "capturedAt", "last"}`` + PCM.
  While a cell runs, the kernel reads no widget message, so chunks wait in the channel and
  arrive as a burst afterwards: each lands at its own offset, so its timestamps are those of
  when it was spoken. The flusher reports ``capture_stats`` (the highest ``seq`` received:
  the page's ack, and the kernel's queue) at most 20 times a second; the page adds the audio
  it sent but is not acknowledged and shows "kernel busy: N s of audio waiting".
* Stop clicked: the page flushes its last chunk, then sends ``stop``; the kernel ends the
  source (what is queued is still transcribed) and the session ends when it is drained.
* ``{"type": "capture-error", "message"}``: the page's capture broke (permission revoked,
  device unplugged); the session ends with an ``AudioDeviceError`` carrying that message.
* ``{"type": "view-gone", "capture": id}``: the view that captured was removed (its cell
  re-run or cleared, the notebook closed); the kernel ends that capture's source, so the
  session transcribes what it received and ends normally. A page that vanishes without a
  word (a closed tab, a lost network) is noticed by the flusher instead: no audio for
  ``PAGE_GONE_S`` while no cell was running ends the source the same way (a running cell
  holds the page's messages back, so silence then proves nothing).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..audio import AudioSource, BrowserMicrophone, Microphone, WavFile, list_devices
from ..credentials import KEY_ENV as _KEY_ENV
from ..errors import AudioDeviceError, ConfigurationError, LivetxError, SessionStateError
from ..session import SessionMetadata, TranscriptionSession
from ..transcript import Transcript
from .choices import (
    MODEL_OPTION,
    SOURCE_WORDS,
    check_provider,
    env_key,
    models_for,
    reject_unknown_kwargs,
)
from .updater import STATUS_TEXT, Updater
from .wire import plain_error

_STATIC = Path(__file__).parent / "static"
#: Largest audio message accepted: one second of 16 kHz s16le (the page sends 100 ms).
_MAX_AUDIO_MSG_BYTES = 16000 * 2
#: A browser capture that sent nothing for this long, with the kernel idle, has gone away.
PAGE_GONE_S = 10.0
_PARAMETERS = (
    "provider", "model", "source", "device", "file", "realtime", "api_key", "url", "options",
    "local_engine", "local_options", "max_rows", "stop_timeout",
)  # fmt: skip


class LiveTranscriber(anywidget.AnyWidget):
    """Live speech transcription in a notebook cell: choose, Start, speak, Stop.

    Args (keyword only; a misspelled name raises ``TypeError`` naming the closest one):
        provider: ``"auto"`` (the provider whose key is set, else the offline engine),
            ``"deepgram"``, ``"assemblyai"`` or ``"local"`` (the offline engine of
            ``livetx serve``, started in the background).
        model: the provider's model (Deepgram ``model``, AssemblyAI ``speech_model``).
        source: ``"auto"`` (the kernel's microphone when it has one, else the browser's),
            ``"kernel"``, ``"browser"``, ``"file"`` (with ``file=``), a WAV path, or any
            ``AudioSource`` object, used as is.
        device: the kernel microphone: an index or part of a name (``None``: the default).
        file: the WAV file for ``source="file"`` (any rate or channel count).
        realtime: play a file at the pace of speech (``True``) or as fast as the provider
            accepts (``False``, for batch runs).
        api_key: the provider's key; by default ``DEEPGRAM_API_KEY``/``ASSEMBLYAI_API_KEY``.
        url: another endpoint, e.g. a ``livetx serve`` at ``ws://127.0.0.1:8765``.
        options: provider connection options, e.g. ``{"diarize": True}``.
        local_engine / local_options: the offline engine (``"whisper"``, or ``"script"``
            with ``local_options={"script": ...}`` for deterministic demos and tests).
        max_rows: transcript rows a view keeps (older ones are summarised as a count).
        stop_timeout: seconds Stop waits for the provider's last results.

    ``start()`` returns at once; the notebook stays usable while it records. Each Start
    begins a new session with a fresh transcript; earlier ones stay in ``sessions``.
    """

    # anywidget serves a widget as ONE module, so capture.js (which imports nothing and
    # keeps its top-level names distinct) is put in front of widget.js as text.
    _esm = (_STATIC / "capture.js").read_text() + "\n" + (_STATIC / "widget.js").read_text()
    _css = _STATIC / "widget.css"

    # State shown by the front end: small values only (see the module docstring).
    status = traitlets.Unicode("idle").tag(sync=True)
    status_text = traitlets.Unicode(STATUS_TEXT["idle"]).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    run = traitlets.Int(0).tag(sync=True)
    session_id = traitlets.Unicode("").tag(sync=True)
    elapsed = traitlets.Float(0.0).tag(sync=True)
    level = traitlets.Float(0.0).tag(sync=True)
    progress = traitlets.Float(-1.0).tag(sync=True)
    time_left = traitlets.Float(0.0).tag(sync=True)
    partial = traitlets.Unicode("").tag(sync=True)
    n_finals = traitlets.Int(0).tag(sync=True)
    n_partials = traitlets.Int(0).tag(sync=True)
    n_warnings = traitlets.Int(0).tag(sync=True)  # malformed/unknown provider messages
    last_warning = traitlets.Unicode("").tag(sync=True)
    # Browser microphone: the capture the kernel listens to, its ack and queue (see above).
    capture_stats = traitlets.Dict().tag(sync=True)
    # Choices the user makes in the front end.
    provider = traitlets.Unicode("auto").tag(sync=True)
    model = traitlets.Unicode("").tag(sync=True)
    models = traitlets.List(traitlets.Unicode()).tag(sync=True)
    source_kind = traitlets.Unicode("kernel").tag(sync=True)
    source_label = traitlets.Unicode("").tag(sync=True)
    file = traitlets.Unicode("").tag(sync=True)
    devices = traitlets.List(traitlets.Dict()).tag(sync=True)
    device = traitlets.Int(-1).tag(sync=True)
    needs_key = traitlets.Bool(False).tag(sync=True)
    key_env = traitlets.Unicode("").tag(sync=True)
    max_rows = traitlets.Int(200).tag(sync=True)

    def __init__(
        self,
        *,
        provider: str = "auto",
        model: str | None = None,
        source: AudioSource | str | os.PathLike = "auto",
        device: int | str | None = None,
        file: str | os.PathLike | None = None,
        realtime: bool = True,
        api_key: str | None = None,
        url: str | None = None,
        options: Mapping[str, Any] | None = None,
        local_engine: str = "whisper",
        local_options: Mapping[str, Any] | None = None,
        max_rows: int = 200,
        stop_timeout: float = 10.0,
        **unexpected: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, unexpected, _PARAMETERS)
        provider = check_provider(provider)
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigurationError(f"max_rows must be a positive int, got {max_rows!r}")
        # Private, never synced: keys by provider, the custom source, session objects.
        self._keys: dict[str, str] = {}
        if api_key:
            if provider not in _KEY_ENV:
                raise ConfigurationError(
                    'api_key= needs provider="deepgram" or provider="assemblyai" '
                    "(with auto or local there is no way to tell which service it is for)."
                )
            self._keys[provider] = str(api_key)
        self._url = url
        self._options = dict(options or {})
        self._local_engine = local_engine
        self._local_options = dict(local_options or {})
        self._realtime = bool(realtime)
        self._stop_timeout = float(stop_timeout)
        self._custom_source: AudioSource | None = None
        self._browser_source: BrowserMicrophone | None = None
        self._capture: str | None = None  # the page capture the current session listens to
        self._device_arg: int | str | None = device
        self._session: TranscriptionSession | None = None
        self._start_error: LivetxError | None = None
        self._sessions: list[TranscriptionSession] = []
        self._empty = Transcript(provider=provider)
        self._updater = Updater(self)
        kind, path = _source_kind(source, file)
        if isinstance(source, BrowserMicrophone):
            kind, self._browser_source = "browser", source
        elif kind == "custom":
            self._custom_source = source  # type: ignore[assignment]
        super().__init__(max_rows=max_rows, file=path)
        # Observed traits are set after construction so their observers run in order.
        self.provider = provider
        self._provider_changed({"new": provider})
        if model:
            self.model = str(model)
        if kind in ("auto", "kernel"):
            self._refresh_devices()
            if kind == "auto":
                kind = "kernel" if self.devices else "browser"
        self.source_label = repr(source) if kind == "custom" else ""
        self.source_kind = kind
        self.on_msg(self._on_front_end_msg)
        _keep_front_end_route(self.comm)
        _CELLS.install()
        # Collected without close() (ipywidgets' weak references): end the sessions anyway.
        weakref.finalize(self, _end_sessions, self._sessions, self._stop_timeout)

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
        meta = self._session.metadata
        source = self._session.source
        if isinstance(source, BrowserMicrophone):
            # What the page's channel did: chunks, holes filled with silence, repeats, lateness.
            meta.raw["browser"] = source.stats()
            meta.dropped_audio_s += source.dropped_s
        return meta

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
        source = session.source
        if isinstance(source, BrowserMicrophone) and session.running:
            source.end()
            self._updater.apply(status="stopping", status_text=STATUS_TEXT["stopping"])
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

    def close(self) -> None:
        """Stop any session (within ``stop_timeout``), then close the widget."""
        session = getattr(self, "_session", None)  # None if __init__ failed half way
        if session is not None and session.running:
            session.stop(self._stop_timeout)
        updater = getattr(self, "_updater", None)
        if updater is not None:
            updater.join(self._stop_timeout)
        _RUNNING.discard(self)
        super().close()

    def __repr__(self) -> str:
        return (
            f"LiveTranscriber(provider={self.provider!r}, source={self.source_kind!r}, "
            f"status={self.status!r}, segments={len(self.transcript)})"
        )

    # -- starting -------------------------------------------------------------------------
    def _start(self, capture: str | None = None) -> LivetxError | None:
        """Start a session; returns (and shows) the local error that prevented it.

        ``capture``: the id of the page capture that feeds a browser-microphone session
        (``None``: the first capture whose audio arrives).
        """
        if self._session is not None and self._session.running:
            return None
        self._updater.join()  # the previous session's flusher has ended; reap it
        self._start_error = None
        self._capture = capture
        try:
            session = self._new_session()
        except LivetxError as exc:
            self._start_error = exc
            self._show_error(exc)
            return exc
        self._session = session
        self._sessions.append(session)
        self._updater.attach(session, self.run + 1, connecting_text=self._connecting_text())
        self._updater.apply(
            run=self.run + 1, status="connecting", status_text=self._connecting_text(),
            error="", notice="", running=True, session_id="", elapsed=0.0, level=0.0,
            partial="", n_finals=0, n_partials=0, capture_stats={},
            progress=0.0 if session.source.duration_s and not session.source.live else -1.0,
            time_left=float(session.source.duration_s or 0.0),
        )  # fmt: skip
        try:
            session.start()
        except LivetxError as exc:
            self._show_error(exc)
            return exc
        self._updater.begin()
        _RUNNING.add(self)
        if isinstance(session.source, BrowserMicrophone) and capture is None:
            self._updater.send({"type": "capture", "run": self.run})  # started from code
        return None

    def _new_session(self) -> TranscriptionSession:
        provider = self.provider
        if self.needs_key:
            raise ConfigurationError(
                f"No API key for {provider}: paste it in the key field (it stays in this "
                f"kernel's memory only) or set {_KEY_ENV[provider]}, then press Start."
            )
        options = dict(self._options)
        name = MODEL_OPTION.get(provider)
        if name and self.model and name not in options:
            options[name] = self.model
        return TranscriptionSession(
            provider,
            source=self._make_source(),
            api_key=self._keys.get(provider),
            url=self._url,
            options=options,
            local_engine=self._local_engine,
            local_options=self._local_options,
            stop_timeout=self._stop_timeout,
            **self._updater.listeners(),
        )

    def _make_source(self) -> AudioSource:
        kind = self.source_kind
        if kind == "custom" and self._custom_source is not None:
            return self._custom_source
        if kind == "file":
            if not self.file:
                raise ConfigurationError("Choose a WAV file first (type its path in the box).")
            return WavFile(self.file, realtime=self._realtime)
        if kind == "kernel":
            device = self._device_arg
            if self.device >= 0:
                device = self.device
            return Microphone(device)
        if kind == "browser":
            return (
                self._browser_source if self._browser_source is not None else (BrowserMicrophone())
            )
        raise ConfigurationError(f"Unknown source {kind!r}.")

    def _connecting_text(self) -> str:
        if self.provider == "local" or (self.provider == "auto" and not self._any_key()):
            return "Starting the offline engine…"
        return "Connecting…"

    def _show_error(self, error: BaseException) -> None:
        self._updater.apply(
            status="error", status_text=STATUS_TEXT["error"], running=False,
            error=plain_error(error, self._secrets()), level=0.0,
        )  # fmt: skip

    # -- keys -----------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        """Every key this widget could use (to mask them out of anything shown)."""
        keys = list(self._keys.values())
        keys += [k for k in (env_key(p) for p in _KEY_ENV) if k]
        return keys

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
    def set_state(self, sync_data: dict) -> None:
        """A trait changed in the front end: apply it under the updater's lock."""
        with self._updater.lock:
            super().set_state(sync_data)

    @traitlets.observe("provider")
    def _provider_changed(self, change: dict) -> None:
        provider = check_provider(change["new"])
        models = models_for(provider)
        model = self.model if self.model in models else (models[0] if models else "")
        self._updater.apply(models=models, model=model)
        self._refresh_key_state()

    @traitlets.observe("source_kind")
    def _source_kind_changed(self, change: dict) -> None:
        if change["new"] == "kernel" and not self.devices:
            self._refresh_devices()

    @traitlets.observe("device")
    def _device_changed(self, change: dict) -> None:
        self._device_arg = None if change["new"] < 0 else change["new"]

    def _on_front_end_msg(self, _widget: Any, content: Any, buffers: list) -> None:
        """Actions from the front end. Runs on the kernel's thread; never blocks for long."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "hello":
            self._updater.send(self._updater.tail_message(self.max_rows))
        elif kind == "start":
            capture = content.get("capture")
            capture = capture if isinstance(capture, str) and capture else None
            error = self._start(capture)  # errors are shown in the widget, not raised
            session = self._session
            ok = error is None and session is not None and session.running
            if capture is not None:
                self._updater.send({"type": "start-result", "capture": capture, "ok": ok})
        elif kind == "stop":
            self._request_stop()
        elif kind == "capture-error":
            self._on_capture_error(content)
        elif kind == "view-gone":
            self._on_view_gone(content)
        elif kind in ("pause", "resume"):
            # A click can race the session's own end (a file finishing): nothing to do then.
            with contextlib.suppress(SessionStateError):
                self.pause() if kind == "pause" else self.resume()
        elif kind == "key":
            self._set_key(content.get("value"))
        elif kind == "devices":
            self._refresh_devices()
        elif kind == "audio":
            self._on_browser_audio(content, buffers)

    def _request_stop(self) -> None:
        """Stop button: end the session; a browser source is drained first (nothing lost)."""
        session = self._session
        if session is None or not session.running:
            return
        source = session.source
        if isinstance(source, BrowserMicrophone):
            # The page sent its last chunk before this message (one ordered channel): end
            # the source; the session reads what is queued, then closes by itself.
            source.end()
            self._updater.apply(status="stopping", status_text=STATUS_TEXT["stopping"])
        else:
            session.request_stop(self._stop_timeout)  # the flusher sees the end

    def _browser_source_for(self, capture: Any) -> BrowserMicrophone | None:
        """The running session's BrowserMicrophone if ``capture`` feeds it, else ``None``."""
        session = self._session
        source = session.source if session is not None else None
        if not isinstance(source, BrowserMicrophone) or not session.running:
            return None
        if not isinstance(capture, str) or not capture:
            return None
        if self._capture is None:
            self._capture = capture  # started from code: the first capture that speaks
        if capture != self._capture:
            self._updater.send({"type": "capture-stop", "capture": capture})
            return None
        return source

    def _on_browser_audio(self, content: dict, buffers: list) -> None:
        """A numbered chunk of 16 kHz s16le audio from the page, for the BrowserMicrophone.

        Chunks of a capture the session does not listen to are refused (the page is told to
        stop). Malformed messages are ignored: they come from our own front end.
        """
        source = self._browser_source_for(content.get("capture"))
        if source is None or not buffers:
            return
        seq, offset = content.get("seq"), content.get("offset")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            return
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            offset = None
        captured = content.get("capturedAt")
        captured_at = captured / 1000.0 if isinstance(captured, (int, float)) else None
        pcm = buffers[0]
        if len(pcm) > _MAX_AUDIO_MSG_BYTES:
            return
        source.receive(pcm, seq=seq, offset=offset, captured_at=captured_at)

    def _on_view_gone(self, content: dict) -> None:
        """The capturing view was removed: end its source; what was received is kept."""
        source = self._browser_source_for(content.get("capture"))
        if source is not None:
            self._end_gone_capture(source, "The view that recorded was closed")

    def _end_gone_capture(self, source: BrowserMicrophone, why: str) -> None:
        source.end()
        self._updater.apply(notice=f"{why}; the session ended with the audio it had received.")

    def check_page(self, now: float) -> None:
        """Called by the flusher: end a browser capture whose page has gone silent.

        A live page sends a chunk every 100 ms. No chunk for ``PAGE_GONE_S`` while the
        kernel was idle all that time means the page is gone (a closed tab, a lost
        network): without this the session would stay live on KeepAlive for ever.
        """
        session = self._session
        source = session.source if session is not None else None
        if not isinstance(source, BrowserMicrophone) or not session.running:
            return
        if source.ended or _CELLS.busy:
            return
        quiet_since = max(source.last_received_at, _CELLS.idle_since)
        if now - quiet_since >= PAGE_GONE_S:
            self._end_gone_capture(
                source, f"The page sent no audio for {PAGE_GONE_S:.0f} s (closed or offline?)"
            )

    def _on_capture_error(self, content: dict) -> None:
        """The page's capture broke: end the session with that message (plain words)."""
        source = self._browser_source_for(content.get("capture"))
        message = content.get("message")
        if source is not None and isinstance(message, str) and message:
            source.fail(message[:500])


# Widgets whose session may still run. When the kernel shuts down (restart, "Shut Down
# Kernel"), the interpreter joins every non-daemon thread before ``atexit`` handlers run, so a
# session on a live microphone would hold the kernel until it is killed. This hook runs before
# that join (the one concurrent.futures uses) and stops those sessions without waiting.
_RUNNING: weakref.WeakSet[LiveTranscriber] = weakref.WeakSet()


def _stop_sessions_at_exit() -> None:
    for widget in list(_RUNNING):
        session = widget._session
        if session is not None and session.running:
            with contextlib.suppress(Exception):
                session.stop(timeout=0.0)
                widget._updater.join(5.0)


_register_atexit = getattr(threading, "_register_atexit", None)
if _register_atexit is not None:  # CPython >= 3.9
    _register_atexit(_stop_sessions_at_exit)


def _end_sessions(sessions: list[TranscriptionSession], timeout: float) -> None:
    """A widget was garbage-collected: ask its running sessions to stop (never blocks)."""
    for session in sessions:
        if session.running:
            with contextlib.suppress(Exception):
                session.request_stop(timeout)


class _CellClock:
    """Whether the kernel is running a cell, from IPython's pre/post_run_cell events.

    While a cell runs (and the front end has no kernel subshells) the page's messages wait
    in the channel, so a quiet browser capture is only suspicious while the kernel is idle.
    Outside IPython there are no cells: always idle.
    """

    def __init__(self) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None or not hasattr(shell, "events"):
            return
        shell.events.register("pre_run_cell", self._pre)
        shell.events.register("post_run_cell", self._post)

    def _pre(self, *_args: Any) -> None:
        self.busy = True

    def _post(self, *_args: Any) -> None:
        self.busy = False
        self.idle_since = time.monotonic()


_CELLS = _CellClock()


def _keep_front_end_route(comm: Any) -> None:
    """Handle this widget's messages where the front end sends them (ipykernel >= 7).

    JupyterLab >= 4.4 sends each widget's messages on a kernel *subshell* (its own thread),
    so they are handled while a cell runs. But ipykernel 7.4 re-routes a comm's incoming
    messages to the subshell its last *outgoing* message came from, and this widget's
    updates come from the flusher thread, whose parent is the main shell: measured, the
    browser's audio then alternated between the main shell (held back by a running cell)
    and the subshell, and arrived out of order. Keeping the front end's choice makes the
    audio flow during a busy cell wherever subshells exist; elsewhere (ipykernel 6, front
    ends without subshells) it waits for the cell and arrives as a burst, which the
    BrowserMicrophone puts back in order either way.
    """
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = lambda _data, default: default


def _source_kind(source: Any, file: Any) -> tuple[str, str]:
    """``source=``/``file=`` -> (kind, file path): auto, kernel, browser, file or custom."""
    path = os.fspath(file) if file is not None else ""
    if isinstance(source, AudioSource):
        return "custom", path
    if isinstance(source, os.PathLike):
        return "file", os.fspath(source)
    if isinstance(source, str):
        if source in SOURCE_WORDS:
            if source == "file" and not path:
                raise ConfigurationError('source="file" needs file="path/to/audio.wav".')
            return source, path
        if source.lower().endswith(".wav") or os.sep in source:
            return "file", source
        raise ConfigurationError(
            f"Unknown source {source!r}. Use one of {', '.join(SOURCE_WORDS)}, a WAV file path "
            "or an AudioSource (Microphone, WavFile, ArraySource, BrowserMicrophone)."
        )
    raise ConfigurationError(
        f"source must be a word ({', '.join(SOURCE_WORDS)}), a WAV path or an AudioSource, "
        f"not {type(source).__name__}."
    )
