"""capture.js alone in a real Chromium: the fake microphone plays a WAV, the page captures it
with ``startCapture`` and the chunks come back to Python.

The page is served from a loopback HTTP server: 127.0.0.1 is a secure context, so
``navigator.mediaDevices`` exists; the same page under ``INSECURE_HOST`` (mapped to 127.0.0.1
inside Chromium) is a real insecure context. The page only instruments capture.js's use of the
browser (it remembers the streams and AudioContexts it opened, to check that ``stop()``
releases them); nothing is replaced.
"""

from __future__ import annotations

import base64
import wave
from pathlib import Path

import numpy as np
import pytest

from livetx_widgets.server.wer import normalize_words, wer

pytestmark = pytest.mark.ui

RATE = 16000
REFERENCE = "I do. I think that America do it very well."  # one loop of short-16k.wav
#: Bound of one capture run's waits (the fake microphone runs in real time).
CAPTURE_WAIT_S = 30.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>capture.js test page</title></head>
<body>
<button id="start">Start</button>
<script type="module">
import * as capture from "/capture.js";

// Instrumentation only: remember what capture.js opens, so tests can see it released.
const seen = { streams: [], contexts: [], constraints: [] };
if (navigator.mediaDevices) {
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    seen.constraints.push(c);
    const s = await gum(c);
    seen.streams.push(s);
    return s;
  };
}
// ?rate=N runs the AudioContext at N Hz (Chromium resamples the microphone to it), so the
// worklet's resampler meets other ratios than the device's 44.1 kHz.
const AC = window.AudioContext;
const forcedRate = Number(new URLSearchParams(location.search).get("rate")) || undefined;
if (AC) {
  window.AudioContext = class extends AC {
    constructor(o) {
      super(forcedRate ? { ...o, sampleRate: forcedRate } : o);
      seen.contexts.push(this);
    }
  };
}

const run = { chunks: [], levels: [], errors: [], handle: null };
const b64 = (buf) => {
  let s = "";
  const bytes = new Uint8Array(buf);
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return btoa(s);
};

window.t = {
  capture, seen, run,
  options: {},
  result: null,
  start() {
    // Called from the button's click handler: startCapture runs inside the user gesture.
    this.result = capture.startCapture({
      ...this.options,
      onChunk: (pcm, meta) => run.chunks.push({ pcm, meta }),
      onLevel: (level) => run.levels.push(level),
      onError: (e) => run.errors.push({ kind: e.kind, message: e.message }),
    }).then(
      (h) => {
        run.handle = h;
        const { stop, ...info } = h;
        return { ok: true, ...info, stopType: typeof stop };
      },
      (e) => ({ ok: false, name: e.name, kind: e.kind, message: e.message }),
    );
  },
  collect() {
    return run.chunks.map(({ pcm, meta }) => ({ ...meta, bytes: pcm.byteLength, b64: b64(pcm) }));
  },
  released() {
    return {
      tracks: seen.streams.flatMap((s) => s.getTracks().map((k) => k.readyState)),
      contexts: seen.contexts.map((c) => c.state),
    };
  },
};
document.getElementById("start").addEventListener("click", () => window.t.start());
window.t.ready = true;
</script>
</body></html>
"""


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(static_server, h):
    static_server.add("/", PAGE)
    static_server.add_file("/capture.js", h.STATIC / "capture.js", "text/javascript")
    return static_server


def open_page(page, site, host: str = "127.0.0.1", query: str = "") -> None:
    page.goto(site.url("/", host=host) + query)
    page.wait_for_function("() => window.t && window.t.ready === true")


def click_start(page, **options) -> dict:
    """Press the page's Start button (a real click: a user gesture) and await startCapture."""
    page.evaluate("o => { window.t.options = o; }", options)
    page.click("#start")
    return page.evaluate("() => window.t.result")


def wait_chunks(page, n: int) -> None:
    page.wait_for_function(
        "n => window.t.run.chunks.length >= n", arg=n, timeout=CAPTURE_WAIT_S * 1000
    )


def stop(page) -> None:
    page.evaluate("() => window.t.run.handle.stop()")


def pcm_of(chunks: list[dict]) -> np.ndarray:
    data = b"".join(base64.b64decode(c["b64"]) for c in chunks)
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# -- a real capture of the fake microphone -----------------------------------------------------


@pytest.fixture(scope="module")
def recording(browser, site, h):
    """~5.5 s captured from the fake microphone (short-16k.wav looping), then stopped."""
    context, page, log = h.new_page(browser)
    try:
        open_page(page, site)
        started = click_start(page, chunkMs=100)
        assert started["ok"], started
        wait_chunks(page, 55)
        stop(page)
        return {
            "started": started,
            "chunks": page.evaluate("() => window.t.collect()"),
            "levels": page.evaluate("() => window.t.run.levels"),
            "errors": page.evaluate("() => window.t.run.errors"),
            "released": page.evaluate("() => window.t.released()"),
            "constraints": page.evaluate("() => window.t.seen.constraints"),
            "log": log,
        }
    finally:
        context.close()


def test_start_reports_the_stream_and_asks_for_raw_mono_audio(recording):
    started = recording["started"]
    assert started["sampleRate"] == RATE
    assert started["inputSampleRate"] in (44100, 48000)  # Chromium's fake device
    assert started["chunkMs"] == 100
    assert started["deviceLabel"] and started["stopType"] == "function"
    (audio,) = [c["audio"] for c in recording["constraints"]]
    assert audio["echoCancellation"] is False
    assert audio["noiseSuppression"] is False
    assert audio["autoGainControl"] is False
    assert "deviceId" not in audio  # none chosen: the browser's default device


def test_chunks_are_100_ms_of_16_khz_s16le_with_contiguous_sequence_numbers(recording):
    chunks = recording["chunks"]
    assert len(chunks) >= 55
    assert [c["seq"] for c in chunks] == list(range(len(chunks)))
    *full, last = chunks
    assert all(c["bytes"] == 3200 and c["samples"] == 1600 and not c["last"] for c in full)
    assert last["last"] and last["bytes"] == 2 * last["samples"] <= 3200  # stop() flushes
    # Every chunk is 0.1 s of audio on the AudioContext's clock (to one 128-frame block).
    clock = np.diff([c["contextTime"] for c in full])
    block = 128 / recording["started"]["inputSampleRate"]
    assert np.all(np.abs(clock - 0.1) <= block + 1e-6), clock
    # Wall-clock capture stamps (ms since the epoch) advance with the audio.
    stamps = np.array([c["capturedAt"] for c in full], dtype=float)
    assert np.all(np.diff(stamps) >= 0)
    span_s = (stamps[-1] - stamps[0]) / 1000
    assert 0.5 * (len(full) - 1) * 0.1 <= span_s <= 2.0 * (len(full) - 1) * 0.1


def test_the_captured_audio_is_the_speech_looping(recording, short_wav, h):
    captured = pcm_of(recording["chunks"])
    loop = h.read_wav(short_wav)
    assert len(captured) > len(loop)
    score, _lag = h.loop_alignment(captured, loop)
    assert score > 0.9, f"envelope correlation {score:.3f}: not the WAV's speech"
    # Same loudness (no gain control, no resampler gain error): within 2 dB.
    ratio = np.sqrt(np.mean(captured[: len(loop)] ** 2) / np.mean(loop**2))
    assert 10 ** (-2 / 20) < ratio < 10 ** (2 / 20), ratio
    assert np.max(np.abs(captured)) < 0.999  # no clipping


def test_levels_follow_the_audio(recording):
    levels = recording["levels"]
    n = len(recording["chunks"])
    assert 2 * (n - 1) - 2 <= len(levels) <= 2 * n + 2  # one per 50 ms
    peaks = [lv["peak"] for lv in levels]
    rms = [lv["rms"] for lv in levels]
    assert all(0.0 <= r <= p <= 1.0 for r, p in zip(rms, peaks, strict=True))
    assert max(rms) > 10 * min(rms)  # speech and pauses are told apart
    assert all(lv["dbfs"] <= 0.0 for lv in levels)


def test_stop_releases_the_microphone_and_the_context(recording):
    assert recording["released"] == {"tracks": ["ended"], "contexts": ["closed"]}
    assert recording["errors"] == []  # a requested stop is not an error
    assert not recording["log"].errors


@pytest.mark.slow
def test_offline_whisper_understands_the_captured_audio(recording, short_wav, h):
    from livetx_widgets.server.whisper_engine import WhisperEngine

    captured = pcm_of(recording["chunks"])
    loop = h.read_wav(short_wav)
    _score, lag = h.loop_alignment(captured, loop)
    # The capture is periodic: rotate one loop-length so it starts where the file starts.
    window = captured[: len(loop)]
    one_loop = np.concatenate([window[lag:], window[:lag]])
    pcm = (np.clip(one_loop, -1, 1) * 32767).astype("<i2").tobytes()

    engine = WhisperEngine().load()
    try:
        stream = engine.open_stream(RATE, language="en")
        results = []
        for i in range(0, len(pcm), 3200):
            results += stream.feed(pcm[i : i + 3200])
        results += stream.close()
    finally:
        engine.close()
    text = " ".join(r.text for r in results if r.kind == "final")
    assert normalize_words(text), "no words recognized"
    assert wer(REFERENCE, text) < 0.5, text


# -- options and failures ----------------------------------------------------------------------


def test_a_chosen_device_and_50_ms_chunks(page, site):
    open_page(page, site)
    devices = page.evaluate("() => window.t.capture.listInputDevices()")
    assert devices and all(d["label"] for d in devices)
    assert sum(d["isDefault"] for d in devices) == 1
    chosen = next(d for d in devices if not d["isDefault"])
    started = click_start(page, chunkMs=50, deviceId=chosen["deviceId"])
    assert started["ok"], started
    assert started["deviceLabel"] == chosen["label"]
    assert started["deviceId"] == chosen["deviceId"]
    wait_chunks(page, 4)
    stop(page)
    chunks = page.evaluate("() => window.t.collect()")
    assert [c["bytes"] for c in chunks[:4]] == [1600] * 4
    assert page.evaluate("() => window.t.seen.constraints[0].audio.deviceId") == {
        "exact": chosen["deviceId"]
    }
    page.evaluate("() => window.t.run.handle.stop()")  # stop() twice is harmless
    assert page.evaluate("() => window.t.released()") == {
        "tracks": ["ended"],
        "contexts": ["closed"],
    }


def test_a_device_that_is_gone_says_so_and_leaves_nothing_open(page, site, h):
    open_page(page, site)
    result = click_start(page, deviceId="no-such-device")
    assert not result["ok"]
    assert result["name"] == "CaptureError" and result["kind"] == "no-device"
    assert "not available any more" in result["message"]
    assert "Pick another one" in result["message"]
    assert page.evaluate("() => window.t.released()")["contexts"] == ["closed"]
    assert h.page_log(page).errors == []  # no unhandled rejection left behind


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"chunkMs": 5}, "chunkMs must be a whole number of milliseconds from 20 to 1000"),
        ({"chunkMs": 62.5}, "not 62.5"),
        ({"onChunk": None}, "needs an onChunk(pcm, meta) function"),
    ],
)
def test_bad_arguments_are_refused_before_asking_for_the_microphone(page, site, options, needle):
    open_page(page, site)
    result = page.evaluate(
        """o => window.t.capture.startCapture({ onChunk() {}, ...o }).then(
            () => ({ ok: true }), (e) => ({ ok: false, kind: e.kind, message: e.message }))""",
        options,
    )
    assert result["kind"] == "bad-argument" and needle in result["message"]
    assert page.evaluate("() => window.t.seen.constraints") == []


def test_an_insecure_page_explains_why_there_is_no_microphone(page, site, h):
    open_page(page, site, host=h.INSECURE_HOST)
    assert page.evaluate("() => window.isSecureContext") is False  # a real insecure page
    reason = page.evaluate("() => window.t.capture.captureSupport()")
    assert reason.startswith("The browser microphone needs a secure page.")
    assert f"http://{h.INSECURE_HOST}:{site.port}" in reason
    assert "https://" in reason and "localhost" in reason
    result = click_start(page)
    assert (result["ok"], result["kind"], result["message"]) == (False, "insecure", reason)
    listed = page.evaluate(
        "() => window.t.capture.listInputDevices().then(() => 'listed', (e) => e.kind)"
    )
    assert listed == "insecure"


def test_a_secure_page_has_no_support_problem(page, site):
    open_page(page, site)
    assert page.evaluate("() => window.isSecureContext") is True
    assert page.evaluate("() => window.t.capture.captureSupport()") is None


def test_denied_permission_says_how_to_allow_it(launch_chromium, short_wav, site, h):
    # No fake UI: permission decisions are the browser's, and this one is "denied".
    browser = launch_chromium(short_wav, fake_ui=False)
    context, page, _log = h.new_page(browser, microphone=False)
    try:
        open_page(page, site)
        cdp = context.new_cdp_session(page)
        cdp.send(
            "Browser.setPermission",
            {
                "permission": {"name": "microphone"},
                "setting": "denied",
                "origin": site.url("").rstrip("/"),
            },
        )
        result = click_start(page)
        assert not result["ok"]
        assert result["kind"] == "denied"
        assert result["message"].startswith("Microphone permission was denied. Allow the")
        assert "press Start again" in result["message"]
        assert page.evaluate("() => window.t.released()")["contexts"] == ["closed"]
        assert _log.errors == []
    finally:
        context.close()


@pytest.mark.parametrize("context_rate", [None, 48000, 96000])
def test_the_resampler_removes_what_would_alias(
    launch_chromium, site, h, tmp_path_factory, context_rate
):
    """A 1 kHz tone passes at unit gain; an 11 kHz tone, which plain decimation to 16 kHz
    would fold onto 5 kHz, is gone. At the device's rate (44.1 kHz: 160/441, a polyphase
    ratio) and at integer ratios (3 and 6)."""
    rate, seconds = 48000, 3.0
    t = np.arange(int(rate * seconds)) / rate
    tones = 0.25 * np.sin(2 * np.pi * 1000 * t) + 0.25 * np.sin(2 * np.pi * 11000 * t)
    wav = tmp_path_factory.getbasetemp() / "tones-48k.wav"
    if not wav.exists():  # one file, so one browser for every parameter
        write_wav(wav, tones, rate)
    context, page, _log = h.new_page(launch_chromium(wav))
    try:
        open_page(page, site, query=f"?rate={context_rate}" if context_rate else "")
        started = click_start(page, chunkMs=100)
        assert started["ok"], started
        assert started["inputSampleRate"] == (context_rate or started["inputSampleRate"])
        wait_chunks(page, 20)
        stop(page)
        x = pcm_of(page.evaluate("() => window.t.collect()"))[RATE // 2 : RATE // 2 + RATE]
    finally:
        context.close()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) / (np.hanning(len(x)).sum() / 2)
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)

    def amplitude(f: float) -> float:
        band = (freqs > f - 50) & (freqs < f + 50)
        return float(spectrum[band].max())

    assert 0.25 * 10 ** (-1 / 20) < amplitude(1000) < 0.25 * 10 ** (1 / 20)
    assert amplitude(5000) < 0.25 * 10 ** (-60 / 20), amplitude(5000)  # the alias


def test_without_a_click_the_browser_keeps_audio_suspended_and_we_say_so(browser, site, h):
    """Chromium's autoplay policy: an AudioContext started without a user gesture stays
    suspended. The widget must call startCapture from the Start button's click handler."""
    site.add("/autostart", PAGE.replace("window.t.ready = true;", "window.t.start();\n"
                                        "window.t.ready = true;"))  # fmt: skip
    context, page, _log = h.new_page(browser)
    try:
        page.goto(site.url("/autostart"))
        page.wait_for_function("() => window.t && window.t.ready === true")
        result = page.evaluate("() => window.t.result")
        assert (result["ok"], result["kind"]) == (False, "suspended")
        assert "after a click on the page: press Start again" in result["message"]
        assert page.evaluate("() => window.t.released()") == {
            "tracks": ["ended"],
            "contexts": ["closed"],
        }
    finally:
        context.close()


def test_audio_stopping_under_us_is_reported_through_on_error(page, site):
    open_page(page, site)
    assert click_start(page)["ok"]
    wait_chunks(page, 2)
    page.evaluate("() => window.t.seen.contexts[0].close()")  # not through stop()
    page.wait_for_function("() => window.t.run.errors.length > 0", timeout=CAPTURE_WAIT_S * 1000)
    (error,) = page.evaluate("() => window.t.run.errors")
    assert error["kind"] == "failed"
    assert "closed the audio processing" in error["message"]
    stop(page)  # still releases the microphone
    assert page.evaluate("() => window.t.released()")["tracks"] == ["ended"]
