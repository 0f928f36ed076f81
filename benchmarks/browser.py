"""Benchmark the browser microphone against the kernel microphone, and the backlog after a busy
cell, in a real JupyterLab in headless Chromium.

Run: ``.venv/bin/python benchmarks/browser.py [--quick] [--save]`` (``--save`` also writes
``benchmarks/results/browser.txt``: this run on top, the earlier ones kept below). About four
minutes (``--quick``: under a minute and a half).

Same audio, same engine, one run: a WAV made of the shared sentence (short-16k.wav) with 3 s of
silence before and after it (one utterance every 10.1 s) is

* the **browser path**: Chromium's fake microphone plays it in a loop; the widget
  (``LiveTranscriber(provider="local", source=<a BrowserMicrophone>)``, Start clicked in the
  page) captures it with getUserMedia + AudioWorklet and sends it to the kernel in 100 ms
  chunks over the widget's comm;
* the **kernel path**: ``paplay`` plays it into a private PulseAudio null sink whose monitor
  is the kernel's microphone (pyaudio, device "pulse"), read by the same widget class.

Both feed the same offline engine (``provider="local"``: faster-whisper tiny.en in an in-process
``livetx serve``) in the same kernel. Rounds alternate browser / kernel so both meet the same
machine load.

How onset time is aligned: the two paths have different clocks and the fake microphone starts
its loop at an arbitrary point, so the onsets are found in the audio the session actually
read (a wrapper source keeps it): an onset is the first 10 ms frame above -34 dBFS after at
least 1 s below it (the file's 3 s of silence are digital zero; the recording's own room noise
before the first word is about -45 dBFS). That stream position is then
mapped to the wall-clock time its audio was *captured*: on the browser path from the capture
time the page stamps on each chunk (``Date.now()`` in the AudioWorklet when the chunk's last
sample arrived; same machine, same clock as the kernel's ``time.time()``), interpolated within
the chunk (``BrowserMicrophone.captured_at``); on the kernel path from the time pyaudio handed
the chunk over (its last sample had just been captured). Audio-to-partial latency is then the
kernel's receive time of the first non-empty partial after the onset minus the onset's capture
time; audio-to-final latency is the final's receive time minus the capture time of the end of
the utterance (last frame above the threshold). So each latency covers capture, transport to
the kernel (page -> Jupyter server -> kernel, or PulseAudio -> PortAudio), the session, the
engine and the result's way back into the kernel. **Audio-to-DOM** adds the widget's way to
the page: the time (``Date.now()`` in a MutationObserver on the widget's partial line, before
the next paint) at which the page first showed a non-empty partial after the onset, minus the
onset's capture time; kernel-to-DOM is the difference (the updater's flush, the comm, the
view's render).

Backlog after a 10 s busy cell (``time.sleep(10)`` in a cell while the browser path records):

* with JupyterLab's default "comms over subshells" (ipykernel 7 runs widget messages on a
  subshell thread), and
* with that setting disabled (every widget message waits for the running cell, as with
  ipykernel 6 or a front end without subshells),

it reports the most audio the page showed as waiting, how late the kernel got the latest chunk,
how long after the cell ended the page's backlog was gone (all audio acknowledged and handed to
the session: the "Kernel busy" line disappears), and when the transcript of the speech spoken
during the cell reached the kernel, counted from the cell's end. "Gone" is the first time the
page showed less than 0.5 s waiting after it had shown at least 1 s: a MutationObserver on the
widget's ``data-waiting`` attribute stamps every value the page showed with ``Date.now()``
(same clock as the kernel's ``time.time()``), so the time is exact, not late by a polling
interval and two page round trips (how it was measured up to the 2026-12-01 section of
``results/browser.txt``).

``--quick`` (about 80 s; what ``run_all.py --quick`` reads: both paths' audio-to-partial medians
and the backlog without subshells): one round of 2 utterances per path, and only the busy cell
without subshells, after 3 s of steady state instead of one loop, with the transcript of the
busy time awaited (bounded) instead of a loop's fixed wait.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from figure import load_file  # noqa: E402

SHARED = Path(os.environ.get("LIVETX_SHARED", REPO.parent / "shared"))
SPEECH = SHARED / "audio" / "short-16k.wav"
RESULTS = REPO / "benchmarks" / "results" / "browser.txt"
LOOP_S = 10.1  # 3 s silence + 4.1 s speech + 3 s silence
NB = ".jp-NotebookPanel:visible"
CSS = ".jp-NotebookPanel"
SUBSHELLS = "@jupyterlab/apputils-extension:kernels-settings"


def load_harness():
    """The browser-test harness (tests/ui/conftest.py): servers, Chromium flags, helpers."""
    return load_file("ui_harness", REPO / "tests/ui/conftest.py")


def write_loop_wav(path: Path) -> Path:
    with wave.open(str(SPEECH), "rb") as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    silence = np.zeros(48000, "<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate([silence, speech, silence]).tobytes())
    return path


@contextlib.contextmanager
def pulseaudio(tmp: Path):
    """A private PulseAudio daemon with a null sink as the default source (as in the tests)."""
    runtime = tmp / "pulse"
    runtime.mkdir()
    os.environ["PULSE_RUNTIME_PATH"] = str(runtime)
    os.environ["PULSE_SERVER"] = f"unix:{runtime}/native"
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n",
         "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=vmic",
         "--load=module-always-sink"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], capture_output=True, timeout=5).returncode:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError("pulseaudio did not start")
            time.sleep(0.05)  # polling a daemon's socket: no event to wait on
        subprocess.run(["pactl", "set-default-source", "vmic.monitor"], check=True,
                       capture_output=True, timeout=5)  # fmt: skip
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)


@contextlib.contextmanager
def lab_setting(server, plugin: str, values: dict):
    url = f"{server.base_url}/lab/api/settings/{plugin}"
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}

    def put(raw: str) -> None:
        body = json.dumps({"raw": raw}).encode()
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers, method="PUT"), timeout=10
        ):
            pass

    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        before = json.loads(r.read()).get("raw") or "{}"
    put(json.dumps(values))
    try:
        yield
    finally:
        put(before)


# The kernel side: wrapper sources that keep the audio the session read, event recording, and
# the onset / latency computation (run in the kernel, results come back as JSON).
KERNEL_SETUP = r'''
import time
import numpy as np
from livetx_widgets import LiveTranscriber, BrowserMicrophone, Microphone
from livetx_widgets.audio import AudioSource

class TapBrowser(BrowserMicrophone):
    """The browser microphone, keeping what the session reads."""
    def __init__(self):
        super().__init__()
        self.pcm = bytearray()
    def read(self, timeout=None):
        chunk = super().read(timeout)
        if chunk:
            self.pcm += chunk
        return chunk
    def capture_time(self, s):
        return self.captured_at(s)

class TapMic(AudioSource):
    """The kernel microphone, keeping what the session reads and when pyaudio gave it."""
    live = True
    def __init__(self, device):
        super().__init__()
        self.mic = Microphone(device)
        self.pcm = bytearray()
        self.times = []  # (stream seconds at the chunk's end, wall time it was handed over)
    def start(self):
        self.mic.start()
    def read(self, timeout=None):
        chunk = self.mic.read(timeout)
        if chunk:
            self.pcm += chunk
            self.position_s = len(self.pcm) / 32000
            self.times.append((self.position_s, time.time()))
        return chunk
    def stop(self):
        self.mic.stop()
    def capture_time(self, s):
        for end, wall in self.times:
            if end >= s:
                return wall - (end - s)
        return None

EVENTS = []
def listen(w):
    w.session.on("partial", lambda e: EVENTS.append(("p", time.time(), e.start, e.end, e.text)))
    w.session.on("final", lambda s: EVENTS.append(("f", time.time(), s.start, s.end, s.text)))
    return True

def utterances(pcm, on=10 ** (-34 / 20), quiet_frames=100):
    """(onset, end) stream seconds of each utterance preceded by >= 1 s below the threshold."""
    x = np.frombuffer(bytes(pcm), "<i2").astype(np.float32) / 32768
    n = len(x) // 160
    e = np.sqrt((x[: n * 160].reshape(n, 160) ** 2).mean(axis=1))
    out, quiet, start, last = [], 0, None, None
    for i, v in enumerate(e):
        if v > on:
            if start is None and quiet >= quiet_frames:
                start = i
            last = i
            quiet = 0
        else:
            quiet += 1
            if start is not None and quiet >= quiet_frames:
                out.append((start * 0.01, (last + 1) * 0.01))
                start = None
    return out

def latencies(src, t_from, t_to):
    """Per utterance: audio-to-first-partial and end-of-speech-to-final, seconds."""
    rows = []
    for onset, end in utterances(src.pcm):
        t_on, t_end = src.capture_time(onset), src.capture_time(end)
        if t_on is None or t_end is None or not (t_from <= t_on <= t_to):
            continue
        p = next((t for k, t, s, e, txt in EVENTS if k == "p" and txt.strip() and t > t_on), None)
        f = next((t for k, t, s, e, txt in EVENTS if k == "f" and txt.strip() and t > t_end), None)
        if p is not None and p < t_on + 8:
            rows.append({"partial": p - t_on, "final": None if f is None else f - t_end,
                         "t_on": t_on})
    return rows
'''

# The page side: every text the widget's partial line shows, stamped with Date.now() when the
# DOM changed (a MutationObserver fires before the next paint; same clock as time.time()).
# Every value the widget's "audio waiting" took, stamped like DOM_WATCH (widget.js sets
# data-waiting on each change of the page's ack or queue, and on each chunk it sends).
WAITING_WATCH = """(el) => {
  const seen = (window.__livetxWaiting = [[Date.now() / 1000, el.dataset.waiting || '0']]);
  const note = () => seen.push([Date.now() / 1000, el.dataset.waiting || '0']);
  new MutationObserver(note).observe(el, {attributes: true, attributeFilter: ['data-waiting']});
  return true;
}"""


def backlog_gone(shown: list) -> tuple[float, float | None]:
    """(most seconds shown waiting, when it first showed < 0.5 s after showing >= 1 s)."""
    most, gone = 0.0, None
    for t, text in shown:
        waiting = float(text)
        most = max(most, waiting)
        if most >= 1.0 and waiting < 0.5 and gone is None:
            gone = t
    return most, gone


DOM_WATCH = """(el) => {
  const line = el.querySelector('.livetx-partial');
  const seen = (window.__livetxPartials = []);
  const note = () => seen.push([Date.now() / 1000, line.textContent || '']);
  new MutationObserver(note).observe(line, {childList: true, characterData: true, subtree: true});
  return true;
}"""


def dom_latencies(rows: list[dict], shown: list) -> None:
    """Add ``dom``: the first non-empty partial text in the page after each onset, minus it."""
    for row in rows:
        t_on = row["t_on"]
        first = next((t for t, text in shown if text.strip() and t > t_on), None)
        row["dom"] = None if first is None or first > t_on + 8 else first - t_on


class Bench:
    def __init__(self, h, server, page, nb) -> None:
        self.h, self.server, self.page, self.nb = h, server, page, nb

    def eval(self, code: str, timeout_s: float = 60):
        return self.h.kernel_eval(self.server, self.nb, code, timeout_s=timeout_s)

    def show(self, name: str, source_code: str):
        """Display ``name = LiveTranscriber(...)`` in a new cell; return its widget locator."""
        h, page = self.h, self.page
        n = h.add_cell(page, f"{name} = LiveTranscriber(provider='local', source={source_code})"
                             f"\n{name}")  # fmt: skip
        page.keyboard.press("Shift+Enter")
        widget = h.cell(page, n).locator(".livetx")
        widget.wait_for(timeout=60_000)
        h.wait_idle(page)
        return widget

    def status(self, widget, pattern: str, timeout_s: float = 60) -> None:
        import re

        from playwright.sync_api import expect

        expect(widget.locator(".livetx-status-text")).to_have_text(
            re.compile(pattern), timeout=timeout_s * 1000
        )

    def run_path(self, kind: str, loops: int, wav: Path) -> list[dict]:
        name = f"w_{kind}_{int(time.time() * 1000) % 100000}"
        source = "TapBrowser()" if kind == "browser" else "TapMic('pulse')"
        widget = self.show(name, source)
        self.page.mouse.move(1, 1)
        widget.evaluate(DOM_WATCH)
        widget.locator(".livetx-start").click()
        self.status(widget, "^Live")
        self.eval(f"EVENTS.clear()\nlisten({name})")
        t_from = time.time()
        if kind == "browser":
            time.sleep(loops * LOOP_S + 1.5)  # the fake microphone loops by itself
        else:
            for _ in range(loops):
                subprocess.run(["paplay", "-d", "vmic", str(wav)], check=True, timeout=60)
            time.sleep(1.5)
        t_to = time.time() - 4.0  # utterances starting later may not have their final yet
        rows = self.eval(f"latencies({name}.session.source, {t_from}, {t_to})")
        dom_latencies(rows, self.page.evaluate("() => window.__livetxPartials || []"))
        widget.locator(".livetx-stop").click()
        self.status(widget, "^Stopped", 30)
        return rows

    def busy(self, seconds: float, *, steady_s: float = LOOP_S, quick: bool = False) -> dict:
        """A browser-path session; a cell sleeps ``seconds``; what the page and kernel saw.

        ``quick``: the transcript of the busy time is awaited (at most a loop) rather than
        waited for a loop."""
        h, page = self.h, self.page
        name = f"w_busy_{int(time.time() * 1000) % 100000}"
        widget = self.show(name, "TapBrowser()")
        page.mouse.move(1, 1)
        widget.locator(".livetx-start").click()
        self.status(widget, "^Live")
        self.eval(f"EVENTS.clear()\nlisten({name})")
        time.sleep(steady_s)  # steady state
        widget.evaluate(WAITING_WATCH)
        n = h.add_cell(page, f"import time\nt_busy = (time.time(), time.sleep({seconds}), "
                             "time.time())\nprint('SLEPT')")  # fmt: skip
        page.keyboard.press("Shift+Enter")
        out = h.cell(page, n).locator(".jp-OutputArea-output", has_text="SLEPT")
        out.wait_for(timeout=(seconds + 30) * 1000)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the page shows less than 0.5 s waiting
            if float(page.evaluate("() => window.__livetxWaiting.at(-1)[1]")) < 0.5:
                break
            time.sleep(0.1)  # the observer has the exact times; this only waits for them
        query = (
            f"src = {name}.session.source\n"
            "t0, _, t1 = t_busy\n"
            "spoken = [(s, e) for s, e in utterances(src.pcm)"
            " if t0 <= src.capture_time(s) <= t1]\n"
            "firsts = [next((t for k, t, s, e, x in EVENTS if x.strip() and e > on), None)"
            " for on, _ in spoken]\n"
            "dict(t1=t1, firsts=firsts, stats=src.stats())"
        )  # fmt: skip
        if quick:
            end = time.monotonic() + LOOP_S
            got = self.eval(query)
            while (not got["firsts"] or None in got["firsts"]) and time.monotonic() < end:
                time.sleep(0.5)  # the kernel has no callback to the benchmark: poll it, bounded
                got = self.eval(query)
        else:
            time.sleep(LOOP_S)  # let the speech of the busy time be transcribed
            got = self.eval(query)
        waiting_max, t_drop = backlog_gone(page.evaluate("() => window.__livetxWaiting"))
        widget.locator(".livetx-stop").click()
        self.status(widget, "^Stopped", 30)
        heard = [t - got["t1"] for t in got["firsts"] if t is not None]
        drained = None if t_drop is None else t_drop - got["t1"]
        return {
            "waiting_max": waiting_max, "drained": drained, "stats": got["stats"],
            "first_result_after_end": min(heard) if heard else None,
            "utterances_during": len(got["firsts"]),
        }  # fmt: skip


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values):5.2f} s  min {min(values):5.2f}  "
            f"max {max(values):5.2f}  (n={len(values)})")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true",
                    help="one round, 2 utterances per path, busy cell without subshells only")
    ap.add_argument("--save", action="store_true", help=f"also write {RESULTS}")
    args = ap.parse_args()
    rounds, loops = (1, 2) if args.quick else (2, 3)
    for tool in ("pulseaudio", "pactl", "paplay", "/usr/bin/chromium"):
        if not shutil.which(tool):
            print(f"{tool} not found: apt-get install pulseaudio pulseaudio-utils chromium")
            return 2
    from playwright.sync_api import sync_playwright

    ui = load_harness()
    h = ui.UI
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                            capture_output=True, check=False).stdout.strip() or "?"  # fmt: skip
    say(f"Browser microphone benchmark (benchmarks/browser.py{' --quick' if args.quick else ''})")
    say(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="livetx-bench-") as tmp_s:
        tmp = Path(tmp_s)
        wav = write_loop_wav(tmp / "sentence-loop.wav")
        with pulseaudio(tmp), ui.run_jupyter("lab", tmp / "jupyter") as server, \
                sync_playwright() as pw:  # fmt: skip
            browser = pw.chromium.launch(
                executable_path=ui.CHROMIUM, headless=True, args=ui.chromium_args(wav)
            )
            try:
                nb = h.write_notebook(server, "bench.ipynb", [KERNEL_SETUP + "\nprint('SET')"])
                context, page, _log = h.new_page(browser)
                h.open_notebook(page, server, nb)
                h.run_cell(page, 0)
                h.wait_for_output(page, "SET", cell=0, timeout_s=60)
                bench = Bench(h, server, page, nb)
                results: dict[str, list[dict]] = {"browser": [], "kernel": []}
                for r in range(rounds):
                    for kind in ("browser", "kernel"):
                        rows = bench.run_path(kind, loops, wav)
                        print(f"round {r + 1} {kind}: {rows}", flush=True)
                        results[kind] += rows
                say()
                say("1. Same WAV (sentence every 10.1 s), same offline engine (whisper tiny.en), "
                    f"{rounds} round(s) x {loops} utterances per path, alternating")  # fmt: skip
                for kind, label in (("browser", "browser mic (page -> comm)"),
                                    ("kernel", "kernel mic (PulseAudio)")):  # fmt: skip
                    rows = results[kind]
                    say(f"  {label:28s} audio-to-partial {summary([x['partial'] for x in rows])}")
                    dom = [x["dom"] for x in rows if x.get("dom") is not None]
                    say(f"  {'':28s} audio-to-DOM     {summary(dom)}")
                    lag = [x["dom"] - x["partial"] for x in rows if x.get("dom") is not None]
                    say(f"  {'':28s} kernel-to-DOM    {summary(lag)}")
                    finals = [x["final"] for x in rows if x["final"] is not None]
                    say(f"  {'':28s} speech-end-to-final {summary(finals)}")
                bp = [x["partial"] for x in results["browser"]]
                kp = [x["partial"] for x in results["kernel"]]
                if bp and kp:
                    say(f"  browser minus kernel, median audio-to-partial: "
                        f"{statistics.median(bp) - statistics.median(kp):+.2f} s")  # fmt: skip

                busy_s = 10.0
                say()
                say(f"2. Backlog after a {busy_s:.0f} s busy cell (time.sleep) on the browser path")
                steady = 3.0 if args.quick else LOOP_S
                default = None if args.quick else bench.busy(busy_s)
                context.close()
                with lab_setting(server, SUBSHELLS, {"commsOverSubshells": "disabled"}):
                    context, page, _log = h.new_page(browser)
                    h.open_notebook(page, server, nb)
                    bench.page = page
                    h.run_cell(page, 0)
                    h.wait_for_output(page, "SET", cell=0, timeout_s=60)
                    main_shell = bench.busy(busy_s, steady_s=steady, quick=args.quick)
                    context.close()
                for label, res in (("comms over subshells (JupyterLab default)", default),
                                   ("comms on the main shell (subshells off)", main_shell)):
                    if res is None:
                        say(f"  {label}: not measured with --quick")
                        continue
                    st = res["stats"]
                    first = res["first_result_after_end"]
                    say(f"  {label}:")
                    gone = ("never behind" if res["drained"] is None else
                            f"backlog gone {res['drained']:.2f} s after the cell ended")
                    say(f"    most audio shown waiting {res['waiting_max']:.1f} s; latest chunk "
                        f"reached the kernel {st['max_late_s']:.1f} s late; {gone}")
                    say(f"    transcript of speech spoken during the cell "
                        f"({res['utterances_during']} utterance(s)): first result "
                        + ("n/a" if first is None else f"{first:+.2f} s")
                        + " from the cell's end (negative: while it ran)")
                    say(f"    chunks {st['chunks']}, gaps {st['gaps']}, reordered "
                        f"{st['reordered']}, duplicates {st['duplicates']}")  # fmt: skip
            finally:
                browser.close()
    say(f"load average {os.getloadavg()[0]:.2f} at end")
    if args.save:
        save(lines)
    return 0


def save(lines: list[str]) -> None:
    """Put this run at the top of ``results/browser.txt``, the earlier runs below it: history
    is kept, and ``run_all.py --collect`` (which reads the first figures) reads this run."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    earlier = RESULTS.read_text() if RESULTS.exists() else ""
    text = "\n".join(lines) + "\n"
    if earlier.strip():
        text += "\n" + "=" * 96 + "\nEarlier runs (newest first)\n\n" + earlier
    RESULTS.write_text(text)
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
