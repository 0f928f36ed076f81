"""``CompareTranscriber``: several providers side by side in one notebook cell (anywidget).

A thin shell around :class:`~livetx_widgets.compare.CompareSession`, built like
``LiveTranscriber`` so that whatever makes one work in a front end makes the other work too:
an anywidget whose ``_esm`` is built from ``static/`` (``host.js`` + ``compare.js``), a few small
synced traits, finals as custom messages carrying only new segments, a view that asks for the
last rows when it renders, and every change going through the one ``Updater`` flusher
(``CompareUpdater`` below only changes what a flush contains: one column per provider).

One column per provider (label, model, status, live partial, finals, its own error), one
scroll area for all of them (they scroll together), one Start/Stop for all. A provider that
fails shows why in its column while the others go on.

The browser's microphone (``source="browser"``, or a ``BrowserMicrophone``): the page captures
once (``capture.js``, the same capture code and the same messages as ``LiveTranscriber``'s,
handled by the same ``BrowserLink``) and the kernel feeds that one ``BrowserMicrophone`` through
the comparison's tee to every provider. The page asks the kernel to start only once the
microphone is granted, so a denied microphone shows its error and starts no session; Stop ends
the capture, then every provider transcribes what was queued and ends. A provider that fails
does not stop the capture: the tee goes on feeding the others.

Playback (``ui/playback.py``, shared with ``LiveTranscriber``): clicking a final asks the kernel
for that span of the audio, plays it in the page and marks the rows of every column that
overlap it (the same span on every provider's clock); ``play()`` returns it as an
``IPython.display.Audio``.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import traitlets

from ..audio import BrowserMicrophone
from ..compare.session import COMPARE_KEYWORDS, CompareSession, _entries, _labelled
from ..config import resolve as resolve_config
from ..errors import (
    AudioDeviceError,
    AudioNotKeptError,
    ConfigurationError,
    LivetxError,
    SegmentNotFoundError,
    SessionStateError,
)
from ..transcript import Segment, Transcript
from .assets import COMPARE_BUILT, STATIC, asset
from .browser_link import BrowserLink
from .playback import audio as _audio_display
from .playback import clip_reply
from .shell import WidgetShell, check_max_rows
from .updater import STATUS_TEXT, Updater
from .wire import plain_error, segment_dict

#: A provider's column starts lagging visibly past this many seconds behind the audio.
LAG_SHOWN_S = 2.0


class CompareUpdater(Updater):
    """The ``Updater`` flusher, feeding one column per provider of a ``CompareTranscriber``.

    Listeners (the sessions' threads) only record; the inherited flusher thread applies what
    is pending at most 20 times a second as one state message (the ``columns`` trait: a few
    small values per provider) plus one custom message with the new finals of every column.
    A flush reads only what changed: per column, the segments committed since the last flush
    and the partial text, never a whole transcript.
    """

    def __init__(self, widget: Any) -> None:
        super().__init__(widget)
        self._column_status: dict[str, str] = {}
        self._column_errors: dict[str, BaseException] = {}
        self._sent_by: dict[str, int] = {}
        self._version_by: dict[str, int] = {}
        self._shown: dict[str, tuple[str, str]] = {}  # label -> (state, model) last read

    # -- listener side: record only ---------------------------------------------------------
    def column_partial(self, _label: str, _event: Any) -> None:
        with self._cv:
            self._partials += 1
            self._dirty = True
            self._cv.notify()

    def column_final(self, label: str, segment: Segment) -> None:
        with self._cv:
            self._pending_finals[(label, segment.segment_id)] = segment  # type: ignore[index]
            self._dirty = True
            self._cv.notify()

    def column_status(self, label: str, state: str) -> None:
        with self._cv:
            self._column_status[label] = state
            self._dirty = True
            self._cv.notify()

    def column_error(self, label: str, error: BaseException) -> None:
        with self._cv:
            self._column_errors[label] = error
            self._dirty = True
            self._cv.notify()

    def follow(self, compare: CompareSession, run: int) -> None:
        """Attach to ``compare`` before its ``start()`` (no status is missed)."""
        self.attach(compare, run)  # type: ignore[arg-type]
        with self._cv:
            self._column_status = {}
            self._column_errors = {}
            self._sent_by = dict.fromkeys(compare.labels, 0)
            self._version_by = dict.fromkeys(compare.labels, -1)
            self._shown = {}
        compare.on("partial", self.column_partial)
        compare.on("final", self.column_final)
        compare.on("status", self.column_status)
        compare.on("error", self.column_error)

    def tail_message(self, max_rows: int) -> dict:
        """The last ``max_rows`` segments of every column, for a view that just rendered."""
        compare = self._session
        columns: dict[str, list[dict]] = {}
        totals: dict[str, int] = {}
        if compare is not None:
            for label, transcript in compare.transcripts.items():  # type: ignore[attr-defined]
                columns[label] = [segment_dict(s) for s in transcript.tail(max_rows)]
                totals[label] = len(transcript)
        return {"type": "tail", "run": self._run, "columns": columns, "totals": totals}

    # -- flusher thread ---------------------------------------------------------------------
    def _flush(self, finals: dict, status: str | None, errors: list[BaseException],
               partials: int, *, final: bool) -> None:  # fmt: skip
        compare: CompareSession | None = self._session  # type: ignore[assignment]
        widget = self._widget
        if compare is None:
            return
        with self._cv:
            column_errors = dict(self._column_errors)
        secrets = widget._secrets()
        transcripts = compare.transcripts
        with self.lock:
            new: dict[str, dict[int, Segment]] = {label: {} for label in compare.labels}
            for (label, segment_id), segment in finals.items():
                new[label][segment_id] = segment
            columns = []
            errors_now = compare.errors
            for label in compare.labels:
                transcript = transcripts[label]
                version = transcript.version
                count = len(transcript)
                if version != self._version_by.get(label):
                    self._version_by[label] = version
                    if count > self._sent_by.get(label, 0):
                        # Committed without a final listener call (the end commits pending
                        # partials): picked up here, O(new).
                        for s in transcript[self._sent_by.get(label, 0) : count]:
                            new[label].setdefault(s.segment_id, s)
                        self._sent_by[label] = count
                state = compare.state_of(label)
                error = errors_now.get(label) or column_errors.get(label)
                session = compare.sessions[label]
                lag = 0.0 if final or session is None else compare.lag_s(label)
                text = STATUS_TEXT.get(state, state)
                if lag >= LAG_SHOWN_S and state in ("live", "connecting", "reconnecting"):
                    text = f"{text} ({lag:.0f} s behind)"
                shown = self._shown.get(label)
                if shown is None or shown[0] != state:  # the model is read once per state
                    model = (session.metadata.model or "") if session is not None else ""
                    self._shown[label] = shown = (state, model)
                columns.append({
                    "label": label,
                    "name": compare.provider_name(label),
                    "model": shown[1],
                    "status": state,
                    "status_text": text,
                    "partial": transcript.partial_text,
                    "n_finals": count,
                    "error": "" if error is None else plain_error(error, secrets),
                })  # fmt: skip
            changes: dict[str, Any] = {"columns": columns, "n_partials": partials}
            committed = any(new.values())
            changes.update(self.revision_change(committed=committed, final=final))
            running = not final and compare.running
            state = compare.state if not final else "stopped"
            changes["running"] = running
            if running and isinstance(compare.source, BrowserMicrophone) and compare.source.ended:
                state = "stopping"  # Stop: the providers transcribe what was queued
            changes["status"] = state
            changes["status_text"] = STATUS_TEXT.get(state, "Live" if running else state)
            changes["elapsed"] = round(time.monotonic() - self._t0, 1)
            capture_stats = widget._link.stats(self._run)  # the page's ack, the kernel's queue
            if capture_stats is not None:
                changes["capture_stats"] = capture_stats
            source = compare.source
            duration = source.duration_s
            if duration and not source.live:
                position = min(compare.tee.audio_s, duration)
                changes["progress"] = round(position / duration, 4)
            with widget.hold_sync():
                for name, value in changes.items():
                    if getattr(widget, name) != value:
                        setattr(widget, name, value)
            message = {
                label: [segment_dict(segs[k]) for k in sorted(segs)]
                for label, segs in new.items()
                if segs
            }
            if message:
                totals = {label: len(transcripts[label]) for label in compare.labels}
                widget.send({"type": "finals", "run": self._run, "columns": message,
                             "totals": totals})  # fmt: skip
            self.flushes += 1


class CompareTranscriber(WidgetShell):
    """Compare providers live on the same audio in a notebook cell: Start, listen, Stop.

    Takes what ``CompareSession`` takes (``providers=[...]``, ``reference``, ``speech``,
    ``max_lag_s`` and the session's keywords, checked by the same table with the same "did
    you mean" errors) plus ``max_rows``, the rows a view keeps per column. The source is a
    file, an array, an ``AudioSource``, the kernel's microphone or the browser's
    (``source="browser"``: one capture in the page, teed to every provider). Each Start runs a
    new ``CompareSession`` (``compare``); ``summary()``, ``aligned()``, ``transcripts`` and
    ``metrics()`` are the last one's.
    """

    # host.js + compare.js (assets.py): runs alike in Jupyter and marimo; text, not a watched file.
    _esm = asset(COMPARE_BUILT)
    # widget.css first: the LiveTranscriber look (variables, buttons, status); then the columns.
    _css = "\n".join((STATIC / name).read_text() for name in ("widget.css", "compare.css"))

    # The state both widgets show (status, error, notice, running, run, elapsed, progress,
    # n_partials, source_kind, source_label, capture_stats, max_rows) is WidgetShell's.
    #: One small dict per provider: label, name, model, status, status_text, partial,
    #: n_finals, error. Finals travel as messages, not here.
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, providers: Any = (), *, max_rows: int = 200, **config: Any):
        check_max_rows(max_rows)
        given = {k: v for k, v in config.items() if k not in COMPARE_KEYWORDS}
        if "provider" in config:
            raise ConfigurationError("A comparison takes providers=[...] (a list), not provider=.")
        cfg = resolve_config(type(self).__name__, {**given, "provider": "auto"},
                             extra=(*COMPARE_KEYWORDS, "max_rows"))  # fmt: skip
        browser = _is_browser(cfg.source)
        #: The browser source given (one object, reused by every Start), or None: a fresh one.
        self._browser_source = cfg.source if isinstance(cfg.source, BrowserMicrophone) else None
        entries = _entries(providers)
        labels = [label for label, _name, _own in _labelled(entries)]
        self._providers = providers
        self._config = dict(config)
        self._stop_timeout = cfg.stop_timeout
        self._cmp: CompareSession | None = None
        self._start_error: LivetxError | None = None
        self._runs: list[CompareSession] = []
        self._empty = {label: Transcript(provider=name) for label, name, _ in _labelled(entries)}
        self._keys = [str(own["api_key"]) for _n, own in entries if own.get("api_key")]
        if cfg.api_key:
            self._keys.append(cfg.api_key)
        self._updater = CompareUpdater(self)
        self._link = BrowserLink(self)  # the page's microphone: capture messages
        super().__init__(max_rows=max_rows, source_label=_describe(cfg.source, cfg.file),
                         source_kind="browser" if browser else "kernel")  # fmt: skip
        self.columns = [
            {"label": label, "name": name, "model": "", "status": "idle",
             "status_text": STATUS_TEXT["idle"], "partial": "", "n_finals": 0, "error": ""}
            for label, name, _own in _labelled(entries)
        ]  # fmt: skip
        self.labels = labels
        # Collected without close(), or its marimo cell re-run: the runs end (shell.py).
        self._run_refs = self._connect_front_end(self._runs)

    # -- public API -----------------------------------------------------------------------
    @property
    def compare(self) -> CompareSession | None:
        """The current (or last) ``CompareSession``; ``None`` before the first Start."""
        return self._cmp

    @property
    def _session(self) -> CompareSession | None:  # what the kernel-exit hook stops
        return self._cmp

    @property
    def last_error(self) -> LivetxError | None:
        """The error that prevented the last Start (every provider failed to be made)."""
        return self._start_error

    @property
    def transcripts(self) -> dict[str, Transcript]:
        return self._cmp.transcripts if self._cmp is not None else dict(self._empty)

    def summary(self):
        """The last run's ``CompareSession.summary()`` (one row per provider)."""
        return self._require_run().summary()

    def aligned(self):
        """The last run's ``CompareSession.aligned()`` (finals lined up by time)."""
        return self._require_run().aligned()

    def metrics(self):
        return self._require_run().metrics()

    def play(
        self,
        provider: str | None = None,
        segment_id: int | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        autoplay: bool = False,
    ):
        """Audio of the last run as an ``IPython.display.Audio`` (a player when it ends a cell).

        ``play("deepgram", 3)``: the span of that provider's segment 3, exactly as sent;
        ``play(start=1.0, end=2.5)``: that span of the shared audio. Every provider was sent
        the same audio on the same clock, so a span is the same samples whichever provider's
        kept audio it comes from (``keep_audio``). Raises what
        ``TranscriptionSession.segment_audio`` raises.
        """
        compare = self._cmp
        if compare is None:
            raise SegmentNotFoundError(
                "Nothing to play: this widget has not compared anything yet."
            )
        if start is not None or end is not None:
            if provider is not None or segment_id is not None:
                raise ConfigurationError("play() takes (provider, segment_id) or start=/end=.")
            spans = compare.audio_span(0.0 if start is None else start,
                                       compare.tee.audio_s if end is None else end)  # fmt: skip
            if not spans:
                raise AudioNotKeptError("No provider kept its audio (keep_audio=False?).")
            return _audio_display(next(iter(spans.values())), autoplay=autoplay)
        if provider is None or segment_id is None:
            raise ConfigurationError(
                'play() takes a provider label and a segment id, e.g. play("deepgram", 0), or '
                "start= and end= seconds."
            )
        return _audio_display(compare.segment_audio(provider, segment_id), autoplay=autoplay)

    def start(self) -> None:
        """Start every provider on the one source and return at once (Start button).

        Local problems (a missing file, no provider that can run) are shown and raised;
        a provider that fails alone shows its error in its column."""
        error = self._start()
        if error is not None:
            raise error

    def stop(self, timeout: float | None = None) -> dict[str, Transcript]:
        """Stop every provider (within ``timeout`` in all), wait, return the transcripts."""
        compare = self._cmp
        if compare is None:
            return self.transcripts
        timeout = self._stop_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + timeout
        if self._link.drain(STATUS_TEXT["stopping"]):  # what the page delivered is transcribed
            compare.wait(timeout)
        compare.stop(max(0.0, deadline - time.monotonic()))
        self._updater.join(max(0.5, deadline - time.monotonic()))
        return compare.transcripts

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every provider has ended (a file played to its end); True if so."""
        compare = self._cmp
        if compare is None:
            return True
        if not compare.wait(timeout):
            return False
        return self._updater.join(timeout)

    def pause(self) -> None:
        if self._cmp is not None and self._cmp.running:
            self._cmp.pause()

    def resume(self) -> None:
        if self._cmp is not None and self._cmp.running:
            self._cmp.resume()

    def _ran(self) -> list[CompareSession]:  # closed with the widget (shell.py)
        return getattr(self, "_runs", [])

    def __repr__(self) -> str:
        return f"CompareTranscriber({', '.join(self.labels)}; status={self.status!r})"

    # -- internals ------------------------------------------------------------------------
    def _require_run(self) -> CompareSession:
        if self._cmp is None:
            raise SessionStateError("Nothing compared yet: press Start (or call start()).",
                                    state="idle")  # fmt: skip
        return self._cmp

    # -- starting (WidgetShell._start) ---------------------------------------------------
    def _new_run(self) -> CompareSession:
        config = self._config
        if self.source_kind == "browser":  # one microphone, teed to every provider
            config = {**config, "source": self._browser_source or BrowserMicrophone()}
        return CompareSession(self._providers, **config)

    def _keep(self, compare: CompareSession) -> None:
        self._cmp = compare
        self._runs.append(compare)
        self._run_refs.add(compare)

    def _follow(self, compare: CompareSession, run: int) -> dict[str, Any]:
        self._updater.follow(compare, run)  # before start(): no status is missed
        return {"status_text": STATUS_TEXT["connecting"]}

    def _abandon(self, compare: CompareSession) -> None:
        compare.stop(0.0)  # the source, and the providers that did start

    def _own_keys(self) -> list[str]:  # masked out of anything shown, with the env's
        return list(self._keys)

    def _request_stop(self) -> None:
        """Stop button: every provider ends; a browser source is drained first."""
        running = self._cmp is not None and self._cmp.running
        if running and not self._link.drain(STATUS_TEXT["stopping"]):
            self._cmp.request_stop(self._stop_timeout)  # the flusher sees the end

    def _browser_msg(self, kind: str, content: dict, buffers: list) -> None:
        if not self._link.handle(kind, content, buffers) and kind == "capture-error":
            self._capture_failed(content.get("message"))

    def _capture_failed(self, message: Any) -> None:
        """The page could not capture (a denied microphone) before any run listened to it:
        the page did not ask to start, so nothing runs; say why in the widget."""
        if self._cmp is not None and self._cmp.running:
            return  # a stale capture of an earlier Start: the current run goes on
        if not isinstance(message, str) or not message:
            message = "The browser could not capture the microphone."
        self._show_error(AudioDeviceError(message[:500]))

    def _play_clip(self, content: dict) -> None:
        """A row was clicked: send its span to the asking view (``playback.clip_reply``)."""
        compare = self._cmp if content.get("run") == self.run else None
        label = content.get("label")
        session = None
        if compare is not None and isinstance(label, str):
            session = compare.sessions.get(label)
        reply, buffers = clip_reply(session, content, self._secrets())
        reply["label"] = label
        if compare is not None and session is None and "error" in reply:
            reply["error"] = (
                f"Cannot play this segment: {label!r} has no audio in this run "
                "(it never started, or is not one of its providers)."
            )
        self._send_clip(reply, buffers)


def _is_browser(source: Any) -> bool:
    """``source="browser"`` or a ``BrowserMicrophone``: the page captures."""
    return isinstance(source, BrowserMicrophone) or (
        isinstance(source, str) and source == "browser"
    )


def _describe(source: Any, file: Any) -> str:
    if _is_browser(source):
        return "Browser microphone"
    if isinstance(source, str):
        return file or source
    if hasattr(source, "size") and hasattr(source, "dtype"):
        return f"array of {source.size / 16000:.1f} s"
    return str(getattr(source, "path", "") or type(source).__name__)


def _signature() -> inspect.Signature:
    from ..compare.session import _signature as compare_signature

    sig = compare_signature()
    extra = inspect.Parameter("max_rows", inspect.Parameter.KEYWORD_ONLY, default=200)
    return sig.replace(parameters=[*sig.parameters.values(), extra])


CompareTranscriber.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
