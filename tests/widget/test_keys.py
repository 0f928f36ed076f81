"""An API key never leaves the kernel's memory: not in the state, the repr, a message or a log."""

from __future__ import annotations

import json
import logging

import pytest

from livetx_widgets.server import LocalServer


def _assert_nowhere(w, secret: str, caplog) -> None:
    assert secret not in json.dumps(w.get_state(), default=str)
    assert secret not in repr(w)
    assert secret not in w.rec.all_text()
    assert secret not in caplog.text
    assert secret not in repr(w.metadata) and secret not in json.dumps(
        w.metadata.to_dict(), default=str
    )
    assert all(secret not in str(getattr(w, name)) for name in w.keys)


@pytest.mark.parametrize("via", ["argument", "environment", "password field"])
def test_key_is_used_but_never_shown(make_widget, wav5, h, caplog, monkeypatch, via):
    caplog.set_level(logging.DEBUG)
    secret = h.secret
    with LocalServer(engine="script", script=h.script, api_key=secret, rate_limit=False) as srv:
        kwargs = {"provider": "deepgram", "source": wav5, "realtime": False}
        if via == "argument":
            kwargs["api_key"] = secret
        elif via == "environment":
            monkeypatch.setenv("DEEPGRAM_API_KEY", secret)
        w = make_widget(**kwargs)
        if via == "password field":
            assert w.needs_key
            w._on_front_end_msg(w, {"type": "key", "value": secret}, [])
            assert not w.needs_key and "memory only" in w.notice
        else:
            assert not w.needs_key
        w._url = srv.url  # set late so that needs_key above is that of the real provider
        w.start()
        assert w.wait(30)
        assert [r.authorized for r in srv.sessions] == [True]  # the server checked the key
    assert w.error == "" and w.transcript.text == h.script_text  # the server accepted the key
    _assert_nowhere(w, secret, caplog)


def test_key_is_masked_out_of_error_text(make_widget):
    from livetx_widgets.errors import ProviderError
    from livetx_widgets.ui.wire import plain_error

    text = plain_error(ProviderError("refused sk-abcdef123 because"), ["sk-abcdef123"])
    assert text == "The provider reported an error: refused *** because"


def test_empty_key_message_is_ignored(make_widget):
    w = make_widget(provider="assemblyai")
    w._on_front_end_msg(w, {"type": "key", "value": "   "}, [])
    w._on_front_end_msg(w, {"type": "key", "value": 42}, [])
    assert w.needs_key and w._keys == {}
