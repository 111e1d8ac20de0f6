import { http, HttpResponse } from 'msw';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { server } from '../test/server.js';
import { ApiError, DEFAULT_RECENT_MAX, getAggregate, getHealth, getRecent, getRecentMax } from './client.js';

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

describe('REST client', () => {
  it('asks for the window and filters and returns the aggregate', async () => {
    let seen;
    server.use(
      http.get('*/api/metrics/aggregate', ({ request }) => {
        seen = new URL(request.url).searchParams;
        return HttpResponse.json({ window: 300, metrics: {} });
      }),
    );
    const body = await getAggregate({ window: 300, source: 'web' });
    expect(body.window).toBe(300);
    expect(Object.fromEntries(seen)).toEqual({ window: '300', source: 'web' });
  });

  it('returns recent events newest first as sent', async () => {
    server.use(http.get('*/api/metrics/recent', () => HttpResponse.json({ count: 2, events: [{ id: 'b' }, { id: 'a' }] })));
    expect((await getRecent({ limit: 2 })).map((e) => e.id)).toEqual(['b', 'a']);
  });

  it('turns the contract error body into an ApiError', async () => {
    server.use(
      http.get('*/api/metrics/recent', () =>
        HttpResponse.json({ error: { code: 'invalid', message: 'limit must be 1..1000', field: 'limit' } }, { status: 400 }),
      ),
    );
    const err = await getRecent({ limit: 5000 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'invalid', field: 'limit', message: 'limit must be 1..1000' });
  });

  it("reads the recent cache's size from health, the contract's default when health lacks it", async () => {
    server.use(http.get('*/api/health', () => HttpResponse.json({ status: 'ok', redis: 'up', recent_max: 50 })));
    expect(await getRecentMax()).toBe(50);
    server.use(http.get('*/api/health', () => HttpResponse.json({ status: 'ok', redis: 'up' })));
    expect(await getRecentMax()).toBe(DEFAULT_RECENT_MAX);
    expect(DEFAULT_RECENT_MAX).toBe(1000);
  });

  it('treats a 503 health answer as a degraded status, not an error', async () => {
    server.use(http.get('*/api/health', () => HttpResponse.json({ status: 'degraded', redis: 'down' }, { status: 503 })));
    expect(await getHealth()).toMatchObject({ status: 'degraded' });
  });

  it('says what to do when the backend cannot be reached', async () => {
    server.use(http.get('*/api/health', () => HttpResponse.error()));
    const err = await getHealth().catch((e) => e);
    expect(err.code).toBe('network');
    expect(err.message).toMatch(/make run/);
  });
});
