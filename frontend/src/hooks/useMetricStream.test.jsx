import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { makeEvent } from '../test/fakeSocket.js';
import { useMetricStream } from './useMetricStream.js';

const FILTER = { source: '', metric: '' };

// The start-up gate played by hand: `open()` is the page having loaded and gone idle.
function manualStart() {
  const gate = { run: null, cancelled: false };
  gate.startAfter = (run) => {
    gate.run = run;
    return () => {
      gate.cancelled = true;
    };
  };
  gate.open = () => act(() => gate.run());
  return gate;
}

// connect() as useMetricStream calls it, recording the handlers it is given.
function fakeConnect() {
  const calls = [];
  const connect = vi.fn((handlers) => {
    const conn = { handlers, subscribe: vi.fn(), retryNow: vi.fn(), close: vi.fn() };
    calls.push(conn);
    return conn;
  });
  return { connect, last: () => calls[calls.length - 1] };
}

function fakeClient(events = []) {
  return { getRecentMax: vi.fn(async () => 1000), getRecent: vi.fn(async () => events) };
}

describe('useMetricStream', () => {
  it('opens the stream only once the page is through its start-up, then backfills what came before', async () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const before = makeEvent({ ago: 3000 });
    const client = fakeClient([before]);
    const { result } = renderHook(() => useMetricStream({ filter: FILTER, connect: socket.connect, client, startAfter: gate.startAfter }));
    expect(socket.connect).not.toHaveBeenCalled();
    expect(result.current.connection.status).toBe('reconnecting');

    gate.open();
    expect(socket.connect).toHaveBeenCalledTimes(1);
    const { handlers } = socket.last();
    act(() => {
      handlers.onStatus({ status: 'connected', retryAt: null, attempt: 0, connectedOnce: true });
      handlers.onConnect({ first: true, resumed: false });
    });
    await waitFor(() => expect(result.current.snapshot.total).toBe(1)); // published before the stream opened
    expect(client.getRecent).toHaveBeenCalledTimes(1);
    expect(result.current.snapshot.latency.p99).toBeNull(); // a backfilled event is not a live sample

    // Every live event after the stream opens counts, in the total and in the latency readout.
    const now = Date.now();
    act(() => handlers.onEvents([makeEvent({ ago: 40, now }), makeEvent({ ago: 60, now })], now));
    await waitFor(() => expect(result.current.snapshot.total).toBe(3));
    expect(result.current.snapshot.latency.p99).toBeCloseTo(60, -1);
  });

  it('never opens a stream for a dashboard that goes away during start-up', () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const { unmount } = renderHook(() =>
      useMetricStream({ filter: FILTER, connect: socket.connect, client: fakeClient(), startAfter: gate.startAfter }),
    );
    unmount();
    expect(gate.cancelled).toBe(true);
    expect(socket.connect).not.toHaveBeenCalled();
  });

  it('closes the stream it opened on unmount', () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const { unmount } = renderHook(() =>
      useMetricStream({ filter: FILTER, connect: socket.connect, client: fakeClient(), startAfter: gate.startAfter }),
    );
    gate.open();
    unmount();
    expect(socket.last().close).toHaveBeenCalledTimes(1);
  });
});
