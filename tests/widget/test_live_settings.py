"""The widget's live settings: the keyterms field and "Finalize now" (issue 10)."""

from __future__ import annotations

import numpy as np


def test_keyterms_field_and_finalize_reach_the_live_session(make_widget, h):
    w = make_widget(provider="local", local_engine="script", local_options={"script": h.script},
                    source=np.zeros(16000 * 5, dtype=np.int16), realtime=True)  # fmt: skip
    w.start()
    assert h.wait_until(lambda: w.session.state == "live")
    w.keyterms = "Kubernetes, Dr. Patel"  # as typed in the page
    assert "Keyterms updated" in w.notice
    # Confirmed by the server's ConfigureSuccess, kept for the next connection.
    assert h.wait_until(lambda: w.session._options.get("keyterm") == ["Kubernetes", "Dr. Patel"])
    w._on_front_end_msg(w, {"type": "finalize"}, [])  # the "Finalize now" button
    assert h.wait_until(lambda: len(w.transcript) >= 1)
    w.stop()
    assert w.session.error is None
    assert w.transcript.text  # the script was transcribed


def test_keyterms_given_at_construction_show_in_the_field(make_widget):
    w = make_widget(provider="local", source=np.zeros(1600, dtype=np.int16),
                    keyterms=["alpha", "beta"])  # fmt: skip
    assert w.keyterms == "alpha, beta"
