import { useEffect, useState } from 'react';
import * as api from '../api/client.js';

/** Polls GET /api/health: 'ok', 'degraded' (Redis down) or 'unreachable' (no backend). */
export function useHealth({ intervalMs = 5000, client = api } = {}) {
  const [health, setHealth] = useState({ status: 'unknown', redis: null });

  useEffect(() => {
    let timer = null;
    let live = true;
    const ctrl = new AbortController();
    async function poll() {
      try {
        const body = await client.getHealth({ signal: ctrl.signal });
        if (live) setHealth({ status: body.status === 'ok' ? 'ok' : 'degraded', redis: body.redis ?? null });
      } catch {
        if (live) setHealth({ status: 'unreachable', redis: null });
      }
      if (live) timer = setTimeout(poll, intervalMs);
    }
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
      ctrl.abort();
    };
  }, [intervalMs, client]);

  return health;
}
