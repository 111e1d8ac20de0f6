import { useState } from 'react';
import * as api from '../api/client.js';
import { usePolling } from './usePolling.js';

/** Polls GET /api/health: 'ok', 'degraded' (Redis down) or 'unreachable' (no backend). */
export function useHealth({ intervalMs = 5000, client = api } = {}) {
  const [health, setHealth] = useState({ status: 'unknown', redis: null });

  usePolling(
    (signal) => client.getHealth({ signal }),
    (r) =>
      setHealth(
        r.ok
          ? { status: r.value.status === 'ok' ? 'ok' : 'degraded', redis: r.value.redis ?? null }
          : { status: 'unreachable', redis: null },
      ),
    intervalMs,
    [client],
  );

  return health;
}
