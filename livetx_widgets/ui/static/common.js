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
