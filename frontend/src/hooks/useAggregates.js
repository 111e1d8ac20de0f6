import { useEffect, useState } from 'react';
import * as api from '../api/client.js';
import { toQuery } from '../stream/filter.js';

/**
 * Polls GET /api/metrics/aggregate for the window and filter. One request at a time; the
 * next is scheduled when the previous settles. The last good answer stays on screen
 * through errors (marked stale) and while another window or filter loads.
 */
export function useAggregates({ windowSec, filter, intervalMs = 2000, client = api }) {
  const [state, setState] = useState({ data: null, error: null, loading: true });

  useEffect(() => {
    let timer = null;
    let live = true;
    const ctrl = new AbortController();
    // The previous answer stays on screen (marked loading) until the new window's arrives.
    setState((s) => ({ ...s, loading: true }));

    async function poll() {
      try {
        const data = await client.getAggregate({ window: windowSec, ...toQuery(filter), signal: ctrl.signal });
        if (live) setState({ data, error: null, loading: false });
      } catch (err) {
        if (live) setState((s) => ({ data: s.data, error: err.message, loading: false }));
      }
      if (live) timer = setTimeout(poll, intervalMs);
    }
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
      ctrl.abort();
    };
  }, [windowSec, filter, intervalMs, client]);

  return state;
}
