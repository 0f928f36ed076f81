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
