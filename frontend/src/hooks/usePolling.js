import { useEffect } from 'react';

/**
 * Calls `request(signal)` now, then again `intervalMs` after each call settles (never two at
 * once), and hands `settle` either `{ ok: true, value }` or `{ ok: false, error }`, until the
 * component unmounts or `deps` change (the request in flight is aborted).
 */
export function usePolling(request, settle, intervalMs, deps) {
  useEffect(() => {
    let timer = null;
    let live = true;
    const ctrl = new AbortController();
    async function poll() {
      let result;
      try {
        result = { ok: true, value: await request(ctrl.signal) };
      } catch (error) {
        result = { ok: false, error };
      }
      if (!live) return;
      settle(result);
      timer = setTimeout(poll, intervalMs);
    }
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
      ctrl.abort();
    };
    // The caller names what restarts the polling: `request` and `settle` are new closures on
    // every render, and listing them would restart it on every render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, intervalMs]);
}
