import { http, HttpResponse } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { server } from '../test/server.js';
import { fakeIo } from '../test/fakeSocket.js';
import { authState, onAuthChange, resetAuth, signIn } from './auth.js';
import { getRecent } from './client.js';
import { connectMetricSocket } from './socket.js';

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => resetAuth());

describe('viewer token', () => {
  it('is kept in sessionStorage and sent as Bearer on REST', async () => {
    let seen = 'none';
    server.use(
      http.get('*/api/metrics/recent', ({ request }) => {
        seen = request.headers.get('authorization');
        return HttpResponse.json({ count: 0, events: [] });
      }),
    );
    await getRecent();
    expect(seen).toBeNull();
    signIn('  header.payload.sig \n');
    expect(sessionStorage.getItem('pulse.viewerToken')).toBe('header.payload.sig');
    await getRecent();
    expect(seen).toBe('Bearer header.payload.sig');
  });

  it('is cleared, and a sign-in asked for, on a 401', async () => {
    signIn('expired.token.sig');
    const changes = [];
    const stop = onAuthChange((s) => changes.push(s));
    server.use(
      http.get('*/api/metrics/recent', () =>
        HttpResponse.json({ error: { code: 'unauthorized', message: 'the token has expired' } }, { status: 401 }),
      ),
    );
    const err = await getRecent().catch((e) => e);
    stop();
    expect(err).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(authState()).toEqual({ token: null, needed: true });
    expect(sessionStorage.getItem('pulse.viewerToken')).toBeNull();
    expect(changes.at(-1)).toEqual({ token: null, needed: true });
  });

  it('is sent as auth.token on Socket.IO, and a refusal for it stops retrying and asks for a sign-in', () => {
    vi.useFakeTimers();
    try {
      const fake = fakeIo();
      const statuses = [];
      signIn('viewer.token.sig');
      const conn = connectMetricSocket({ ioFactory: fake.io, onStatus: (s) => statuses.push(s.status) });
      vi.advanceTimersByTime(0);
      const socket = fake.last();
      expect(socket.lastAuth).toEqual({ positions: true, sources: [], metrics: [], token: 'viewer.token.sig' });
      const refused = new Error('unauthorized');
      refused.data = { code: 'unauthorized', message: 'the token has expired' };
      socket.fire('connect_error', refused);
      vi.runAllTimers();
      expect(socket.connectCalls).toBe(1);
      expect(statuses.at(-1)).toBe('unauthorized');
      expect(authState()).toEqual({ token: null, needed: true });
      conn.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('is left out of the socket auth when there is none', () => {
    vi.useFakeTimers();
    try {
      const fake = fakeIo();
      const conn = connectMetricSocket({ ioFactory: fake.io });
      vi.advanceTimersByTime(0);
      expect(fake.last().lastAuth).toEqual({ positions: true, sources: [], metrics: [] });
      conn.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
