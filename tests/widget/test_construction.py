"""Constructor checks and the state the traits start in (no session started)."""

from __future__ import annotations

import numpy as np
import pytest

from livetx_widgets import ArraySource, ConfigurationError, LiveTranscriber, Transcript


@pytest.mark.parametrize(
    ("wrong", "closest"),
    [("provder", "provider"), ("api_kye", "api_key"), ("sorce", "source"), ("modle", "model")],
)
def test_misspelled_keyword_names_the_closest_one(no_keys, wrong, closest):
    with pytest.raises(TypeError, match=rf"{wrong!r} \(did you mean {closest!r}\?\)"):
        LiveTranscriber(**{wrong: "x"})


def test_only_the_provider_may_be_positional(no_keys):
    assert LiveTranscriber("local", source="browser").provider == "local"  # as the session
    with pytest.raises(TypeError):
        LiveTranscriber("local", "browser")


def test_unknown_provider_is_a_configuration_error(no_keys):
    with pytest.raises(ConfigurationError, match=r"'deepgrm' \(did you mean 'deepgram'\?\)"):
        LiveTranscriber(provider="deepgrm")


def test_bad_source_values(no_keys, tmp_path):
    with pytest.raises(ConfigurationError, match="needs file="):
        LiveTranscriber(source="file")
    with pytest.raises(ConfigurationError, match="Unknown source 'speaker'"):
        LiveTranscriber(source="speaker")
    with pytest.raises(ConfigurationError, match="not int"):
        LiveTranscriber(source=3)


def test_source_kinds(make_widget, wav5):
    assert make_widget(source=wav5).source_kind == "file"
    assert make_widget(source=str(wav5)).file == str(wav5)
    assert make_widget(source="file", file=wav5).source_kind == "file"
    custom = make_widget(source=ArraySource(np.zeros(1600, dtype=np.int16)))
    assert custom.source_kind == "custom"
    assert custom.source_label == repr(custom._custom_source)
    auto = make_widget(source="auto")
    assert auto.source_kind == ("kernel" if auto.devices else "browser")


def test_before_any_session(make_widget):
    w = make_widget(provider="local")
    assert isinstance(w.transcript, Transcript) and len(w.transcript) == 0
    assert w.session is None and w.sessions == [] and w.last_error is None
    assert w.to_dataframe().empty
    assert w.metadata.provider == "local"
    assert w.status == "idle" and not w.running
    assert w.wait(0) is True
    assert w.stop() is w.transcript
    assert "LiveTranscriber(provider='local'" in repr(w)


def test_models_follow_the_provider(make_widget):
    w = make_widget(provider="deepgram", url="ws://127.0.0.1:9")
    assert w.model == "nova-3" and "nova-2" in w.models
    w.provider = "assemblyai"
    assert w.model == "u3-rt-pro" and w.model in w.models
    w.provider = "local"
    assert w.models == [] and w.model == ""
    assert make_widget(provider="deepgram", model="nova-2", url="ws://x:1").model == "nova-2"


def test_needs_key_follows_provider_and_environment(make_widget, monkeypatch):
    w = make_widget(provider="deepgram")
    assert w.needs_key and w.key_env == "DEEPGRAM_API_KEY"
    w.provider = "local"
    assert not w.needs_key
    w.provider = "assemblyai"
    assert w.needs_key and w.key_env == "ASSEMBLYAI_API_KEY"
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "from-env")
    w.provider = "deepgram"
    w.provider = "assemblyai"
    assert not w.needs_key
    assert not make_widget(provider="deepgram", api_key="k").needs_key
    assert not make_widget(provider="deepgram", url="ws://127.0.0.1:9").needs_key


def test_api_key_with_auto_is_refused(no_keys):
    with pytest.raises(ConfigurationError, match="api_key= needs provider"):
        LiveTranscriber(provider="auto", api_key="k")


def test_max_rows_is_checked(no_keys):
    with pytest.raises(ConfigurationError, match="max_rows"):
        LiveTranscriber(max_rows=0)
