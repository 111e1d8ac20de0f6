// The page's start-up (evaluating the bundle, React's first render and layout, the fonts) holds
// the main thread for a few hundred ms. Whatever arrives meanwhile waits behind it: a live event
// received then is measured late by the page's own start-up, not by the pipeline. Work that can
// wait (opening the live stream) is started once the page has loaded and the main thread is idle.

const IDLE_TIMEOUT_MS = 1000;

function onLoad(win, run) {
  if (win.document.readyState === 'complete') {
    run();
    return () => {};
  }
  win.addEventListener('load', run, { once: true });
  return () => win.removeEventListener('load', run);
}

// requestIdleCallback runs once no other task is waiting (its timeout bounds a page that never is);
// where it is missing (Safari, jsdom) the second animation frame is after the first paint.
function onIdle(win, run, timeoutMs) {
  if (typeof win.requestIdleCallback === 'function') {
    const id = win.requestIdleCallback(() => run(), { timeout: timeoutMs });
    return () => win.cancelIdleCallback(id);
  }
  if (typeof win.requestAnimationFrame === 'function') {
    let id = win.requestAnimationFrame(() => {
      id = win.requestAnimationFrame(() => {
        id = null;
        run();
      });
    });
    return () => id !== null && win.cancelAnimationFrame(id);
  }
  const id = win.setTimeout(run, 0);
  return () => win.clearTimeout(id);
}

/**
 * Calls `run` once, after the window's `load` event and then the main thread's first idle
 * moment (at most `timeoutMs` after load). Returns a function that cancels it if not yet run.
 */
export function afterStartup(run, { win = globalThis.window, timeoutMs = IDLE_TIMEOUT_MS } = {}) {
  if (!win?.document) {
    run(); // no page to wait for (a script outside a browser)
    return () => {};
  }
  let cancelIdle = () => {};
  const cancelLoad = onLoad(win, () => {
    cancelIdle = onIdle(win, run, timeoutMs);
  });
  return () => {
    cancelLoad();
    cancelIdle();
  };
}
