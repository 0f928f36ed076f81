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
