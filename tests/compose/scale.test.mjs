// The scale variant (docker-compose.scale.yml, 3 backends behind nginx): Socket.IO clients
// through nginx land on every replica, and each client receives every event exactly once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitUntil } from '../../frontend/e2e/stack.mjs';
import { compose, docker, postEvents, streamClient, uniqueEvents } from './lib.mjs';

const CLIENTS = 24;
const EVENTS = 100;

describe('three backends behind nginx', { timeout: 120_000 }, () => {
  test('clients on every replica receive every event once', async () => {
    const ids = compose('ps', '-q', 'backend').trim().split('\n');
    assert.equal(ids.length, 3, 'three backend replicas');
    const replicaIps = new Set(ids.map((id) => docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id)));

    const source = `scale${Date.now() % 100000}`;
    const run = Date.now().toString(36);
    const clients = [];
    for (let i = 0; i < CLIENTS; i += 1) clients.push(await streamClient({ source, probe: `${run}-${i}` }));
    try {
      const events = uniqueEvents(source, EVENTS);
      for (let i = 0; i < EVENTS; i += 20) await postEvents(events.slice(i, i + 20)); // spread over replicas
      await waitUntil(() => clients.every((c) => c.events.length >= EVENTS), {
        what: `${EVENTS} events on each of ${CLIENTS} clients`,
        timeoutMs: 15000,
      });
      await new Promise((r) => setTimeout(r, 500)); // a duplicate would come right after
      const want = events.map((e) => e.id).sort();
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(c.events.map((e) => e.id).sort(), want, `client ${i}: every event, once`);
        assert.equal(c.gaps, 0);
      }
    } finally {
      for (const c of clients) c.close();
    }

    // nginx logs each WebSocket when it closes, with the replica that served it.
    const served = new Map();
    await waitUntil(() => {
      for (const line of compose('logs', '--no-color', 'frontend').split('\n')) {
        const m = line.match(new RegExp(`probe=(${run}-\\d+)\\S* [^"]*" 101 .* upstream=([\\d.]+):5000`));
        if (m) served.set(m[1], m[2]);
      }
      return served.size === CLIENTS;
    }, { what: 'nginx access log lines of every client', timeoutMs: 10000 });
    const used = new Set(served.values());
    console.log(`clients per replica: ${[...used].map((ip) => `${ip}=${[...served.values()].filter((v) => v === ip).length}`).join(', ')}`);
    assert.deepEqual([...used].sort(), [...replicaIps].sort(), 'the clients were spread over every replica');
  });
});
