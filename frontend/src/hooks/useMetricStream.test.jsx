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

const render = (socket, client, gate) =>
  renderHook(() => useMetricStream({ filter: FILTER, connect: socket.connect, client, startAfter: gate.startAfter }));

describe('useMetricStream', () => {
  it('shows the last events over REST first, opens the stream only after start-up, then backfills once more', async () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const before = makeEvent({ ago: 3000 });
    const client = fakeClient([before]);
    const { result } = render(socket, client, gate);
    await waitFor(() => expect(result.current.snapshot.total).toBe(1)); // shown before the stream opens
    expect(gate.run).not.toBeNull(); // start-up is awaited only once they are shown
    expect(socket.connect).not.toHaveBeenCalled();
    expect(result.current.connection.status).toBe('reconnecting');

    gate.open();
    expect(socket.connect).toHaveBeenCalledTimes(1);
    const { handlers } = socket.last();
    act(() => {
      handlers.onStatus({ status: 'connected', retryAt: null, attempt: 0, connectedOnce: true });
      handlers.onConnect({ first: true, resumed: false });
    });
    // The fresh connect backfills what was published meanwhile; what the tab has is not counted twice.
    await waitFor(() => expect(client.getRecent).toHaveBeenCalledTimes(2));
    await waitFor(() => expect(result.current.backfill.running).toBe(false));
    expect(result.current.snapshot.total).toBe(1);
    expect(result.current.snapshot.latency.p99).toBeNull(); // a backfilled event is not a live sample

    // Every live event after the stream opens counts, in the total and in the latency readout.
    const now = Date.now();
    act(() => handlers.onEvents([makeEvent({ ago: 40, now }), makeEvent({ ago: 60, now })], now));
    await waitFor(() => expect(result.current.snapshot.total).toBe(3));
    expect(result.current.snapshot.latency.p99).toBeCloseTo(60, -1);
  });

  it('opens the stream all the same when the first backfill fails', async () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const client = { getRecentMax: vi.fn(async () => 1000), getRecent: vi.fn(async () => Promise.reject(new Error('503'))) };
    render(socket, client, gate);
    await waitFor(() => expect(gate.run).not.toBeNull());
    gate.open();
    expect(socket.connect).toHaveBeenCalledTimes(1);
  });

  it('does not wait for a first backfill that hangs longer than 3 s', async () => {
    vi.useFakeTimers();
    try {
      const gate = manualStart();
      const socket = fakeConnect();
      const client = { getRecentMax: vi.fn(async () => 1000), getRecent: vi.fn(() => new Promise(() => {})) };
      render(socket, client, gate);
      await act(() => vi.advanceTimersByTimeAsync(2900));
      expect(gate.run).toBeNull();
      await act(() => vi.advanceTimersByTimeAsync(200));
      expect(gate.run).not.toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('never opens a stream for a dashboard that goes away during start-up', async () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const { unmount } = render(socket, fakeClient(), gate);
    await waitFor(() => expect(gate.run).not.toBeNull());
    unmount();
    expect(gate.cancelled).toBe(true);

    const early = manualStart(); // gone before its first backfill has even answered
    render(socket, { getRecentMax: vi.fn(async () => 1000), getRecent: vi.fn(() => new Promise(() => {})) }, early).unmount();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(early.run).toBeNull();
    expect(socket.connect).not.toHaveBeenCalled();
  });

  it('closes the stream it opened on unmount', async () => {
    const gate = manualStart();
    const socket = fakeConnect();
    const { unmount } = render(socket, fakeClient(), gate);
    await waitFor(() => expect(gate.run).not.toBeNull());
    gate.open();
    unmount();
    expect(socket.last().close).toHaveBeenCalledTimes(1);
  });
});
