// LiveTranscriber front end: plain modern JS, no build step, no dependencies.
//
// State comes from small synced traits (status, elapsed, level, partial, menus). Final
// segments arrive as custom messages carrying only new or revised segments ("finals"), and
// once per render the view asks for the last rows ("hello" -> "tail"). The view keeps at most
// `max_rows` rows in the DOM, so its cost does not grow with the transcript either.
// Actions (start, stop, pause, resume, key, devices) go to the kernel as custom messages.
// An API key typed here is sent once and the field is cleared at once: it never stays in the
// DOM and never becomes a trait.

const PROVIDERS = [
  ["auto", "Auto"],
  ["deepgram", "Deepgram"],
  ["assemblyai", "AssemblyAI"],
  ["local", "Offline"],
];
const SOURCES = [
  ["kernel", "Kernel mic"],
  ["browser", "Browser mic"],
  ["file", "WAV file"],
  ["custom", "Custom source"],
];
const BUSY = new Set(["connecting", "reconnecting", "stopping"]);

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

function stamp(seconds) {
  const s = Math.max(0, seconds || 0);
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
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
  const refresh = h("button", "livetx-refresh", "↻");
  refresh.title = "List the kernel's microphones again";
  const file = h("input", "livetx-file");
  file.type = "text";
  file.placeholder = "path/to/audio.wav";
  file.title = "WAV file on the kernel's machine";
  const custom = h("span", "livetx-custom");
  bar.append(provider, modelSel, source, device, refresh, file, custom);

  const actions = h("div", "livetx-actions");
  const start = h("button", "livetx-start", "● Start");
  const pause = h("button", "livetx-pause", "Pause");
  const stop = h("button", "livetx-stop", "■ Stop");
  const status = h("span", "livetx-status");
  const dot = h("span", "livetx-dot");
  const statusText = h("span", "livetx-status-text");
  status.append(dot, statusText);
  const meter = h("span", "livetx-meter");
  meter.title = "Input level";
  const meterFill = h("span", "livetx-meter-fill");
  meter.appendChild(meterFill);
  actions.append(start, pause, stop, status, meter);

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
  const error = h("div", "livetx-error");
  error.setAttribute("role", "alert");

  const box = h("div", "livetx-transcript");
  const earlier = h("div", "livetx-earlier");
  const list = h("div", "livetx-rows");
  const partial = h("div", "livetx-partial");
  const empty = h("div", "livetx-empty", "Press Start and speak: the transcript appears here.");
  box.append(earlier, list, partial, empty);

  const footer = h("div", "livetx-footer");
  root.append(bar, actions, progress, keyRow, notice, error, box, footer);

  // -- transcript rows (at most max_rows in the DOM) ------------------------------------
  let rowsRun = -1;
  let total = 0;
  const ids = []; // sorted segment ids shown
  const rows = new Map(); // id -> row element

  function rowFor(seg) {
    const row = h("div", seg.final === false ? "livetx-row livetx-unfinal" : "livetx-row");
    row.dataset.id = String(seg.id);
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

  function clearRows() {
    ids.length = 0;
    rows.clear();
    list.replaceChildren();
  }

  function upsert(seg) {
    const row = rowFor(seg);
    const old = rows.get(seg.id);
    if (old) {
      old.replaceWith(row);
      rows.set(seg.id, row);
      return;
    }
    const max = model.get("max_rows");
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
  }

  function nearBottom() {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 32;
  }

  function scrollIfStuck(stuck) {
    if (stuck) box.scrollTop = box.scrollHeight;
  }

  function onCustom(msg) {
    if (!msg || (msg.type !== "finals" && msg.type !== "tail")) return;
    if (msg.run < rowsRun) return; // a late message of an earlier session
    const stuck = nearBottom();
    if (msg.run !== rowsRun || msg.type === "tail") {
      clearRows();
      rowsRun = msg.run;
    }
    for (const seg of msg.segments) upsert(seg);
    total = Math.max(msg.total, ids.length);
    showCounts();
    scrollIfStuck(stuck);
  }

  function showRun() {
    // A new session (Start again): its transcript replaces the view at once.
    if (model.get("run") > rowsRun) {
      clearRows();
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
    footer.textContent = n ? `${n} segment${n === 1 ? "" : "s"}` : "";
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
    device.hidden = refresh.hidden = kind !== "kernel";
    file.hidden = kind !== "file";
    if (document.activeElement !== file) file.value = model.get("file");
    custom.hidden = kind !== "custom";
    custom.textContent = model.get("source_label");
    for (const control of [provider, modelSel, source, device, refresh, file]) {
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

  function showLevel() {
    const level = model.get("level");
    const db = 20 * Math.log10(level + 1e-9);
    const fraction = Math.min(1, Math.max(0, (db + 60) / 60));
    meterFill.style.width = `${(fraction * 100).toFixed(1)}%`;
    meter.classList.toggle("livetx-hot", db > -3);
  }

  function showProgress() {
    const p = model.get("progress");
    progress.hidden = p < 0;
    progressFill.style.width = `${(Math.max(0, p) * 100).toFixed(1)}%`;
    progressText.textContent = `${clock(model.get("time_left"))} left`;
  }

  function showKey() {
    const needs = model.get("needs_key");
    keyRow.hidden = !needs;
    const env = model.get("key_env");
    keyLabel.textContent = "API key";
    keyHint.textContent = `kept in the kernel's memory only${env ? ` · or set ${env}` : ""}`;
  }

  function showMessages() {
    notice.textContent = model.get("notice");
    notice.hidden = !model.get("notice");
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  }

  function showPartial() {
    const stuck = nearBottom();
    partial.textContent = model.get("partial");
    partial.hidden = !model.get("partial");
    showCounts();
    scrollIfStuck(stuck);
  }

  // -- DOM -> kernel --------------------------------------------------------------------
  const send = (message) => model.send(message);
  start.addEventListener("click", () => send({ type: "start" }));
  stop.addEventListener("click", () => send({ type: "stop" }));
  pause.addEventListener("click", () =>
    send({ type: model.get("status") === "paused" ? "resume" : "pause" }),
  );
  refresh.addEventListener("click", () => send({ type: "devices" }));
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
  for (const input of [keyInput, file]) {
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
    ["change:needs_key change:key_env", showKey],
    ["change:notice change:error", showMessages],
    ["change:partial change:n_finals", showPartial],
    ["change:run", showRun],
  ];
  for (const [events, handler] of handlers) model.on(events, handler);
  model.on("msg:custom", onCustom);
  for (const [, handler] of handlers) handler();
  send({ type: "hello" }); // the kernel answers with the last rows ("tail")

  return () => {
    for (const [events, handler] of handlers) model.off(events, handler);
    model.off("msg:custom", onCustom);
  };
}

export default { render };
