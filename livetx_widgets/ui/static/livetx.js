// Built from static/capture.js + static/host.js + static/common.js + static/widget.js by livetx_widgets/ui/assets.py.
// Browser microphone capture for LiveTranscriber: plain modern JS, no build step, no deps.
//
// getUserMedia -> AudioContext -> AudioWorklet (inlined below) that downmixes to mono,
// low-pass filters and resamples to 16 kHz with a polyphase windowed-sinc (Kaiser) filter,
// converts to 16-bit little-endian PCM and posts fixed-size chunks (`chunkMs`, 20-1000 ms)
// plus a level for a meter. The worklet's source is a string loaded through a Blob URL
// because anywidget serves a widget as ONE module: a second file could not be imported by a
// relative URL. For the same reason this module imports nothing and its top-level names are
// distinctive, so the widget can be built by concatenating capture.js and widget.js.
//
// Exports:
//   captureSupport() -> null | string            why capture cannot work on this page
//   listInputDevices() -> [{deviceId, label, labelled, groupId, isDefault}]
//   startCapture({deviceId, chunkMs, onChunk, onLevel, onError}) -> handle
//       handle: {stop(), sampleRate, inputSampleRate, deviceId, deviceLabel, chunkMs}
//       onChunk(pcm: ArrayBuffer, meta: {seq, capturedAt, contextTime, samples, last})
//       onLevel({rms, peak, dbfs})        ~20 times a second, from the 16 kHz signal
//       onError(CaptureError)             a failure after start (device gone, context died);
//                                         call stop() then, to release what is still open
//   seq counts chunks from 0 for each startCapture (a gap means lost audio); capturedAt is
//   Date.now() in the audio thread when the chunk's last sample arrived (epoch ms);
//   contextTime is the AudioContext clock then (s); stop() flushes a last, shorter chunk
//   (possibly empty) with last=true before it resolves.
//   describeCaptureError(err) -> CaptureError   any getUserMedia / Web Audio error, mapped
//   CaptureError: Error with .kind in CAPTURE_ERROR_KINDS and a message that says what to do
//
// startCapture must be called from the click handler of the Start button before any other
// await: the AudioContext is created synchronously inside the user gesture, because browsers
// only let a page start audio processing in response to a click (autoplay policy).

export const CAPTURE_SAMPLE_RATE = 16000;

export const CAPTURE_ERROR_KINDS = Object.freeze([
  "insecure", // the page is not a secure context: no navigator.mediaDevices
  "unsupported", // no getUserMedia / AudioContext / AudioWorklet in this browser
  "denied", // the user or the browser refused the microphone permission
  "no-device", // no input device, or the chosen one is gone
  "busy", // the device exists but could not be opened (in use, OS-level block)
  "suspended", // the browser would not start audio processing (no user gesture)
  "ended", // the device stopped during capture (unplugged, disabled, revoked)
  "bad-argument", // a wrong argument to startCapture (a programming error)
  "failed", // anything else; the message carries the browser's own error
]);

export class CaptureError extends Error {
  constructor(kind, message, cause) {
    super(message);
    this.name = "CaptureError";
    this.kind = kind;
    if (cause !== undefined) this.cause = cause;
  }
}

const CAPTURE_MESSAGES = {
  insecure: () =>
    "The browser microphone needs a secure page. This page is " +
    `${captureOrigin()}, which is not https:// or localhost, so the browser hides the ` +
    "microphone. Open Jupyter over https://, or through an SSH tunnel on localhost, " +
    "or use the kernel microphone or an audio file instead.",
  unsupported: (what) =>
    `This browser cannot capture audio in the page (${what} is missing). ` +
    "Use a current Chrome, Edge, Firefox or Safari, or use the kernel microphone.",
  denied: () =>
    "Microphone permission was denied. Allow the microphone for this page (click the " +
    "microphone or lock icon in the address bar, or open the site settings), check that " +
    "the system privacy settings allow the browser to use the microphone, then press " +
    "Start again. (A notebook embedded in another page also needs that page to allow " +
    "the microphone.)",
  "no-device": () =>
    "No microphone was found. Connect or enable a microphone (check the system sound " +
    "settings), then press Start again.",
  "device-gone": () =>
    "The chosen microphone is not available any more. Pick another one in the device " +
    "list, then press Start again.",
  busy: () =>
    "The microphone could not be opened: another application may be using it, or the " +
    "system blocked it. Close the other application or pick another device, then press " +
    "Start again.",
  suspended: () =>
    "The browser did not start audio processing. Browsers only start audio after a click " +
    "on the page: press Start again.",
  ended: () =>
    "The microphone stopped delivering audio (it was unplugged, disabled, or its " +
    "permission was revoked). Reconnect it or pick another device, then press Start again.",
  failed: (detail) => `The browser microphone failed: ${detail}.`,
};

// How long the browser may take to start a resumed AudioContext or to flush the worklet.
const CAPTURE_RESUME_TIMEOUT_MS = 3000;
const CAPTURE_FLUSH_TIMEOUT_MS = 1000;
const CAPTURE_LEVEL_MS = 50;

function captureOrigin() {
  try {
    return globalThis.location ? globalThis.location.origin : "this page";
  } catch {
    return "this page";
  }
}

function captureFail(kind, detail, cause) {
  return new CaptureError(kind, CAPTURE_MESSAGES[kind](detail), cause);
}

// Why capture cannot work here (a message for the user), or null when it can. Cheap and
// side-effect free, so the widget can grey out the "Browser microphone" choice with the
// reason as its tooltip. startCapture throws the same message as a CaptureError.
export function captureSupport() {
  const problem = captureProblem();
  return problem ? problem.message : null;
}

function captureProblem() {
  const nav = globalThis.navigator;
  const hasMediaDevices = !!(nav && nav.mediaDevices && nav.mediaDevices.getUserMedia);
  if (globalThis.isSecureContext === false) return captureFail("insecure");
  if (!hasMediaDevices) return captureFail("unsupported", "navigator.mediaDevices.getUserMedia");
  const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!AC) return captureFail("unsupported", "AudioContext");
  if (!globalThis.AudioWorkletNode || !("audioWorklet" in AC.prototype)) {
    return captureFail("unsupported", "AudioWorklet");
  }
  return null;
}

// Map any error thrown by getUserMedia or Web Audio to a CaptureError with a clear message.
export function describeCaptureError(err) {
  if (err instanceof CaptureError) return err;
  const name = (err && err.name) || "Error";
  const text = (err && err.message) || String(err);
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError": // old Chrome
    case "SecurityError":
      if (globalThis.isSecureContext === false) return captureFail("insecure", undefined, err);
      return captureFail("denied", undefined, err);
    case "NotFoundError":
    case "DevicesNotFoundError": // old Chrome
      return captureFail("no-device", undefined, err);
    case "OverconstrainedError":
    case "ConstraintNotSatisfiedError":
      // Only the deviceId constraint is exact: the chosen device has gone away.
      return new CaptureError("no-device", CAPTURE_MESSAGES["device-gone"](), err);
    case "NotReadableError":
    case "TrackStartError": // old Chrome
    case "AbortError":
      return captureFail("busy", undefined, err);
    default:
      return captureFail("failed", `${name}: ${text}`, err);
  }
}

// The audio inputs the browser offers. Labels are empty until the page has been granted the
// microphone once (a browser privacy rule); they are then filled as "Microphone N".
export async function listInputDevices() {
  const problem = captureProblem();
  if (problem) throw problem;
  let devices;
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch (err) {
    throw describeCaptureError(err);
  }
  const inputs = devices.filter((d) => d.kind === "audioinput");
  const hasDefault = inputs.some((d) => d.deviceId === "default");
  return inputs.map((d, i) => ({
    deviceId: d.deviceId,
    label: d.label || `Microphone ${i + 1}`,
    labelled: !!d.label,
    groupId: d.groupId,
    isDefault: d.deviceId === "default" || (i === 0 && !hasDefault),
  }));
}

// `promise`, or the string "timeout" after `ms` if it has not settled by then; the timer is
// always cleared. The one copy: widget.js uses it too (both files form one module today).
export function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function startCapture({
  deviceId = undefined,
  chunkMs = 100,
  onChunk,
  onLevel = undefined,
  onError = undefined,
} = {}) {
  if (typeof onChunk !== "function") {
    throw new CaptureError("bad-argument", "startCapture needs an onChunk(pcm, meta) function.");
  }
  if (!Number.isInteger(chunkMs) || chunkMs < 20 || chunkMs > 1000) {
    throw new CaptureError(
      "bad-argument",
      `chunkMs must be a whole number of milliseconds from 20 to 1000, not ${chunkMs}.`,
    );
  }
  const problem = captureProblem();
  if (problem) throw problem;

  // Synchronous part: still inside the user's click, so the browser lets the context run.
  const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
  let ctx;
  try {
    ctx = new AC({ latencyHint: "interactive" });
  } catch (err) {
    throw describeCaptureError(err);
  }
  const resumed = ctx.state === "running" ? Promise.resolve() : ctx.resume();
  resumed.catch(() => {}); // awaited below; no "unhandled rejection" if we fail before that

  let stream = null;
  let source = null;
  let node = null;
  let blobUrl = null;
  const cleanup = async () => {
    if (stream) for (const t of stream.getTracks()) t.stop();
    if (source) source.disconnect();
    if (node) {
      node.port.onmessage = null;
      node.port.close();
      node.disconnect();
    }
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    if (ctx.state !== "closed") await ctx.close().catch(() => {});
  };

  try {
    const audio = {
      channelCount: { ideal: 1 },
      echoCancellation: false,
      noiseSuppression: false,
      autoGainControl: false,
    };
    if (deviceId) audio.deviceId = { exact: deviceId };
    stream = await navigator.mediaDevices.getUserMedia({ audio });

    if ((await withTimeout(resumed, CAPTURE_RESUME_TIMEOUT_MS)) === "timeout") {
      throw captureFail("suspended");
    }
    if (ctx.state !== "running") throw captureFail("suspended");

    blobUrl = URL.createObjectURL(
      new Blob([CAPTURE_WORKLET_SOURCE], { type: "application/javascript" }),
    );
    await ctx.audioWorklet.addModule(blobUrl);
    URL.revokeObjectURL(blobUrl);
    blobUrl = null;

    source = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, "livetx-capture", {
      numberOfInputs: 1,
      // One silent output wired to the speakers: Chrome also pulls a node without outputs,
      // but Safari only runs processors that lead to the destination. Nothing is audible.
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers", // the graph itself averages stereo to mono
      processorOptions: {
        inRate: ctx.sampleRate,
        outRate: CAPTURE_SAMPLE_RATE,
        chunkSamples: (CAPTURE_SAMPLE_RATE * chunkMs) / 1000,
        levelSamples: (CAPTURE_SAMPLE_RATE * CAPTURE_LEVEL_MS) / 1000,
      },
    });
  } catch (err) {
    await cleanup();
    throw describeCaptureError(err);
  }

  const track = stream.getAudioTracks()[0];
  const settings = (track && track.getSettings && track.getSettings()) || {};
  let stopped = false;
  let flushed = null; // resolves when the worklet has posted its last (short) chunk

  const report = (err) => {
    if (stopped || !onError) return;
    try {
      onError(err);
    } catch (e) {
      console.error("livetx capture: onError handler failed", e);
    }
  };

  node.port.onmessage = ({ data }) => {
    if (data.type === "chunk") {
      const meta = {
        seq: data.seq,
        capturedAt: data.capturedAt,
        contextTime: data.contextTime,
        samples: data.pcm.byteLength / 2,
        last: data.last,
      };
      try {
        onChunk(data.pcm, meta);
      } catch (e) {
        console.error("livetx capture: onChunk handler failed", e);
      }
      if (data.last && flushed) flushed.resolve();
    } else if (data.type === "level" && onLevel) {
      try {
        const dbfs = 20 * Math.log10(Math.max(data.rms, 1e-5)); // floor at -100 dBFS
        onLevel({ rms: data.rms, peak: data.peak, dbfs });
      } catch (e) {
        console.error("livetx capture: onLevel handler failed", e);
      }
    }
  };
  node.onprocessorerror = (event) =>
    report(captureFail("failed", `the audio processor crashed (${event.message || "error"})`));
  if (track) track.addEventListener("ended", () => report(captureFail("ended")));
  ctx.onstatechange = () => {
    if (!stopped && ctx.state === "closed") {
      report(captureFail("failed", "the browser closed the audio processing (AudioContext)"));
    }
  };
  source.connect(node);
  node.connect(ctx.destination);

  // Stop: flush the partial last chunk (so no captured audio is lost), then release the
  // device, the graph and the context. Idempotent; resolves when everything is released.
  let stopping = null;
  const stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (ctx.state === "running") {
        let resolve;
        const done = new Promise((r) => {
          resolve = r;
        });
        flushed = { resolve };
        node.port.postMessage({ type: "flush" });
        await withTimeout(done, CAPTURE_FLUSH_TIMEOUT_MS);
      }
      stopped = true;
      await cleanup();
    })();
    return stopping;
  };

  return {
    stop,
    sampleRate: CAPTURE_SAMPLE_RATE,
    inputSampleRate: ctx.sampleRate,
    chunkMs,
    deviceId: settings.deviceId || deviceId || "",
    deviceLabel: (track && track.label) || "Microphone",
  };
}

// The AudioWorklet processor. Runs on the audio rendering thread; it must not allocate per
// block. Design: a polyphase windowed-sinc low-pass resampler for the rational ratio
// outRate/inRate = L/M (48 kHz -> 16 kHz: L=1, M=3; 44.1 kHz -> 16 kHz: L=160, M=441).
// Cutoff 0.45 x the lower rate (7.2 kHz for 16 kHz out), 24 output periods of half-width,
// Kaiser beta 8 (~80 dB stopband): the 6.5-7.9 kHz transition leaves nothing to alias back
// below 8 kHz. Each phase is normalized to unit DC gain. Ratios whose L exceeds 1024 (odd
// context rates) use 1024 phases, the nearest phase per output: a timing error below
// 1/2048 of an input sample.
const CAPTURE_WORKLET_SOURCE = String.raw`
const BETA = 8.0;
const HALF_PERIODS = 24;
const MAX_PHASES = 1024;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

function besselI0(x) {
  let sum = 1, term = 1;
  for (let k = 1; k < 64; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

class LivetxCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.inRate = Math.round(o.inRate);
    this.outRate = o.outRate;
    const g = gcd(this.inRate, this.outRate);
    this.L = this.outRate / g; // output samples per M input samples
    this.M = this.inRate / g;
    this.phases = Math.min(this.L, MAX_PHASES);
    this.passthrough = this.inRate === this.outRate;

    // Filter design, in input-sample units.
    const low = Math.min(this.inRate, this.outRate);
    const fc = (0.45 * low) / this.inRate; // cutoff, cycles per input sample
    const half = (HALF_PERIODS * this.inRate) / low; // half-width in input samples
    this.K = Math.ceil(half);
    const taps = 2 * this.K;
    this.table = new Float32Array(this.phases * taps);
    const i0b = besselI0(BETA);
    for (let p = 0; p < this.phases; p++) {
      const frac = p / this.phases; // output position = base + frac (input samples)
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        const t = j - (this.K - 1) - frac; // tap at input base - K + 1 + j
        let w = 0;
        if (Math.abs(t) < half) {
          const r = t / half;
          const x = 2 * fc * t;
          const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
          w = 2 * fc * sinc * (besselI0(BETA * Math.sqrt(1 - r * r)) / i0b);
        }
        this.table[p * taps + j] = w;
        sum += w;
      }
      for (let j = 0; j < taps; j++) this.table[p * taps + j] /= sum;
    }

    // Input history: buf[i] holds input sample number bufStart + i. K - 1 zeros of history
    // let the first output (at input 0) use a full window.
    this.buf = new Float32Array(8192);
    this.bufStart = -(this.K - 1);
    this.bufLen = this.K - 1;
    this.base = 0; // input sample at or before the next output
    this.acc = 0; // next output is at base + acc / L

    this.chunkSamples = o.chunkSamples;
    this.levelSamples = o.levelSamples;
    this.newChunk();
    this.seq = 0;
    this.levelSum = 0;
    this.levelPeak = 0;
    this.levelCount = 0;
    this.flushing = false;
    this.done = false;
    this.port.onmessage = ({ data }) => {
      if (data && data.type === "flush") this.flushing = true;
    };
  }

  newChunk() {
    this.chunk = new ArrayBuffer(this.chunkSamples * 2);
    this.view = new DataView(this.chunk);
    this.filled = 0;
  }

  emit(y) {
    const s = y < -1 ? -1 : y > 1 ? 1 : y;
    this.view.setInt16(2 * this.filled, Math.round(s < 0 ? s * 32768 : s * 32767), true);
    this.filled++;
    const a = Math.abs(s);
    this.levelSum += s * s;
    if (a > this.levelPeak) this.levelPeak = a;
    if (++this.levelCount === this.levelSamples) {
      this.port.postMessage({
        type: "level",
        rms: Math.sqrt(this.levelSum / this.levelCount),
        peak: this.levelPeak,
      });
      this.levelSum = 0;
      this.levelPeak = 0;
      this.levelCount = 0;
    }
    if (this.filled === this.chunkSamples) this.post(false);
  }

  post(last) {
    const full = this.filled === this.chunkSamples;
    const pcm = full ? this.chunk : this.chunk.slice(0, 2 * this.filled);
    this.port.postMessage(
      {
        type: "chunk",
        seq: this.seq++,
        pcm,
        last,
        capturedAt: Date.now(),
        contextTime: currentTime + 128 / sampleRate,
      },
      [pcm],
    );
    this.newChunk();
  }

  process(inputs) {
    if (this.done) return false;
    const input = inputs[0];
    if (input && input.length > 0) {
      const n = input[0].length;
      const channels = input.length;
      if (this.bufLen + n > this.buf.length) {
        // Drop what no future output needs, then grow if still short.
        const keep = this.base - this.K + 1 - this.bufStart;
        if (keep > 0) {
          this.buf.copyWithin(0, keep, this.bufLen);
          this.bufLen -= keep;
          this.bufStart += keep;
        }
        if (this.bufLen + n > this.buf.length) {
          const bigger = new Float32Array(2 * (this.bufLen + n));
          bigger.set(this.buf.subarray(0, this.bufLen));
          this.buf = bigger;
        }
      }
      for (let i = 0; i < n; i++) {
        let v = 0;
        for (let c = 0; c < channels; c++) v += input[c][i];
        this.buf[this.bufLen + i] = v / channels;
      }
      this.bufLen += n;
      this.resample();
    }
    if (this.flushing) {
      this.post(true);
      this.done = true;
      return false;
    }
    return true;
  }

  resample() {
    const K = this.K, taps = 2 * K, L = this.L, M = this.M;
    const end = this.bufStart + this.bufLen; // one past the last input sample we have
    if (this.passthrough) {
      for (; this.base < end; this.base++) this.emit(this.buf[this.base - this.bufStart]);
      return;
    }
    const exact = this.phases === L;
    const step = Math.floor(M / L), rem = M % L;
    for (;;) {
      const p = exact ? this.acc : Math.round((this.acc * this.phases) / L) % this.phases;
      const shift = !exact && p === 0 && this.acc * 2 >= L ? 1 : 0; // rounded up to next sample
      if (this.base + shift + K >= end) break; // the window's last tap is not here yet
      const first = this.base + shift - K + 1 - this.bufStart;
      const off = p * taps;
      let y = 0;
      for (let j = 0; j < taps; j++) y += this.table[off + j] * this.buf[first + j];
      this.emit(y);
      this.base += step;
      this.acc += rem;
      if (this.acc >= L) {
        this.acc -= L;
        this.base += 1;
      }
    }
  }
}

registerProcessor("livetx-capture", LivetxCapture);
`;

// What the widgets' views need to run alike in Jupyter and in marimo: plain modern JS, no
// imports, distinctive top-level names (it is concatenated in front of widget.js and of
// compare.js by ui/assets.py, like capture.js).
//
// * livetxListen(model, handlers) registers [events, handler] pairs and returns the function
//   that removes them. "change:a change:b" in one call is a Backbone feature (Jupyter's
//   model); the anywidget front-end spec has one event name per call, and marimo's model
//   keys listeners by the exact string: a space-separated list would never fire there.
// * livetxHasFocus(node): focus also inside a shadow root (marimo renders a widget in one,
//   where document.activeElement is the shadow host, not the field).
// * livetxFollowRevision(model): marimo re-runs the cells that read a mo.ui.anywidget
//   element when the page changes its value, not when the kernel does. The kernel bumps the
//   small `revision` trait on a start, a committed final and an end (never on partials);
//   with host === "marimo" the page writes it back as `revision_seen`, once per page for all
//   views of one model (ui/marimo.py). In Jupyter it does nothing.

function livetxListen(model, handlers) {
  const names = (events) => events.split(" ").filter(Boolean);
  for (const [events, handler] of handlers) {
    for (const name of names(events)) model.on(name, handler);
  }
  return () => {
    for (const [events, handler] of handlers) {
      for (const name of names(events)) model.off(name, handler);
    }
  };
}

function livetxHasFocus(node) {
  const root = node.getRootNode ? node.getRootNode() : document;
  return (root.activeElement || document.activeElement) === node;
}

const LIVETX_ECHOED = new WeakMap(); // model -> the revision this page last wrote back

function livetxFollowRevision(model) {
  // Rendering a view is no change: only revisions that come after it are written back.
  if (!LIVETX_ECHOED.has(model)) LIVETX_ECHOED.set(model, model.get("revision"));
  return () => {
    const rev = model.get("revision");
    if (model.get("host") !== "marimo" || LIVETX_ECHOED.get(model) === rev) return;
    LIVETX_ECHOED.set(model, rev);
    model.set("revision_seen", rev);
    model.save_changes();
  };
}

// What both widget views draw and do alike: plain modern JS, no imports, concatenated in front
// of widget.js and of compare.js by ui/assets.py (anywidget serves one module per widget and
// cannot share imports between them), after capture.js and host.js.
//
// * h(tag, className, text), stamp(seconds): DOM and time helpers.
// * livetxMic(model, hooks): the browser microphone, the page side of ui/browser_link.py.
//   begin(id) starts capturing (call it inside the click: browsers only start audio from a
//   user gesture) and sends numbered chunks ({type: "audio", capture, seq, offset, samples,
//   capturedAt, last} + PCM buffer). The kernel acknowledges the highest seq it received in
//   `capture_stats` (throttled); sent minus acknowledged plus the kernel's own queue is the
//   audio waiting (waiting()). Past LIVETX_MAX_UNACKED_S of unacknowledged audio the page
//   stops sending (and counts it, unsentS) so a dead kernel cannot make the page grow without
//   bound: the kernel fills that hole with silence, so later audio keeps its time. A capture
//   that fails sends {type: "capture-error", capture, kind, message} and hooks.onFail(text).
//   Send window: past LIVETX_SEND_WINDOW_S of audio sent but not acknowledged (a running cell
//   holds the kernel's messages back) the page keeps further chunks, and sends them when the
//   kernel acknowledges again (follow(), on every capture_stats change), LIVETX_BATCH_CHUNKS
//   consecutive chunks to a message: {..., seq and offset of the first, chunks: [[samples,
//   capturedAt], ...]} + their PCM in one buffer (ui/browser_link.py splits it back). Why:
//   measured after a 10 s busy cell, the kernel handling a burst of 100 one-chunk messages
//   (each with its busy/idle status messages relayed to the page) took most of the backlog's
//   drain; ten messages carry the same audio. Ending a capture sends what is kept at once.
//   begin(id, {gated: true}) keeps the chunks until open(): a view that asks the kernel to
//   start only once the microphone is granted (compare.js) loses none of them.

const LIVETX_CHUNK_MS = 100; // browser audio per message
const LIVETX_MAX_UNACKED_S = 600; // page-side bound on audio sent but not acknowledged
const LIVETX_STOP_WAIT_MS = 3000; // ending a capture waits this long at most for the last chunk
const LIVETX_SEND_WINDOW_S = 1.0; // audio in flight (sent, not acknowledged) before the page keeps it
const LIVETX_BATCH_CHUNKS = 10; // chunks per message when sending kept audio (1 s: the kernel's limit)

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function stamp(seconds) {
  const s = Math.max(0, seconds || 0);
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function livetxMic(model, { onLevel = () => {}, onFail = () => {}, onChange = () => {},
                            onGranted = () => {}, deviceId = () => undefined } = {}) {
  const mic = { current: null }; // the capture this view runs: {id, handle, lastSent, ...}

  mic.ackOf = (state) => {
    const st = model.get("capture_stats") || {};
    return st.capture === state.id ? st.last_seq : -1;
  };

  // lastSent: the last chunk handed over (sent, or kept by the send window); sentSeq: the last
  // one actually sent; kept: chunks the window holds back, oldest first.
  function sendChunk(state, pcm, meta) {
    const offset = state.offset;
    state.offset += meta.samples;
    const unacked = ((meta.seq - mic.ackOf(state)) * LIVETX_CHUNK_MS) / 1000;
    if (unacked > LIVETX_MAX_UNACKED_S) {
      state.unsentS += meta.samples / 16000; // the kernel fills this hole with silence
    } else {
      state.kept.push({ pcm, seq: meta.seq, offset, samples: meta.samples,
                        capturedAt: meta.capturedAt, last: meta.last });
      state.lastSent = meta.seq;
      pump(state, meta.last);
    }
    if (mic.current === state) onChange();
  }

  // Send what the window kept, unless more than LIVETX_SEND_WINDOW_S is still in flight
  // (force: send anyway, the capture is ending). All of it goes at once, in batches.
  function pump(state, force) {
    if (!state.kept.length) return;
    const inFlight = ((state.sentSeq - mic.ackOf(state)) * LIVETX_CHUNK_MS) / 1000;
    if (!force && inFlight > LIVETX_SEND_WINDOW_S) return;
    while (state.kept.length) {
      // Consecutive chunks only: a chunk dropped by the unacked bound leaves a hole whose
      // place the kernel finds from the next message's seq and offset.
      let n = 1;
      while (n < Math.min(LIVETX_BATCH_CHUNKS, state.kept.length)) {
        const prev = state.kept[n - 1];
        const next = state.kept[n];
        if (next.seq !== prev.seq + 1 || next.offset !== prev.offset + prev.samples) break;
        n++;
      }
      sendAudio(state, state.kept.splice(0, n));
    }
  }

  function sendAudio(state, chunks) {
    const first = chunks[0];
    const end = chunks[chunks.length - 1];
    const message = { type: "audio", capture: state.id, seq: first.seq, offset: first.offset,
                      samples: first.samples, capturedAt: end.capturedAt, last: end.last };
    let pcm = first.pcm;
    if (chunks.length > 1) {
      message.samples = chunks.reduce((sum, c) => sum + c.samples, 0);
      message.chunks = chunks.map((c) => [c.samples, c.capturedAt]);
      const joined = new Uint8Array(2 * message.samples);
      let at = 0;
      for (const c of chunks) {
        joined.set(new Uint8Array(c.pcm), at);
        at += c.pcm.byteLength;
      }
      pcm = joined.buffer;
    }
    model.send(message, undefined, [pcm]);
    state.sentSeq = end.seq;
  }

  function failed(state, err) {
    if (state.ended) return;
    onFail(`Audio input problem: ${err.message}`);
    model.send({ type: "capture-error", capture: state.id, kind: err.kind, message: err.message });
    mic.end(state);
  }

  // sawRunning: the session was seen running, so "not running" now means it ended.
  mic.begin = (id, { gated = false } = {}) => {
    const state = { id, handle: null, lastSent: -1, sentSeq: -1, kept: [], offset: 0,
                    unsentS: 0, ended: false, sawRunning: false, held: gated ? [] : null };
    mic.current = state;
    // Synchronous up to its first await: startCapture creates its AudioContext inside the
    // user's click.
    state.handle = startCapture({
      deviceId: deviceId() || undefined,
      chunkMs: LIVETX_CHUNK_MS,
      onChunk: (pcm, meta) => {
        if (state.held) state.held.push([pcm, meta]);
        else sendChunk(state, pcm, meta);
      },
      onLevel: (level) => {
        if (mic.current === state) onLevel(level.dbfs);
      },
      onError: (err) => failed(state, err),
    });
    state.handle.then(
      () => {
        if (!state.ended) onGranted(state); // device names are readable once granted
      },
      (err) => failed(state, describeCaptureError(err)),
    );
    return state;
  };

  // Start clicked (call it inside the click): a fresh capture, the previous one ended; null
  // when this browser cannot capture here (onFail says why).
  mic.restart = (id, options) => {
    const problem = captureSupport();
    if (problem) {
      onFail(`Audio input problem: ${problem}`);
      return null;
    }
    if (mic.current) mic.end(mic.current);
    return mic.begin(id, options);
  };

  // A gated capture: send what was held, then every chunk as it comes.
  mic.open = (state) => {
    const held = state.held || [];
    state.held = null;
    for (const [pcm, meta] of held) sendChunk(state, pcm, meta);
  };

  // Stop capturing; resolves once the last (flushed) chunk has been sent, or after
  // LIVETX_STOP_WAIT_MS if the browser never finishes opening the device.
  mic.end = (state) => {
    state.ended = true;
    pump(state, true); // what the window kept goes now (a closing tab may not wait for more)
    if (mic.current === state) {
      mic.current = null;
      onLevel(-100);
    }
    const stopped = state.handle.then((handle) => handle.stop()).catch(() => {});
    return withTimeout(stopped, LIVETX_STOP_WAIT_MS).then(() => onChange());
  };

  // Seconds of audio not acknowledged (sent, or kept by the send window), and queued in
  // the kernel.
  mic.waiting = () => {
    const st = model.get("capture_stats") || {};
    const cap = mic.current;
    let unacked = 0;
    let queued = 0;
    if (cap) unacked = (Math.max(0, cap.lastSent - mic.ackOf(cap)) * LIVETX_CHUNK_MS) / 1000;
    if (model.get("running") && st.capture && (!cap || st.capture === cap.id)) {
      queued = st.backlog_s || 0;
    }
    return { unacked, queued };
  };

  // The kernel's answers: a refused start or another view's capture ends this one.
  mic.onMessage = (msg) => {
    const cap = mic.current;
    if (msg.type === "start-result" && !msg.ok && cap && cap.id === msg.capture) mic.end(cap);
    else if (msg.type === "capture-stop" && cap && cap.id === msg.capture) mic.end(cap);
    else return false;
    return true;
  };

  // The kernel acknowledged (capture_stats changed): send what the window kept. The session
  // ended (Stop from code, an error, the provider closed): stop capturing.
  mic.follow = () => {
    const cap = mic.current;
    const running = model.get("running");
    if (cap) pump(cap, false);
    if (cap && running) cap.sawRunning = true;
    if (cap && !running && cap.sawRunning) mic.end(cap);
  };

  // The view goes away (cell re-run or cleared, notebook or tab closed): release the
  // microphone and tell the kernel, so that the run ends with what it received instead of
  // staying live on KeepAlive. A closed tab may not deliver the message; the kernel then
  // notices that no audio comes (browser_link.py, PAGE_GONE_S).
  mic.viewGone = () => {
    const state = mic.current;
    if (!state) return;
    mic.end(state).then(() => model.send({ type: "view-gone", capture: state.id }));
  };

  return mic;
}

// * livetxRows(list, maxRows, rowFor): the transcript rows a view keeps: at most maxRows()
//   of them in `list`, sorted by segment id, the oldest dropped first. upsert(seg) replaces a
//   revised segment's row in place and almost always appends, so an update costs the same at
//   minute 1 and hour 2; ids and rows (id -> element) are what is shown.
function livetxRows(list, maxRows, rowFor) {
  const kept = { ids: [], rows: new Map() };
  const { ids, rows } = kept;
  kept.clear = () => {
    ids.length = 0;
    rows.clear();
    list.replaceChildren();
  };
  kept.upsert = (seg) => {
    const row = rowFor(seg);
    const old = rows.get(seg.id);
    if (old) {
      old.replaceWith(row);
      rows.set(seg.id, row);
      return;
    }
    const max = maxRows();
    if (ids.length >= max && seg.id < ids[0]) return; // older than anything we keep
    let i = ids.length;
    while (i > 0 && ids[i - 1] > seg.id) i--; // almost always appends at the end
    if (i === ids.length) list.appendChild(row);
    else list.insertBefore(row, rows.get(ids[i]));
    ids.splice(i, 0, seg.id);
    rows.set(seg.id, row);
    while (ids.length > max) {
      const gone = ids.shift();
      rows.get(gone).remove();
      rows.delete(gone);
    }
  };
  return kept;
}

// * livetxClipPlayer(send, viewId, {mark, note}): a clicked row's audio (ui/playback.py).
//   request(key, fields) asks the kernel ({type: "play", ...fields, view, req}); its answer
//   to this view only ({type: "clip", view, req, ...} + one WAV buffer) plays in an <audio>
//   element (clip.el, to be put in the view). Requesting the key that plays stops it.
//   mark(playing) is called whenever that changes: null (nothing), then
//   {key, fields, state: "livetx-loading"}, then state "livetx-playing" with the clip's
//   message as `msg`; note(text) says why a click did not play (or that a long one is cut).
const LIVETX_CLIP_WAIT_MS = 8000; // a click waits this long for the kernel's clip

function livetxClipPlayer(send, viewId, { mark = () => {}, note = () => {} } = {}) {
  const el = h("audio", "livetx-player");
  el.preload = "auto";
  el.hidden = true;
  const clip = { el, playing: null, note: "" };
  let reqs = 0;
  const say = (text) => {
    clip.note = text || "";
    note(clip.note);
  };

  clip.stop = (text) => {
    const playing = clip.playing;
    if (playing) {
      clearTimeout(playing.timer);
      if (playing.url) URL.revokeObjectURL(playing.url);
    }
    clip.playing = null;
    el.pause();
    el.removeAttribute("src");
    mark(null);
    say(text);
  };

  clip.request = (key, fields) => {
    const again = clip.playing && clip.playing.key === key;
    clip.stop();
    if (again) return; // a click on the playing row stops it
    const req = ++reqs;
    const playing = { key, fields, req, state: "livetx-loading", url: "", msg: null };
    clip.playing = playing;
    playing.timer = setTimeout(() => {
      if (clip.playing === playing && !playing.url) {
        clip.stop("No answer from the kernel to play that segment: is it busy or gone?");
      }
    }, LIVETX_CLIP_WAIT_MS);
    mark(playing);
    send({ type: "play", ...fields, view: viewId, req });
  };

  clip.play = (msg, buffers) => {
    const playing = clip.playing;
    if (msg.view !== viewId || !playing || msg.req !== playing.req) return; // not ours / stale
    if (msg.error || !buffers || !buffers.length) {
      clip.stop(msg.error || "The kernel sent no audio for that segment.");
      return;
    }
    clearTimeout(playing.timer);
    playing.url = URL.createObjectURL(new Blob([buffers[0]], { type: "audio/wav" }));
    if (msg.label !== undefined) el.dataset.label = String(msg.label);
    el.dataset.id = String(msg.id);
    el.dataset.duration = String(msg.duration);
    el.src = playing.url;
    say(msg.truncated ? `Playing the first ${msg.duration.toFixed(0)} s of this segment.` : "");
    playing.state = "livetx-playing";
    playing.msg = msg;
    mark(playing);
    el.play().catch((err) => {
      if (clip.playing === playing) {
        clip.stop(`The browser did not play the audio (${err.name}): click the row again.`);
      }
    });
  };

  el.addEventListener("ended", () => clip.stop(clip.note));

  // A click on `container`: the row under it (selector), unless the user selects its text.
  clip.onClick = (container, selector, request) => {
    container.addEventListener("click", (event) => {
      const row = event.target.closest(selector);
      if (!row || !container.contains(row)) return;
      const selected = globalThis.getSelection?.();
      if (selected && !selected.isCollapsed && row.contains(selected.anchorNode)) return; // text
      request(row);
    });
  };
  return clip;
}

// LiveTranscriber front end: plain modern JS, no build step, no dependencies.
//
// State comes from small synced traits (status, elapsed, level, partial, menus). Final
// segments arrive as custom messages carrying only new or revised segments ("finals"), and
// once per render the view asks for the last rows ("hello" -> "tail"). The view keeps at most
// `max_rows` rows in the DOM, so its cost does not grow with the transcript either.
// Actions (start, stop, pause, resume, key, devices) go to the kernel as custom messages.
// An API key typed here is sent once and the field is cleared at once: it never stays in the
// DOM and never becomes a trait.
//
// This module is served after capture.js, host.js and common.js (one module, concatenated in
// Python by ui/assets.py), so their names are in scope; what both widgets' views do alike is
// there (common.js: h, stamp, the rows kept, the clip player, the browser microphone).
//
// Browser microphone (livetxMic, common.js): Start captures inside the click (browsers only
// start audio from a user gesture) and sends numbered chunks at once; the audio waiting (sent
// but not acknowledged, plus the kernel's queue) is shown as "Kernel busy" while a cell keeps
// the kernel from reading.
//
// Playback (livetxClipPlayer, common.js): clicking a row asks the kernel for that segment's
// audio ({type: "play", id, run, view, req}) and an <audio> element plays the answer.
// Clicking the playing row stops it.

const PROVIDERS = [
  ["auto", "Auto"],
  ["deepgram", "Deepgram"],
  ["assemblyai", "AssemblyAI"],
  ["local", "Offline"],
];
const SOURCES = [
  ["kernel", "Kernel mic"],
  ["browser", "Browser mic"],
  ["file", "File or URL"],
  ["custom", "Custom source"],
];
const BUSY = new Set(["connecting", "reconnecting", "stopping"]);
const BUSY_SHOW_S = 1.0; // show "kernel busy" past this much audio waiting...
const BUSY_HIDE_S = 0.4; // ...and hide it below this (no flicker)

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

function fillSelect(select, options, value) {
  select.replaceChildren(
    ...options.map(([v, label]) => {
      const option = h("option", "", label);
      option.value = String(v);
      return option;
    }),
  );
  select.value = String(value);
}

function render({ model, el }) {
  const root = h("div", "livetx");
  el.appendChild(root);
  const viewId = Math.random().toString(36).slice(2, 10);

  // -- controls -------------------------------------------------------------------------
  const bar = h("div", "livetx-bar");
  const provider = h("select", "livetx-provider");
  provider.title = "Provider";
  const modelSel = h("select", "livetx-model");
  modelSel.title = "Model";
  const source = h("select", "livetx-source");
  source.title = "Audio source";
  const device = h("select", "livetx-device");
  device.title = "Kernel microphone";
  const micSel = h("select", "livetx-browser-device");
  micSel.title = "Browser microphone";
  const refresh = h("button", "livetx-refresh", "↻");
  refresh.title = "List the microphones again";
  const file = h("input", "livetx-file");
  file.type = "text";
  file.placeholder = "talk.mp3 or https://…/stream";
  file.title =
    "An audio or video file on the kernel's machine (wav, mp3, m4a, ogg, opus, flac, webm, " +
    "mp4…), or a live stream URL (Icecast http(s)://…, HLS .m3u8)";
  const custom = h("span", "livetx-custom");
  bar.append(provider, modelSel, source, device, micSel, refresh, file, custom);

  const actions = h("div", "livetx-actions");
  const start = h("button", "livetx-start", "● Start");
  const pause = h("button", "livetx-pause", "Pause");
  const stop = h("button", "livetx-stop", "■ Stop");
  const finalize = h("button", "livetx-finalize", "Finalize now");
  finalize.title = "Ask the provider to commit what it has heard so far";
  const terms = h("input", "livetx-keyterms");
  terms.type = "text";
  terms.placeholder = "keyterms, comma separated";
  terms.title = "Words to recognise better; Enter applies them, also while recording";
  const status = h("span", "livetx-status");
  const dot = h("span", "livetx-dot");
  const statusText = h("span", "livetx-status-text");
  status.append(dot, statusText);
  const meter = h("span", "livetx-meter");
  meter.title = "Input level";
  const meterFill = h("span", "livetx-meter-fill");
  meter.appendChild(meterFill);
  actions.append(start, pause, stop, finalize, status, meter, terms);

  const progress = h("div", "livetx-progress");
  const progressTrack = h("span", "livetx-progress-track");
  const progressFill = h("span", "livetx-progress-fill");
  progressTrack.appendChild(progressFill);
  const progressText = h("span", "livetx-progress-text");
  progress.append(progressTrack, progressText);

  const keyRow = h("form", "livetx-key");
  const keyLabel = h("label", "livetx-key-label");
  const keyInput = h("input", "livetx-key-input");
  keyInput.type = "password";
  keyInput.autocomplete = "off";
  keyInput.spellcheck = false;
  keyInput.placeholder = "API key";
  const keyButton = h("button", "livetx-key-button", "Use key");
  keyButton.type = "submit";
  const keyHint = h("span", "livetx-key-hint");
  keyRow.append(keyLabel, keyInput, keyButton, keyHint);

  const notice = h("div", "livetx-notice");
  const warnings = h("div", "livetx-warnings"); // malformed/unknown provider messages
  const busy = h("div", "livetx-busy");
  busy.setAttribute("role", "status");
  const error = h("div", "livetx-error");
  error.setAttribute("role", "alert");

  const box = h("div", "livetx-transcript");
  const earlier = h("div", "livetx-earlier");
  const list = h("div", "livetx-rows");
  const partial = h("div", "livetx-partial");
  const empty = h("div", "livetx-empty", "Press Start and speak: the transcript appears here.");
  box.append(earlier, list, partial, empty);

  const footer = h("div", "livetx-footer");
  root.append(bar, actions, progress, keyRow, notice, warnings, busy, error, box, footer);

  // -- transcript rows (at most max_rows in the DOM) ------------------------------------
  let rowsRun = -1;
  let total = 0;
  const kept = livetxRows(list, () => model.get("max_rows"), rowFor); // common.js
  const { ids, rows } = kept; // sorted segment ids shown; id -> row element

  function rowFor(seg) {
    const row = h("div", seg.final === false ? "livetx-row livetx-unfinal" : "livetx-row");
    row.dataset.id = String(seg.id);
    row.title = "Click to play";
    const playing = clip.playing;
    if (playing && playing.fields.id === seg.id) row.classList.add(playing.state);
    const time = h("span", "livetx-time", stamp(seg.start));
    time.title = `${seg.start.toFixed(2)}–${seg.end.toFixed(2)} s`;
    row.appendChild(time);
    if (seg.speaker !== null && seg.speaker !== undefined && seg.speaker !== "") {
      const speaker = h("span", "livetx-speaker", String(seg.speaker));
      speaker.dataset.speaker = String(seg.speaker);
      row.appendChild(speaker);
    }
    const text = h("span", "livetx-text", seg.text);
    if (seg.confidence !== null && seg.confidence !== undefined) {
      text.title = `confidence ${seg.confidence.toFixed(2)}`;
    }
    row.appendChild(text);
    return row;
  }

  function nearBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 32;
  }

  function scrollIfStuck(stuck) {
    if (stuck) box.scrollTop = box.scrollHeight;
  }

  function onCustom(msg, buffers) {
    if (msg && msg.type === "clip") {
      clip.play(msg, buffers);
      return;
    }
    if (msg && mic.onMessage(msg)) return; // a refused start, another view's capture
    if (msg && msg.type === "capture") {
      // Started from code: capture without a click (works once the page has had one).
      if (!mic.current && model.get("source_kind") === "browser" && !captureSupport()) {
        begin(`${viewId}-${++captures}`).sawRunning = true;
      }
      return;
    }
    if (!msg || (msg.type !== "finals" && msg.type !== "tail")) return;
    if (msg.run < rowsRun) return; // a late message of an earlier session
    const stuck = nearBottom();
    if (msg.run !== rowsRun || msg.type === "tail") {
      kept.clear();
      rowsRun = msg.run;
    }
    for (const seg of msg.segments) kept.upsert(seg);
    total = Math.max(msg.total, ids.length);
    showCounts();
    scrollIfStuck(stuck);
  }

  function showRun() {
    // A new session (Start again): its transcript replaces the view at once.
    if (model.get("run") > rowsRun) {
      if (clip.playing) clip.stop(); // the previous session's audio is released
      kept.clear();
      rowsRun = model.get("run");
      total = 0;
      showCounts();
    }
  }

  function showCounts() {
    const hidden = total - ids.length;
    earlier.textContent = hidden > 0 ? `${hidden} earlier segment${hidden === 1 ? "" : "s"} not shown (all are in w.transcript)` : "";
    earlier.hidden = hidden <= 0;
    const n = model.get("n_finals");
    empty.hidden = ids.length > 0 || Boolean(model.get("partial"));
    let text = n ? `${n} segment${n === 1 ? "" : "s"}` : "";
    const st = model.get("capture_stats") || {};
    if (st.gap_s > 0) {
      text += `${text ? " · " : ""}${st.gap_s.toFixed(1)} s of audio lost on the way ` +
        "(filled with silence, timing kept)";
    }
    footer.textContent = text;
  }

  // -- trait -> DOM ---------------------------------------------------------------------
  function showMenus() {
    const running = model.get("running");
    fillSelect(provider, PROVIDERS, model.get("provider"));
    const models = model.get("models");
    fillSelect(modelSel, models.map((m) => [m, m]), model.get("model"));
    modelSel.hidden = models.length === 0;
    const kind = model.get("source_kind");
    fillSelect(
      source,
      SOURCES.filter(([v]) => v !== "custom" || kind === "custom"),
      kind,
    );
    const devices = model.get("devices");
    fillSelect(
      device,
      [[-1, devices.length ? "Default input" : "No microphone found"]].concat(
        devices.map((d) => [d.index, d.name]),
      ),
      model.get("device"),
    );
    device.hidden = kind !== "kernel";
    micSel.hidden = kind !== "browser";
    refresh.hidden = kind !== "kernel" && kind !== "browser";
    if (kind === "browser" && !micListed) listMics();
    file.hidden = kind !== "file";
    if (!livetxHasFocus(file)) file.value = model.get("file");
    custom.hidden = kind !== "custom";
    custom.textContent = model.get("source_label");
    for (const control of [provider, modelSel, source, device, micSel, refresh, file]) {
      control.disabled = running;
    }
  }

  function showStatus() {
    const state = model.get("status");
    const running = model.get("running");
    root.dataset.status = state;
    dot.className = `livetx-dot livetx-s-${state}${BUSY.has(state) ? " livetx-pulse" : ""}`;
    let text = model.get("status_text");
    const sid = model.get("session_id");
    if (sid && (state === "live" || state === "paused" || state === "stopped")) {
      text += ` · session ${sid.length > 12 ? sid.slice(0, 8) + "…" : sid}`;
      statusText.title = sid;
    }
    if (running || model.get("elapsed") > 0) text += ` · ${clock(model.get("elapsed"))}`;
    statusText.textContent = text;
    start.disabled = running;
    stop.disabled = !running || state === "stopping";
    pause.disabled = !running || !(state === "live" || state === "paused");
    pause.textContent = state === "paused" ? "Resume" : "Pause";
  }

  function drawLevel(db) {
    const fraction = Math.min(1, Math.max(0, (db + 60) / 60));
    meterFill.style.width = `${(fraction * 100).toFixed(1)}%`;
    meter.classList.toggle("livetx-hot", db > -3);
  }

  function showLevel() {
    if (mic.current) return; // the browser microphone draws its own level, from the page's audio
    drawLevel(20 * Math.log10(model.get("level") + 1e-9));
  }

  function showProgress() {
    const p = model.get("progress");
    progress.hidden = p < 0;
    progressFill.style.width = `${(Math.max(0, p) * 100).toFixed(1)}%`;
    progressText.textContent = `${clock(model.get("time_left"))} left`;
  }

  function showKey() {
    // Also after a refused key (the provider or a `livetx serve --api-key` said no), so that
    // another key can be pasted without touching the code.
    const refused = model.get("error").startsWith("API key refused") && !model.get("running");
    keyRow.hidden = !(model.get("needs_key") || refused);
    const env = model.get("key_env");
    keyLabel.textContent = refused ? "Another key" : "API key";
    keyHint.textContent = `kept in the kernel's memory only${env ? ` · or set ${env}` : ""}`;
  }

  function showMessages() {
    // The kernel's words first; the page's own (capture problems) when the kernel has none.
    let note = model.get("notice") || clip.note;
    if (!note && model.get("source_kind") === "browser" && !model.get("running")) {
      note = captureSupport() || "";
    }
    notice.textContent = note;
    notice.hidden = !note;
    const text = model.get("error") || pageError;
    error.textContent = text;
    error.hidden = !text;
    const n = model.get("n_warnings") || 0;
    warnings.textContent = n ? `⚠ ${n} provider message${n === 1 ? "" : "s"} ignored` : "";
    warnings.title = model.get("last_warning") || "";
    warnings.hidden = !n;
  }

  function showPartial() {
    const stuck = nearBottom();
    partial.textContent = model.get("partial");
    partial.hidden = !model.get("partial");
    showCounts();
    scrollIfStuck(stuck);
  }

  // -- browser microphone ---------------------------------------------------------------
  let captures = 0;
  let pageError = ""; // a capture problem, shown until the kernel has its own error
  let busyShown = false;
  let micListed = false;
  let chosenMic = "";

  async function listMics() {
    micListed = true;
    const problem = captureSupport();
    if (problem) {
      fillSelect(micSel, [["", "Browser microphone unavailable"]], "");
      micSel.title = problem;
      return;
    }
    try {
      const mics = await listInputDevices();
      const options = [["", "Default microphone"]].concat(
        mics.filter((m) => m.deviceId && m.deviceId !== "default").map((m) => [m.deviceId, m.label]),
      );
      if (!options.some(([v]) => v === chosenMic)) chosenMic = "";
      fillSelect(micSel, options, chosenMic);
      micSel.title = "Browser microphone";
    } catch (err) {
      fillSelect(micSel, [["", "No microphone found"]], "");
      micSel.title = describeCaptureError(err).message;
    }
  }

  const mic = livetxMic(model, { // common.js: the page side of ui/browser_link.py
    onLevel: (db) => drawLevel(db),
    onFail: (text) => {
      pageError = text;
      showMessages();
    },
    onChange: () => showBusy(),
    onGranted: () => listMics(), // device names are readable once permission is given
    deviceId: () => chosenMic,
  });

  function begin(id) {
    pageError = "";
    showMessages();
    return mic.begin(id); // inside the click: startCapture's AudioContext may start
  }

  function showBusy() {
    const cap = mic.current;
    const { unacked, queued } = mic.waiting();
    const waiting = unacked + queued;
    busyShown = busyShown ? waiting > BUSY_HIDE_S : waiting > BUSY_SHOW_S;
    busy.hidden = !busyShown;
    const what = unacked > queued ? "Kernel busy" : "Catching up";
    let text = `${what} — ${waiting.toFixed(1)} s of audio waiting`;
    const held = model.get("host") === "marimo"
      ? " (marimo runs widget messages between cells and has no kernel subshells: a running" +
        " cell holds the audio back; it is kept and transcribed when the cell ends)"
      : " (a running cell holds it back; it is kept and transcribed when the cell ends)";
    text += unacked > queued ? held : " (sending it to the provider)";
    if (cap && cap.unsentS > 0) {
      text += ` · ${cap.unsentS.toFixed(1)} s not sent: the kernel has not read audio for ` +
        `${LIVETX_MAX_UNACKED_S / 60} minutes`;
      busy.hidden = false;
    }
    busy.textContent = text;
    root.dataset.waiting = waiting.toFixed(1);
  }

  function showCapture() {
    mic.follow(); // the session ended (Stop from code, an error...): stop capturing
    showBusy();
    showCounts();
  }


  // -- playback (a clicked row) ---------------------------------------------------------
  const clip = livetxClipPlayer((message) => model.send(message), viewId, { // common.js
    mark: (playing) => {
      for (const row of list.querySelectorAll(".livetx-loading, .livetx-playing")) {
        row.classList.remove("livetx-loading", "livetx-playing");
      }
      if (playing) rows.get(playing.fields.id)?.classList.add(playing.state);
    },
    note: () => showMessages(),
  });
  root.appendChild(clip.el);
  clip.onClick(list, ".livetx-row", (row) => {
    const id = Number(row.dataset.id);
    clip.request(String(id), { id, run: rowsRun });
  });

  // -- DOM -> kernel --------------------------------------------------------------------
  const send = (message) => model.send(message);
  start.addEventListener("click", () => {
    pageError = "";
    if (model.get("source_kind") !== "browser") {
      send({ type: "start" });
      showMessages();
      return;
    }
    showMessages();
    const state = mic.restart(`${viewId}-${++captures}`); // first: still inside the click
    if (state) send({ type: "start", capture: state.id });
  });
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    const state = mic.current;
    if (state) await mic.end(state); // the last chunk goes out before "stop"
    send({ type: "stop" });
  });
  micSel.addEventListener("change", () => {
    chosenMic = micSel.value;
  });
  finalize.addEventListener("click", () => send({ type: "finalize" }));
  terms.addEventListener("change", () => setTrait("keyterms", terms.value.trim()));
  const showTerms = () => {
    if (!livetxHasFocus(terms)) terms.value = model.get("keyterms") || "";
    finalize.disabled = !model.get("running");
  };
  pause.addEventListener("click", () =>
    send({ type: model.get("status") === "paused" ? "resume" : "pause" }),
  );
  refresh.addEventListener("click", () => {
    if (model.get("source_kind") === "browser") listMics();
    else send({ type: "devices" });
  });
  const setTrait = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  provider.addEventListener("change", () => setTrait("provider", provider.value));
  modelSel.addEventListener("change", () => setTrait("model", modelSel.value));
  source.addEventListener("change", () => setTrait("source_kind", source.value));
  device.addEventListener("change", () => setTrait("device", Number(device.value)));
  file.addEventListener("change", () => setTrait("file", file.value.trim()));
  const sendKey = () => {
    const value = keyInput.value;
    keyInput.value = ""; // the key never stays in the page
    if (value.trim()) send({ type: "key", value });
  };
  keyRow.addEventListener("submit", (event) => {
    event.preventDefault();
    sendKey();
  });
  // Typing in the widget's fields must not trigger notebook shortcuts (Enter, "d d", ...).
  for (const input of [keyInput, file, terms]) {
    input.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "Enter") {
        event.preventDefault();
        if (input === keyInput) sendKey();
        else input.blur(); // commits the path ("change")
      }
    });
  }

  // -- wiring ---------------------------------------------------------------------------
  const handlers = [
    ["change:provider change:model change:models change:source_kind change:devices change:device change:file change:source_label change:running", showMenus],
    ["change:status change:status_text change:session_id change:elapsed change:running", showStatus],
    ["change:level", showLevel],
    ["change:progress change:time_left", showProgress],
    ["change:needs_key change:key_env change:error change:running", showKey],
    ["change:notice change:error change:source_kind change:running change:n_warnings", showMessages],
    ["change:running change:capture_stats", showCapture],
    ["change:partial change:n_finals", showPartial],
    ["change:run", showRun],
    ["change:keyterms change:running", showTerms],
    ["change:revision", livetxFollowRevision(model)], // marimo: re-run dependent cells
  ];
  const unlisten = livetxListen(model, handlers); // one event name per model.on (host.js)
  model.on("msg:custom", onCustom);
  for (const [, handler] of handlers) handler();
  send({ type: "hello" }); // the kernel answers with the last rows ("tail")

  const onDeviceChange = () => {
    if (model.get("source_kind") === "browser") listMics();
  };
  const media = globalThis.navigator && navigator.mediaDevices;
  if (media && media.addEventListener) media.addEventListener("devicechange", onDeviceChange);

  globalThis.addEventListener?.("pagehide", mic.viewGone); // the view goes away (common.js)

  return () => {
    clip.stop();
    unlisten();
    model.off("msg:custom", onCustom);
    if (media && media.removeEventListener) {
      media.removeEventListener("devicechange", onDeviceChange);
    }
    globalThis.removeEventListener?.("pagehide", mic.viewGone);
    mic.viewGone();
  };
}

export default { render };
