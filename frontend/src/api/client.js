// The one REST client: every call goes through request(), which turns the backend's
// {"error": {code, message, field}} (or a dead proxy) into an ApiError with a message a
// person can act on. It sends the viewer token when there is one; a 401 asks for a sign-in.
export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network', field = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

import { getToken, requireSignIn } from './auth.js';

const BASE = (import.meta.env?.VITE_API_BASE ?? '').replace(/\/$/, '');

function url(path, params = {}) {
  const u = new URL(`${BASE}${path}`, window.location.href);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  return u.href;
}

// AbortSignal.any is recent (Safari 17.4); link the signals by hand where it is missing.
function anySignal(signals) {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const ctrl = new AbortController();
  for (const s of signals) {
    if (s.aborted) ctrl.abort(s.reason);
    else s.addEventListener('abort', () => ctrl.abort(s.reason), { once: true });
  }
  return ctrl.signal;
}

async function request(path, { params, signal, timeoutMs = 8000, okStatuses = [] } = {}) {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? anySignal([signal, timeout]) : timeout;
  let res;
  try {
    const token = getToken();
    const headers = { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) };
    res = await fetch(url(path, params), { signal: combined, headers });
  } catch (err) {
    if (signal?.aborted) throw err;
    const what = timeout.aborted ? 'timed out' : 'failed';
    throw new ApiError(`Request to ${path} ${what}: is the backend running? Try make run.`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (res.status === 401) requireSignIn();
  if (!res.ok && !okStatuses.includes(res.status)) {
    const e = body?.error;
    const message = e?.message ?? `The backend answered ${res.status} for ${path}.`;
    throw new ApiError(message, { status: res.status, code: e?.code ?? `http_${res.status}`, field: e?.field ?? null });
  }
  if (body === null) throw new ApiError(`The backend sent no JSON for ${path}.`, { status: res.status, code: 'bad_response' });
  return body;
}

/** GET /api/health: 200 ok, or 503 degraded (still a valid answer, not an error). */
export function getHealth({ signal } = {}) {
  return request('/api/health', { signal, okStatuses: [503], timeoutMs: 4000 });
}

/** The contract's default RECENT_MAX, for a backend whose health does not give its own. */
export const DEFAULT_RECENT_MAX = 1000;

/** The largest `limit` GET /api/metrics/recent accepts: the server's cache size, from its health. */
export async function getRecentMax({ signal } = {}) {
  const { recent_max: max } = await getHealth({ signal });
  return Number.isInteger(max) && max > 0 ? max : DEFAULT_RECENT_MAX;
}

/** GET /api/metrics/recent: newest first. */
export async function getRecent({ limit = 200, metric, source, signal } = {}) {
  const body = await request('/api/metrics/recent', { params: { limit, metric, source }, signal });
  return Array.isArray(body.events) ? body.events : [];
}

/** GET /api/metrics/aggregate for the last `window` seconds. */
export function getAggregate({ window = 60, metric, source, signal } = {}) {
  return request('/api/metrics/aggregate', { params: { window, metric, source }, signal });
}
