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
