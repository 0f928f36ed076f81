"""capture.js inside an anywidget in JupyterLab 4 and Notebook 7: the path LiveTranscriber's
browser microphone takes, proven before the widget exists.

A small probe widget's ``_esm`` is capture.js followed by a ``render`` (anywidget serves a
widget as one module, so the capture code must be in the same text). A real click on its
button starts capture; each chunk goes to the kernel as a custom message with the PCM as a
binary buffer; Stop flushes, and the kernel answers with how many chunks it holds. The test
then reads the chunks back from the kernel and checks sequence, size, timing and content.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

pytestmark = pytest.mark.ui

PROBE = r'''
import base64, pathlib, threading, time
import anywidget
import livetx_widgets.ui

CAPTURE_JS = (pathlib.Path(livetx_widgets.ui.__file__).parent / "static" / "capture.js").read_text()
RENDER_JS = """
export default {
  render({ model, el }) {
    const button = document.createElement("button");
    button.className = "probe-button";
    button.textContent = "Start";
    const status = document.createElement("span");
    status.className = "probe-status";
    status.textContent = captureSupport() || "ready";
    el.append(button, status);
    let capture = null;
    let sent = 0;
    model.on("msg:custom", (msg) => {
      if (msg.type === "ack") status.textContent = `kernel has ${msg.chunks} chunks`;
    });
    button.addEventListener("click", () => {
      if (capture) {  // Stop
        const running = capture;
        capture = null;
        running.then((h) => h.stop()).then(() => model.send({ type: "stopped", sent }));
        return;
      }
      // Start: startCapture is called synchronously in the click handler (user gesture).
      capture = startCapture({
        chunkMs: 100,
        onChunk: (pcm, meta) => {
          model.send({ type: "audio", ...meta }, undefined, [pcm]);
          status.dataset.sent = String(++sent);
        },
        onError: (e) => model.send({ type: "error", kind: e.kind, message: e.message }),
      });
      capture.then(
        (h) => {
          status.textContent = `capturing from ${h.deviceLabel}`;
          button.textContent = "Stop";
        },
        (e) => { status.textContent = `${e.kind}: ${e.message}`; capture = null; },
      );
    });
  },
};
"""


class Probe(anywidget.AnyWidget):
    _esm = CAPTURE_JS + RENDER_JS

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.chunks = []  # (kernel receive time, meta, pcm)
        self.errors = []
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget, content, buffers):
        kind = content.get("type")
        if kind == "audio":
            with self.lock:
                self.chunks.append((time.time(), content, bytes(buffers[0])))
        elif kind == "error":
            self.errors.append(content)
        elif kind == "stopped":
            self.send({"type": "ack", "chunks": len(self.chunks), "sent": content["sent"]})

    def report(self):
        with self.lock:
            chunks = list(self.chunks)
        return {
            "metas": [meta for _t, meta, _pcm in chunks],
            "sizes": [len(pcm) for _t, _meta, pcm in chunks],
            "latency_ms": [t * 1000 - meta["capturedAt"] for t, meta, _pcm in chunks],
            "pcm": base64.b64encode(b"".join(pcm for _t, _m, pcm in chunks)).decode(),
            "errors": self.errors,
        }


probe = Probe()
display(probe)
print("PROBE-READY")
'''


def test_browser_audio_reaches_the_kernel_as_binary_chunks(jupyter, page, h, short_wav):
    from playwright.sync_api import expect

    name = h.write_notebook(jupyter, f"capture-probe-{jupyter.kind}.ipynb", [PROBE])
    h.open_notebook(page, jupyter, name)
    h.run_cell(page, 0)
    h.wait_for_output(page, "PROBE-READY", cell=0)
    status = page.locator(".jp-NotebookPanel:visible .probe-status")
    expect(status).to_have_text("ready")  # a secure page (127.0.0.1): captureSupport() is null
    button = page.locator(".jp-NotebookPanel:visible .probe-button")

    button.click()
    expect(status).to_contain_text("capturing from Fake Default Audio Input")
    page.wait_for_function(
        "() => Number(document.querySelector('.probe-status').dataset.sent || 0) >= 45",
        timeout=30_000,
    )
    shot = h.screenshot(page, f"capture-probe-{jupyter.kind}")
    button.click()  # Stop
    expect(status).to_have_text(re.compile(r"kernel has \d+ chunks"))
    held = int(status.inner_text().split()[2])

    report = h.kernel_eval(jupyter, name, "probe.report()")
    metas, sizes = report["metas"], report["sizes"]
    assert report["errors"] == []
    assert len(metas) == held >= 46  # 45 before Stop (> one loop), then the flushed one
    assert [m["seq"] for m in metas] == list(range(len(metas)))
    assert sizes[:-1] == [3200] * (len(sizes) - 1) and metas[-1]["last"]
    assert sizes[-1] == 2 * metas[-1]["samples"]
    # Same machine, same clock: the kernel has each chunk well within a second.
    latency = np.median(report["latency_ms"])
    assert 0 <= latency < 1000, report["latency_ms"]
    print(f"{jupyter.kind}: browser capture -> kernel latency median {latency:.1f} ms, "
          f"max {max(report['latency_ms']):.1f} ms over {len(metas)} chunks")  # fmt: skip

    pcm = np.frombuffer(base64.b64decode(report["pcm"]), dtype="<i2") / 32768.0
    score, _lag = h.loop_alignment(pcm, h.read_wav(short_wav))
    assert score > 0.9, f"envelope correlation {score:.3f}: not the WAV's speech"
    assert shot.stat().st_size > 10_000
