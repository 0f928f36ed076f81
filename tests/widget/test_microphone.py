"""The kernel-microphone source through the widget, on a real (virtual) PulseAudio microphone."""

from __future__ import annotations

import pytest


@pytest.mark.mic
@pytest.mark.slow  # a PulseAudio daemon and ~3 s of audio
def test_kernel_microphone_lists_devices_and_transcribes(pulse_mic, make_widget, h, tmp_path):
    w = make_widget(provider="local", source="auto", local_engine="script",
                    local_options={"script": h.script})  # fmt: skip
    assert w.source_kind == "kernel"  # "auto" found a microphone
    names = [d["name"] for d in w.devices]
    assert any("pulse" in n or "default" in n for n in names), names
    w._on_front_end_msg(w, {"type": "devices"}, [])  # the refresh button
    assert [d["name"] for d in w.devices] == names
    pulse_mic.play(h.tone_wav(tmp_path / "speech.wav", 6.0))
    w.start()
    # The script engine finalizes its first sentence after ~2.7 s of audio heard.
    assert h.wait_until(lambda: w.n_finals >= 1, timeout=20 * h.TIMING), (w.status, w.error)
    assert w.level > 0 or w.status == "live"
    w.stop(timeout=5)
    assert w.status == "stopped" and w.error == ""
    assert w.transcript.segments[0].text == h.script["turns"][0]["text"]
    assert h.livetx_threads() == []
