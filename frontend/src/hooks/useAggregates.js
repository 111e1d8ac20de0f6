import { useEffect, useState } from 'react';
import * as api from '../api/client.js';
import { toQuery } from '../stream/filter.js';
import { usePolling } from './usePolling.js';

/**
 * Polls GET /api/metrics/aggregate for the window and filter. One request at a time; the
 * next is scheduled when the previous settles. The last good answer stays on screen
 * through errors (marked stale) and while another window or filter loads.
 */
export function useAggregates({ windowSec, filter, intervalMs = 2000, client = api }) {
  const [state, setState] = useState({ data: null, error: null, loading: true });

  // The previous answer stays on screen (marked loading) until the new window's arrives.
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
  }, [windowSec, filter, client]);

  usePolling(
    (signal) => client.getAggregate({ window: windowSec, ...toQuery(filter), signal }),
    (r) =>
      setState((s) =>
        r.ok ? { data: r.value, error: null, loading: false } : { data: s.data, error: r.error.message, loading: false },
      ),
    intervalMs,
    [windowSec, filter, client],
  );

  return state;
}
