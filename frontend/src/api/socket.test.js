import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeIo } from '../test/fakeSocket.js';
import { BACKOFF, connectMetricSocket, retryDelay } from './socket.js';

describe('connectMetricSocket', () => {
  let fake;
  let statuses;
  let conn;
  const open = (extra = {}) => {
    conn = connectMetricSocket({ ioFactory: fake.io, onStatus: (s) => statuses.push(s), ...extra });
    vi.advanceTimersByTime(0);
    return fake.last();
  };

  beforeEach(() => {
    vi.useFakeTimers();
    fake = fakeIo();
    statuses = [];
  });
  afterEach(() => {
    conn?.close();
    vi.useRealTimers();
  });

  it('uses the websocket transport only and its own reconnection', () => {
    const socket = open();
    expect(socket.opts).toMatchObject({ path: '/socket.io', transports: ['websocket'], reconnection: false });
    expect(socket.connectCalls).toBe(1);
  });

  it('subscribes with the filter on every (re)connect', () => {
    const socket = open({ subscription: { sources: ['web'], metrics: [] } });
    socket.serverAccept();
    socket.serverDrop();
    vi.runOnlyPendingTimers();
    socket.serverAccept();
    expect(socket.subscriptions()).toEqual([
      { sources: ['web'], metrics: [] },
      { sources: ['web'], metrics: [] },
    ]);
  });

  it('re-subscribes at once when the filter changes', () => {
    const socket = open();
    socket.serverAccept();
    conn.subscribe({ sources: [], metrics: ['orders'] });
    expect(socket.subscriptions().at(-1)).toEqual({ sources: [], metrics: ['orders'] });
  });

  it('reports reconnecting with a countdown, retries, then connected', () => {
    const socket = open();
    socket.serverAccept();
    socket.serverDrop();
    const s = statuses.at(-1);
    expect(s.status).toBe('reconnecting');
    expect(s.retryAt).toBeGreaterThan(Date.now());
    vi.advanceTimersByTime(s.retryAt - Date.now());
    expect(socket.connectCalls).toBe(2);
    socket.serverAccept();
    expect(statuses.at(-1)).toMatchObject({ status: 'connected', connectedOnce: true });
  });

  it('turns offline after repeated failures and keeps retrying', () => {
    const socket = open();
    for (let i = 0; i <= BACKOFF.offlineAfter; i += 1) {
      socket.serverRefuse();
      vi.runOnlyPendingTimers();
    }
    expect(statuses.at(-1).status).toBe('offline');
    expect(socket.connectCalls).toBe(BACKOFF.offlineAfter + 2);
  });

  it('hands batches and gaps to the callbacks', () => {
    const onEvents = vi.fn();
    const onGap = vi.fn();
    const socket = open({ onEvents, onGap });
    socket.serverSend([{ id: 'a' }]);
    socket.fire('metrics', [{ id: 'b' }], { position: '1-2', replay: true });
    socket.fire('gap', { dropped: 7 });
    expect(onEvents).toHaveBeenNthCalledWith(1, [{ id: 'a' }], expect.any(Number), { replay: false });
    expect(onEvents).toHaveBeenNthCalledWith(2, [{ id: 'b' }], expect.any(Number), { replay: true });
    expect(onGap).toHaveBeenCalledWith({ dropped: 7 });
  });

  it('asks for positions, then resumes every reconnect from the last position seen, with its filter', () => {
    const onConnect = vi.fn();
    const socket = open({ onConnect, subscription: { sources: ['web'], metrics: [] } });
    const auth = () => new Promise((resolve) => socket.opts.auth(resolve));
    return auth().then(async (first) => {
      expect(first).toEqual({ positions: true, sources: ['web'], metrics: [] });
      socket.serverAccept();
      expect(onConnect).toHaveBeenLastCalledWith({ first: true, resumed: false });
      socket.fire('metrics', [{ id: 'a' }], { position: '1764312345123-0' });
      socket.fire('metrics', [{ id: 'b' }], { position: '1764312345123-7' });
      socket.serverDrop();
      vi.runOnlyPendingTimers();
      expect(await auth()).toEqual({ resume: '1764312345123-7', sources: ['web'], metrics: [] });
      socket.serverAccept();
      expect(onConnect).toHaveBeenLastCalledWith({ first: false, resumed: true });
    });
  });

  it('never opens a socket that is closed in the same tick', () => {
    conn = connectMetricSocket({ ioFactory: fake.io });
    conn.close();
    vi.runAllTimers();
    expect(fake.last().connectCalls).toBe(0);
  });

  it('stops retrying once closed', () => {
    const socket = open();
    socket.serverRefuse();
    conn.close();
    vi.runAllTimers();
    expect(socket.connectCalls).toBe(1);
  });
});

describe('retryDelay', () => {
  it('grows exponentially up to the cap', () => {
    const mid = () => 0.5;
    expect(retryDelay(0, mid)).toBe(BACKOFF.baseMs);
    expect(retryDelay(1, mid)).toBe(BACKOFF.baseMs * 2);
    expect(retryDelay(30, mid)).toBe(BACKOFF.maxMs);
  });
});
