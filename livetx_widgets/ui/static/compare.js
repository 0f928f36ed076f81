// CompareTranscriber front end: one column per provider, one scroll area, one Start/Stop.
//
// Plain modern JS, no build step, no dependencies (like widget.js; served after capture.js,
// host.js and common.js, whose h, stamp, livetxRows, livetxClipPlayer and livetxMic are the
// ones widget.js uses too). Small synced traits carry
// the state (status, elapsed, progress, `columns`: label, model, status, partial, error of
// each provider). Finals arrive as custom messages with only new or revised segments, per
// column ({type: "finals", run, columns: {label: [segments]}, totals}); a view that renders
// asks for the last rows ("hello" -> "tail"). Each column keeps at most `max_rows` rows in
// the DOM, so nothing here grows with the transcript. The columns sit side by side in one
// scrolling box, so they scroll together; it follows the newest rows while it is at the
// bottom.
//
// Playback (livetxClipPlayer): clicking a final asks the kernel for that span of the audio
// ({type: "play", label, id, run, view, req}); the kernel answers this view only ({type:
// "clip", ...} + one WAV buffer, at most 120 s, see ui/playback.py) and it plays. While it
// plays, the clicked row and the rows of every column that overlap its span are marked: the
// same stretch of audio as each provider heard it. Clicking the playing row stops it.
//
// Browser microphone (source_kind "browser"): livetxMic (common.js, the same capture and
// messages as widget.js; capture.js is in front) captures once and the kernel tees it to
// every provider. Start captures inside the click but asks the kernel to start only once the
// microphone is granted (the chunks wait meanwhile), so a denied microphone starts nothing
// and says why; Stop sends the last chunk before "stop".

const BUSY = new Set(["connecting", "reconnecting", "stopping"]);

const BUSY_SHOW_S = 1.0; // show "kernel busy" past this much browser audio waiting...
const BUSY_HIDE_S = 0.4; // ...and hide it below this (no flicker)

function render({ model, el }) {
  const root = h("div", "livetx livetx-cmp");
  el.appendChild(root);

  const actions = h("div", "livetx-actions");
  const start = h("button", "livetx-start", "● Start");
  const pause = h("button", "livetx-pause", "Pause");
  const stop = h("button", "livetx-stop", "■ Stop");
  const status = h("span", "livetx-status");
  const dot = h("span", "livetx-dot");
  const statusText = h("span", "livetx-status-text");
  status.append(dot, statusText);
  const source = h("span", "livetx-cmp-source");
  const elapsed = h("span", "livetx-cmp-elapsed");
  actions.append(start, pause, stop, status, elapsed, source);
  const progress = h("div", "livetx-cmp-progress");
  const progressFill = h("span", "livetx-cmp-progress-fill");
  progress.appendChild(progressFill);
  const error = h("div", "livetx-error");
  error.setAttribute("role", "alert");
  const notice = h("div", "livetx-notice");
  const busy = h("div", "livetx-busy");
  busy.setAttribute("role", "status");
  busy.hidden = true;
  const box = h("div", "livetx-cmp-box");
  const grid = h("div", "livetx-cmp-grid");
  box.appendChild(grid);
  const note = h("div", "livetx-cmp-note");
  note.hidden = true;
  root.append(actions, progress, notice, busy, error, note, box);
  const viewId = Math.random().toString(36).slice(2, 10);

  // -- columns ----------------------------------------------------------------------------
  let rowsRun = -1;
  const cols = new Map(); // label -> {node, modelName, state, err, list, partial, kept, ...}

  function column(label) {
    let col = cols.get(label);
    if (col) return col;
    const node = h("div", "livetx-cmp-col");
    node.dataset.label = label;
    const head = h("div", "livetx-cmp-head");
    const name = h("span", "livetx-cmp-label", label);
    const modelName = h("span", "livetx-cmp-model");
    const state = h("span", "livetx-cmp-state");
    head.append(name, modelName, state);
    const err = h("div", "livetx-cmp-error");
    const list = h("div", "livetx-cmp-list");
    const partial = h("div", "livetx-cmp-partial");
    node.append(head, err, list, partial);
    grid.appendChild(node);
    const kept = livetxRows(list, () => model.get("max_rows"), rowFor); // common.js
    col = { node, modelName, state, err, list, partial, kept, rows: kept.rows, total: 0 };
    cols.set(label, col);
    return col;
  }

  function clearRows() {
    for (const col of cols.values()) col.kept.clear();
  }

  function rowFor(seg) {
    const row = h("div", "livetx-cmp-row");
    row.title = "Click to play (the same span is marked in every column)";
    row.dataset.id = String(seg.id);
    row.dataset.start = String(seg.start);
    row.dataset.end = String(seg.end);
    const time = h("span", "livetx-time", stamp(seg.start));
    time.title = `${seg.start.toFixed(2)}–${seg.end.toFixed(2)} s`;
    row.append(time, h("span", "livetx-text", seg.text));
    return row;
  }

  const nearBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight < 32;

  // -- playback -------------------------------------------------------------------------
  function showNote(text) {
    note.textContent = text || "";
    note.hidden = !text;
  }

  // The clicked row, and the rows of every column that overlap the span it plays.
  function markSpan(playing) {
    for (const row of grid.querySelectorAll(".livetx-loading, .livetx-playing, .livetx-cmp-same")) {
      row.classList.remove("livetx-loading", "livetx-playing", "livetx-cmp-same");
    }
    if (!playing) return;
    const clicked = cols.get(playing.fields.label)?.rows.get(playing.fields.id);
    const msg = playing.msg;
    if (msg) {
      for (const col of cols.values()) {
        for (const row of col.rows.values()) {
          if (Number(row.dataset.start) < msg.end && Number(row.dataset.end) > msg.start) {
            row.classList.add("livetx-cmp-same");
          }
        }
      }
    }
    clicked?.classList.add(playing.state);
  }

  const clip = livetxClipPlayer((message) => model.send(message), viewId, {
    mark: markSpan,
    note: showNote,
  });
  root.appendChild(clip.el);
  clip.onClick(grid, ".livetx-cmp-row", (row) => {
    const label = row.closest(".livetx-cmp-col")?.dataset.label;
    const id = Number(row.dataset.id);
    if (label !== undefined) clip.request(`${label}/${id}`, { label, id, run: rowsRun });
  });

  function onCustom(msg, buffers) {
    if (msg && msg.type === "clip") {
      clip.play(msg, buffers);
      return;
    }
    if (msg && mic.onMessage(msg)) {
      showStatus(); // a refused start: Start is enabled again
      return;
    }
    if (msg && msg.type === "capture") {
      // Started from code: capture without a click (works once the page has had one).
      if (!mic.current && model.get("source_kind") === "browser" && !captureSupport()) {
        mic.begin(`${viewId}-${++captures}`).sawRunning = true;
      }
      return;
    }
    if (!msg || (msg.type !== "finals" && msg.type !== "tail")) return;
    if (msg.run < rowsRun) return; // a late message of an earlier run
    const stuck = nearBottom();
    if (msg.run !== rowsRun || msg.type === "tail") {
      clearRows();
      rowsRun = msg.run;
    }
    for (const [label, segments] of Object.entries(msg.columns || {})) {
      const col = column(label);
      for (const seg of segments) col.kept.upsert(seg);
    }
    for (const [label, total] of Object.entries(msg.totals || {})) column(label).total = total;
    if (stuck) box.scrollTop = box.scrollHeight;
  }

  function showColumns() {
    const stuck = nearBottom();
    const wanted = model.get("columns") || [];
    grid.style.gridTemplateColumns = `repeat(${Math.max(1, wanted.length)}, minmax(0, 1fr))`;
    for (const c of wanted) {
      const col = column(c.label);
      col.modelName.textContent = c.model || c.name || "";
      col.state.textContent = c.status_text || c.status;
      col.node.dataset.status = c.status;
      col.err.textContent = c.error || "";
      col.err.hidden = !c.error;
      col.partial.textContent = c.partial || "";
      col.partial.hidden = !c.partial;
    }
    if (stuck) box.scrollTop = box.scrollHeight;
  }

  function showStatus() {
    const st = model.get("status");
    const running = model.get("running");
    statusText.textContent = model.get("status_text");
    dot.className = `livetx-dot livetx-s-${st === "running" ? "live" : st}`;
    dot.classList.toggle("livetx-pulse", BUSY.has(st));
    root.dataset.status = st;
    start.disabled = running;
    stop.disabled = !running;
    pause.disabled = !running;
    pause.textContent = st === "paused" ? "Resume" : "Pause";
    showMessages();
  }

  function showMessages() {
    // The kernel's words first; the page's own (capture problems) when the kernel has none.
    let text = model.get("notice");
    if (!text && model.get("source_kind") === "browser" && !model.get("running")) {
      text = captureSupport() || "";
    }
    notice.textContent = text;
    notice.hidden = !text;
    const err = model.get("error") || pageError;
    error.textContent = err;
    error.hidden = !err;
  }

  // -- browser microphone ---------------------------------------------------------------
  let captures = 0;
  let pageError = ""; // a capture problem, shown until the kernel has its own error
  let busyShown = false;
  const mic = livetxMic(model, {
    onFail: (text) => {
      pageError = text;
      showMessages();
    },
    onChange: () => showBusy(),
    onGranted: (state) => {
      if (!state.held || mic.current !== state) return; // started from code: it runs
      send({ type: "start", capture: state.id }); // granted: now every provider starts
      mic.open(state);
    },
  });

  function showBusy() {
    const { unacked, queued } = mic.waiting();
    const waiting = unacked + queued;
    busyShown = busyShown ? waiting > BUSY_HIDE_S : waiting > BUSY_SHOW_S;
    let text = `${unacked > queued ? "Kernel busy" : "Catching up"} — ${waiting.toFixed(1)} s ` +
      "of audio waiting" + (unacked > queued ? " (a running cell holds it back; it is kept)" :
        " (sending it to the providers)");
    const cap = mic.current;
    if (cap && cap.unsentS > 0) {
      text += ` · ${cap.unsentS.toFixed(1)} s not sent: the kernel has not read audio for ` +
        `${LIVETX_MAX_UNACKED_S / 60} minutes`;
      busyShown = true;
    }
    busy.textContent = text;
    busy.hidden = !busyShown;
    root.dataset.waiting = waiting.toFixed(1);
  }

  function showCapture() {
    mic.follow();
    showBusy();
  }

  function showRun() {
    if (model.get("run") > rowsRun) {
      if (clip.playing) clip.stop(); // the previous run's audio is released
      clearRows();
      rowsRun = model.get("run");
    }
  }

  function showProgress() {
    const p = model.get("progress");
    progress.hidden = p < 0;
    progressFill.style.width = `${Math.round(Math.max(0, p) * 100)}%`;
    elapsed.textContent = stamp(model.get("elapsed"));
    source.textContent = model.get("source_label");
  }

  const send = (message) => model.send(message);
  start.addEventListener("click", () => {
    pageError = "";
    showMessages();
    if (model.get("source_kind") !== "browser") {
      send({ type: "start" });
      return;
    }
    const state = mic.restart(`${viewId}-${++captures}`, { gated: true }); // inside the click
    if (!state) return;
    start.disabled = true; // until the kernel runs (or the microphone is refused)
    state.handle.catch(() => showStatus());
  });
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    const state = mic.current;
    if (state) await mic.end(state); // the last chunk goes out before "stop"
    send({ type: "stop" });
  });
  pause.addEventListener("click", () =>
    send({ type: model.get("status") === "paused" ? "resume" : "pause" }),
  );

  const handlers = [
    ["change:columns", showColumns],
    ["change:status change:status_text change:running change:error", showStatus],
    ["change:notice change:source_kind", showMessages],
    ["change:running change:capture_stats", showCapture],
    ["change:run", showRun],
    ["change:progress change:elapsed change:source_label", showProgress],
    ["change:revision", livetxFollowRevision(model)], // marimo: re-run dependent cells
  ];
  const unlisten = livetxListen(model, handlers); // one event name per model.on (host.js)
  model.on("msg:custom", onCustom);
  for (const [, handler] of handlers) handler();
  send({ type: "hello" }); // the kernel answers with the last rows of every column ("tail")

  globalThis.addEventListener?.("pagehide", mic.viewGone); // the view goes away (common.js)

  return () => {
    clip.stop();
    unlisten();
    model.off("msg:custom", onCustom);
    globalThis.removeEventListener?.("pagehide", mic.viewGone);
    mic.viewGone();
  };
}

export default { render };
