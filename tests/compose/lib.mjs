// Shared by the compose tests: the stack's URL, docker-compose as the test script runs it, and
// Node Socket.IO clients through nginx (TLS verified against the stack's certificate, which
// scripts/compose-test.sh adds through NODE_EXTRA_CA_CERTS).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const URL_ = process.env.PULSE_URL;
if (!URL_) throw new Error('PULSE_URL is not set: run through `make test-compose`');

const requireFrontend = createRequire(path.join(REPO, 'frontend', 'package.json'));
const { io } = requireFrontend('socket.io-client');

/** Runs docker-compose with the files and env file the test script uses; returns stdout. */
export function compose(...args) {
  const files = (process.env.COMPOSE_FILES || 'docker-compose.yml').split(':').flatMap((f) => ['-f', f]);
  const res = spawnSync('docker-compose', ['--env-file', path.join(REPO, '.run/compose-test/settings.env'), ...files, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (res.status !== 0) throw new Error(`docker-compose ${args.join(' ')} failed:\n${res.stderr}`);
  return res.stdout;
}

// The stack is secure by default: POSTs need the producer key compose-secrets.sh made, reads a
// viewer token minted inside the backend container, as docs/docker.md tells a user to.
export const producerKey = () => readFileSync(path.join(process.env.PULSE_SECRETS_DIR, 'producer_key'), 'utf8').trim();
let token;
export function viewerToken() {
  token ??= compose('exec', '-T', 'backend', 'python', 'manage.py', 'new-token', '--ttl', '3600').trim();
  return token;
}

export function docker(...args) {
  const res = spawnSync('docker', args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`docker ${args.join(' ')} failed:\n${res.stderr}`);
  return res.stdout.trim();
}

/** fetch through nginx, JSON parsed; with the viewer token unless `anonymous`. */
export async function getJson(pathname, { anonymous = false, headers = {}, ...init } = {}) {
  const auth = anonymous ? {} : { authorization: `Bearer ${viewerToken()}` };
  const res = await fetch(`${URL_}${pathname}`, { signal: AbortSignal.timeout(5000), headers: { ...auth, ...headers }, ...init });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

/** POSTs events to /api/events through nginx. */
export async function postEvents(events) {
  const res = await getJson('/api/events', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': producerKey() },
    body: JSON.stringify(events),
  });
  if (res.status !== 202) throw new Error(`POST /api/events answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * A Socket.IO client through nginx over wss://, WebSocket only like the dashboard, subscribed to
 * one source. Resolves once subscribed; `events` collects what arrives.
 */
export function streamClient({ source, probe }) {
  return new Promise((resolve, reject) => {
    const socket = io(URL_, {
      transports: ['websocket'],
      reconnection: false,
      timeout: 5000,
      query: probe ? { probe } : {},
      auth: { token: viewerToken() },
    });
    const client = { socket, events: [], gaps: 0, close: () => socket.disconnect() };
    // A batch already on its way when `subscribe` lands may carry other sources: kept out.
    socket.on('metrics', (batch) => {
      for (const e of Array.isArray(batch) ? batch : [batch]) if (e.source === source) client.events.push(e);
    });
    socket.on('gap', () => {
      client.gaps += 1;
    });
    socket.on('connect_error', (err) => reject(new Error(`Socket.IO through nginx: ${err.message}`)));
    socket.on('connect', () => {
      socket.emit('subscribe', { sources: [source], metrics: [] }, (ack) => {
        if (ack && ack.ok === false) reject(new Error(`subscribe refused: ${JSON.stringify(ack)}`));
        else resolve(client);
      });
    });
  });
}

export function uniqueEvents(source, n, metric = 'compose_check') {
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  return Array.from({ length: n }, (_, i) => ({
    id: `${source}-${run}-${i}`,
    source,
    metric,
    value: i + 0.5,
    ts: Date.now(),
  }));
}
