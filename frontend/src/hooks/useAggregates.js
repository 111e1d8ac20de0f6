import { useState } from 'react';
import * as api from '../api/client.js';
import { toQuery } from '../stream/filter.js';
import { usePolling } from './usePolling.js';

/**
 * Polls GET /api/metrics/aggregate for the window and filter. One request at a time; the
 * next is scheduled when the previous settles. The last good answer stays on screen
 * through errors (marked stale) and while another window or filter loads.
 */
export function useAggregates({ windowSec, filter, intervalMs = 2000, client = api }) {
  // `asked` is the request the last answer (or error) settled: loading until the current one has.
  const [state, setState] = useState({ data: null, error: null, asked: null });

  usePolling(
    (signal) => client.getAggregate({ window: windowSec, ...toQuery(filter), signal }),
    (r) => {
      const asked = { windowSec, filter, client };
      setState((s) => (r.ok ? { data: r.value, error: null, asked } : { data: s.data, error: r.error.message, asked }));
    },
    intervalMs,
    [windowSec, filter, client],
  );

  const { asked, data, error } = state;
  const loading = asked === null || asked.windowSec !== windowSec || asked.filter !== filter || asked.client !== client;
  return { data, error, loading };
}
