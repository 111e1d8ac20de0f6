import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeIo, makeEvent } from '../test/fakeSocket.js';
import { emptyAggregate, server } from '../test/server.js';
import Dashboard from './Dashboard.jsx';

const fake = vi.hoisted(() => ({ current: null }));
vi.mock('socket.io-client', () => ({ io: (...args) => fake.current.io(...args) }));

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

beforeEach(() => {
  fake.current = fakeIo();
  window.history.replaceState(null, '', '/');
});

const socket = () => fake.current.last();
async function renderDashboard() {
  const view = render(<Dashboard theme="light" onToggleTheme={() => {}} />);
  await waitFor(() => expect(socket().connectCalls).toBe(1)); // the socket opens on the next tick
  return view;
}

describe('Dashboard', () => {
  it('connects, subscribes to everything and counts the stream', async () => {
    await renderDashboard();
    expect(screen.getByTestId('connection-status')).toHaveTextContent('reconnecting');
    act(() => socket().serverAccept());
    expect(screen.getByTestId('connection-status')).toHaveTextContent('connected');
    expect(socket().subscriptions()).toEqual([{ sources: [], metrics: [] }]);

    act(() => socket().serverSend([makeEvent({ ago: 2000 }), makeEvent({ source: 'api', metric: 'signups', ago: 2000 })]));
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('2'));
    await waitFor(() => expect(within(screen.getByTestId('event-log')).getAllByTestId('event-row')).toHaveLength(2));
    expect(screen.getByTestId('chart-orders')).toBeInTheDocument();
    expect(screen.getByTestId('latency-p99').textContent).toMatch(/^\d+\.\d$/);
  });

  it('says how to start the generator while the stream is empty', async () => {
    await renderDashboard();
    act(() => socket().serverAccept());
    expect((await screen.findAllByText(/python backend\/generator\.py/)).length).toBeGreaterThan(0);
  });

  it('narrows the server subscription and the log when a source is picked', async () => {
    await renderDashboard();
    act(() => socket().serverAccept());
    act(() => socket().serverSend([makeEvent({ source: 'web' }), makeEvent({ source: 'api' })]));
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(2));
    await userEvent.selectOptions(screen.getByTestId('source-filter'), 'api');
    expect(socket().subscriptions().at(-1)).toEqual({ sources: ['api'], metrics: [] });
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(1));
    expect(screen.getByTestId('event-row')).toHaveAttribute('data-source', 'api');
    expect(window.location.search).toBe('?source=api');
  });

  it('backfills after a reconnect without duplicating events', async () => {
    const seen = makeEvent({ ago: 3000 });
    const missed = makeEvent({ ago: 1000 });
    server.use(http.get('*/api/metrics/recent', () => HttpResponse.json({ count: 2, events: [missed, seen] })));
    await renderDashboard();
    act(() => socket().serverAccept());
    act(() => socket().serverSend([seen]));
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('2'));
    act(() => socket().serverDrop());
    expect(screen.getByTestId('connection-status')).toHaveTextContent('reconnecting');
    act(() => socket().serverAccept());
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(2));
    const ids = screen.getAllByTestId('event-row').map((r) => r.dataset.eventId);
    expect(ids).toEqual([missed.id, seen.id]);
    expect(screen.getByTestId('events-total')).toHaveTextContent('2');
  });

  it('resumes from its last log position after a reconnect, without a backfill or a hole', async () => {
    let recentCalls = 0;
    server.use(
      http.get('*/api/metrics/recent', () => {
        recentCalls += 1;
        return HttpResponse.json({ count: 0, events: [] });
      }),
    );
    await renderDashboard();
    expect(socket().lastAuth).toEqual({ positions: true, sources: [], metrics: [] });
    act(() => socket().serverAccept());
    // A fresh tab fills its log over REST before it opens the stream, and again on its fresh connect.
    await waitFor(() => expect(recentCalls).toBe(2));
    act(() => socket().fire('metrics', [makeEvent({ ago: 2000 })], { position: '1764312345123-4' }));
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('1'));
    act(() => socket().serverDrop());
    await waitFor(() => expect(socket().connectCalls).toBe(2));
    expect(socket().lastAuth).toEqual({ resume: '1764312345123-4', sources: [], metrics: [] });
    act(() => socket().serverAccept());
    const missed = [makeEvent({ ago: 1500 }), makeEvent({ ago: 1200 })];
    act(() => socket().fire('metrics', missed, { position: '1764312345123-9', replay: true }));
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('3'));
    expect(recentCalls).toBe(2); // the server replayed what was missed: no REST backfill
  });

  it('backfills as many events as the server says it keeps', async () => {
    const limits = [];
    server.use(
      http.get('*/api/health', () => HttpResponse.json({ status: 'ok', redis: 'up', recent_max: 500 })),
      http.get('*/api/metrics/recent', ({ request }) => {
        limits.push(Number(new URL(request.url).searchParams.get('limit')));
        return HttpResponse.json({ count: 1, events: [makeEvent({ ago: 3000 })] });
      }),
    );
    await renderDashboard();
    act(() => socket().serverAccept());
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('1'));
    expect(limits).toEqual([500, 500]); // before the stream opens, and on its fresh connect
  });

  it('shows a gap notice when the server dropped events, then backfills', async () => {
    let recentCalls = 0;
    server.use(
      http.get('*/api/metrics/recent', () => {
        recentCalls += 1;
        return HttpResponse.json({ count: 1, events: [makeEvent()] });
      }),
    );
    await renderDashboard();
    act(() => socket().serverAccept());
    await waitFor(() => expect(recentCalls).toBe(2)); // before the stream opens, and on its fresh connect
    act(() => socket().fire('gap', { dropped: 1500 }));
    expect(await screen.findByTestId('gap-notice')).toHaveTextContent('skipped 1500 events');
    await waitFor(() => expect(recentCalls).toBe(3));
  });

  it('switches the aggregate window', async () => {
    const windows = [];
    server.use(
      http.get('*/api/metrics/aggregate', ({ request }) => {
        const w = Number(new URL(request.url).searchParams.get('window'));
        windows.push(w);
        return HttpResponse.json({
          ...emptyAggregate(w),
          total: { count: 5, rate: 5 / w },
          metrics: { orders: { count: 5, sum: 50, avg: 10, min: 1, max: 20, rate: 5 / w, p50: 9, p95: 19, p99: 20 } },
        });
      }),
    );
    await renderDashboard();
    await waitFor(() => expect(screen.getByTestId('aggregate-panel')).toHaveAttribute('data-window', '60'));
    expect(screen.getByTestId('counter-value-orders')).toHaveTextContent(/^50$/);
    await userEvent.selectOptions(screen.getByTestId('window-select'), '900');
    await waitFor(() => expect(screen.getByTestId('aggregate-panel')).toHaveAttribute('data-window', '900'));
    expect(windows).toContain(900);
  });

  it('freezes the log while paused', async () => {
    await renderDashboard();
    act(() => socket().serverAccept());
    act(() => socket().serverSend([makeEvent()]));
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(1));
    await userEvent.click(screen.getByTestId('pause-button'));
    act(() => socket().serverSend([makeEvent()]));
    await waitFor(() => expect(screen.getByTestId('events-total')).toHaveTextContent('2'));
    expect(screen.getAllByTestId('event-row')).toHaveLength(1);
    expect(screen.getByTestId('pause-button')).toHaveTextContent('Resume');
    await userEvent.click(screen.getByTestId('pause-button'));
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(2));
  });

  it('does not say the backend is unreachable before the stream has tried it', async () => {
    await renderDashboard();
    expect(screen.getByTestId('connection-status')).toHaveTextContent('reconnecting');
    expect(screen.queryByText("Can't reach the backend.")).toBeNull();
    act(() => socket().serverRefuse());
    expect(await screen.findByText("Can't reach the backend.")).toBeInTheDocument();
  });

  it('tells the user to start the backend when it cannot be reached', async () => {
    server.use(http.get('*/api/*', () => HttpResponse.error()));
    await renderDashboard();
    act(() => socket().serverRefuse());
    expect(await screen.findByText("Can't reach the backend.")).toBeInTheDocument();
    expect(screen.getByTestId('retry-countdown')).toBeInTheDocument();
  });
});
