"""One configuration (issue 10): the same keywords, defaults and checks for the session and the
widget, one source resolver, and live reconfiguration over a real socket."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from livetx_widgets import LiveTranscriber, TranscriptionSession
from livetx_widgets.config import NAMES, PARAMS
from livetx_widgets.errors import AudioDeviceError, ConfigurationError, SessionStateError
from livetx_widgets.server import Faults, LocalServer

PROVIDERS = ["deepgram", "assemblyai"]


def tone(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.int16)


def test_session_and_widget_take_the_same_keywords_with_the_same_defaults():
    session = inspect.signature(TranscriptionSession).parameters
    widget = inspect.signature(LiveTranscriber).parameters
    assert list(session) == list(NAMES)
    assert [n for n in widget if n != "max_rows"] == list(NAMES)
    for p in PARAMS:
        assert session[p.name].default == widget[p.name].default == p.default


@pytest.mark.parametrize("cls", [TranscriptionSession, LiveTranscriber])
@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("sorce", "source"),
        ("stop_timout", "stop_timeout"),
        ("on_finals", "on_final"),
        ("keyterm", "keyterms"),
    ],
)
def test_a_misspelled_keyword_names_the_closest_one(cls, wrong, right):
    with pytest.raises(TypeError, match=f"did you mean '{right}'"):
        cls("local", **{wrong: 1})


@pytest.mark.parametrize("cls", [TranscriptionSession, LiveTranscriber])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"stop_timeout": -1}, "stop_timeout"), ({"max_reconnects": 1.5}, "max_reconnects"),
     ({"connect_timeout": 0}, "connect_timeout"), ({"on_final": 3}, "callable"),
     ({"provider": "deepgrm"}, "did you mean 'deepgram'"), ({"source": "file"}, "file="),
     ({"source": "talk"}, "Unknown source")],
)  # fmt: skip
def test_bad_values_get_the_same_error_everywhere(cls, kwargs, match, monkeypatch):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=match):
        cls(**{"provider": "local", **kwargs})


def test_auto_source_without_a_microphone_says_what_to_do(monkeypatch):
    from livetx_widgets.audio import resolve

    monkeypatch.setattr(resolve, "has_microphone", lambda: False)
    with pytest.raises(AudioDeviceError, match="no microphone"):
        TranscriptionSession("local")
    # The widget falls back to the browser's microphone instead.
    assert LiveTranscriber(provider="local").source_kind == "browser"


def test_model_and_keyterms_map_onto_each_providers_options():
    dg = TranscriptionSession("deepgram", url="ws://127.0.0.1:9", model="nova-2",
                              keyterms=["Kubernetes"], source=tone(1))  # fmt: skip
    assert dg.metadata.params["model"] == "nova-2"
    assert dg.metadata.params["keyterm"] == ["Kubernetes"]
    aai = TranscriptionSession("assemblyai", url="ws://127.0.0.1:9", keyterms="a, b",
                               source=tone(1))  # fmt: skip
    assert aai.metadata.params["keyterms_prompt"] == ["a", "b"]


def test_config_repr_hides_the_key():
    s = TranscriptionSession("deepgram", url="ws://127.0.0.1:9", api_key="sk-secret-123",
                             source=tone(1))  # fmt: skip
    assert "sk-secret-123" not in repr(s.config) and "***" in repr(s.config)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_update_while_live_reaches_the_provider_and_survives_a_reconnect(provider, h):
    # Drop the first connection a while after the update: the second opens with the new terms.
    faults = Faults(drop_after_s=1.5, connections=1)
    with LocalServer(engine="script", script=h.script, faults=faults, rate_limit=False) as srv:
        session = TranscriptionSession(
            provider, source=tone(3), url=srv.url, realtime=True, pace=False
        ).start()  # 3 s at real time: the drop at 1.5 s leaves the second connection 1.5 s
        assert h.wait_until(lambda: session.state == "live")
        session.update(keyterms=["Kubernetes", "Dr. Patel"])
        assert session.wait(20)
        records = srv.sessions
    assert session.error is None, session.error
    assert session.metadata.reconnects == 1
    first, second = records[0], records[1]
    sent = [c for c in first.controls if isinstance(c, dict) and c.get("type") in
            ("Configure", "UpdateConfiguration")]  # fmt: skip
    assert sent
    if provider == "deepgram":
        assert sent[0]["keyterms"] == ["Kubernetes", "Dr. Patel"]
        assert second.query["keyterm"] == ["Kubernetes", "Dr. Patel"]
    else:
        assert sent[0]["keyterms_prompt"] == ["Kubernetes", "Dr. Patel"]
        assert json.loads(second.query["keyterms_prompt"][0]) == ["Kubernetes", "Dr. Patel"]


def test_update_rejects_unknown_and_bad_values_at_once(server, h):
    session = TranscriptionSession(
        "assemblyai", source=tone(3), url=server.url, realtime=True, pace=False
    ).start()
    assert h.wait_until(lambda: session.state == "live")
    with pytest.raises(ConfigurationError, match="max_turn_silence"):
        session.update(max_turn_silense=300)
    with pytest.raises(ConfigurationError):
        session.update(max_turn_silence="long")
    session.stop()
    with pytest.raises(SessionStateError, match="ended"):
        session.update(keyterms=["x"])


def test_update_before_the_connection_opens_with_it(h):
    with LocalServer(engine="script", script=h.script, rate_limit=False) as srv:
        # 1 s of audio at real time: the terms are what is asserted, not the transcript
        session = TranscriptionSession("deepgram", source=tone(1), url=srv.url)
        session.start()
        if session.state == "connecting":  # usually; either way the stream gets the terms
            session.update(keyterms=["Kubernetes"])
        else:
            session.update(keyterms=["Kubernetes"], wait=True)
        assert session.wait(10)
        records = srv.sessions
    assert session.error is None
    configured = any(c.get("type") == "Configure" for c in records[0].controls
                     if isinstance(c, dict))  # fmt: skip
    assert configured or records[0].query.get("keyterm") == ["Kubernetes"]
