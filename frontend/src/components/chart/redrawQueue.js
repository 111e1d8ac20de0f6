// Charts redraw once a second, all at the same moment. Drawn in the effect that received the
// new points, six charts take one main-thread task of 40-60 ms in a software-rendered browser
// (a "long task" that delays input); queued here, each chart draws in a task of its own.
const pending = new Map(); // key -> the latest redraw asked for it
let scheduled = false;

function runNext() {
  const next = pending.entries().next();
  if (next.done) {
    scheduled = false;
    return;
  }
  const [key, redraw] = next.value;
  pending.delete(key);
  setTimeout(runNext, 0); // scheduled first: a redraw that throws must not stall the others
  redraw();
}

/** Run `redraw` soon, in a task of its own; a newer redraw for the same key replaces it. */
export function redrawSoon(key, redraw) {
  pending.set(key, redraw);
  if (!scheduled) {
    scheduled = true;
    setTimeout(runNext, 0);
  }
}

/** Forget a redraw not yet run (its chart is going away). */
export function cancelRedraw(key) {
  pending.delete(key);
}
