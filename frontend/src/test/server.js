import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';

export const emptyAggregate = (window = 60) => ({
  window,
  from: Date.now() - window * 1000,
  to: Date.now(),
  total: { count: 0, rate: 0 },
  metrics: {},
  sources: {},
});

/** The REST API as the contract describes it; tests override handlers with server.use(). */
export const handlers = [
  http.get('*/api/health', () => HttpResponse.json({ status: 'ok', redis: 'up', recent_max: 1000 })),
  http.get('*/api/metrics/recent', () => HttpResponse.json({ count: 0, events: [] })),
  http.get('*/api/metrics/aggregate', ({ request }) =>
    HttpResponse.json(emptyAggregate(Number(new URL(request.url).searchParams.get('window') || 60))),
  ),
];

export const server = setupServer(...handlers);
