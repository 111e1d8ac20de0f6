import { describe, expect, it } from 'vitest';
import { makeEvent } from '../test/fakeSocket.js';
import { BucketRing } from './buckets.js';
import { RecentIds } from './dedupe.js';
import { EventLog } from './eventLog.js';
import { StreamStore } from './StreamStore.js';

const ALL = { source: '', metric: '' };
const NOW = 1_700_000_000_600;

describe('RecentIds', () => {
  it('rejects an id it has seen and forgets the oldest beyond capacity', () => {
    const ids = new RecentIds(3);
    expect(ids.add('a')).toBe(true);
    expect(ids.add('a')).toBe(false);
    ids.add('b');
    ids.add('c');
    ids.add('d');
    expect(ids.size).toBe(3);
    expect(ids.add('a')).toBe(true);
  });
});

describe('BucketRing', () => {
  it('keeps count, sum, min and max per bucket and overwrites old slots', () => {
    const ring = new BucketRing(1000, 3);
    ring.add(1500, 2);
    ring.add(1900, 4);
    expect(ring.get(1000)).toMatchObject({ count: 2, sum: 6, min: 2, max: 4 });
    ring.add(4200, 1);
    expect(ring.get(1000)).toBeNull();
    expect(ring.add(500, 1)).toBe(false);
  });
});

describe('EventLog', () => {
  const at = (id, ts) => ({ id, ts });

  it('shows pushed events only once committed, newest first and at most its capacity', () => {
    const log = new EventLog(2);
    log.push(at('a', 1));
    log.push(at('c', 3));
    expect(log.events).toEqual([]);
    expect(log.commit()).toBe(true);
    log.push(at('b', 2));
    expect(log.commit()).toBe(true);
    expect(log.events.map((e) => e.id)).toEqual(['c', 'b']);
    expect(log.commit()).toBe(false);
  });

  it('keeps only what retain accepts, pending events included', () => {
    const log = new EventLog(5);
    log.push(at('a', 1));
    log.commit();
    log.push(at('b', 2));
    log.push(at('cc', 3));
    log.retain((e) => e.id.length === 1);
    expect(log.events.map((e) => e.id)).toEqual(['b', 'a']);
    expect(log.commit()).toBe(false);
  });
});

describe('StreamStore', () => {
  it('de-duplicates by id across live and backfilled batches', () => {
    const store = new StreamStore();
    const a = makeEvent({ now: NOW });
    const b = makeEvent({ now: NOW });
    expect(store.ingest([a, b], { receivedAt: NOW })).toBe(2);
    expect(store.ingest([b, a, makeEvent({ now: NOW })], { live: false })).toBe(1);
    expect(store.total).toBe(3);
    expect(store.duplicates).toBe(2);
  });

  it('keeps the newest 200 events, newest first', () => {
    const store = new StreamStore();
    const events = Array.from({ length: 450 }, (_, i) => makeEvent({ now: NOW, ago: 450 - i }));
    store.ingest(events, { receivedAt: NOW });
    const { log } = store.snapshot(ALL, NOW);
    expect(log).toHaveLength(200);
    expect(log[0].id).toBe(events[449].id);
    expect(log[199].id).toBe(events[250].id);
  });

  it('orders backfilled events by time among live ones', () => {
    const store = new StreamStore();
    const live = makeEvent({ now: NOW, ago: 10 });
    const older = makeEvent({ now: NOW, ago: 2000 });
    store.ingest([live], { receivedAt: NOW });
    store.ingest([older], { live: false });
    expect(store.snapshot(ALL, NOW).log.map((e) => e.id)).toEqual([live.id, older.id]);
  });

  it('measures latency and rate from live events only', () => {
    const store = new StreamStore();
    store.ingest([makeEvent({ now: NOW, ago: 4 }), makeEvent({ now: NOW, ago: 4 })], { receivedAt: NOW });
    store.ingest([makeEvent({ now: NOW, ago: 60_000 })], { live: false, receivedAt: NOW });
    const snap = store.snapshot(ALL, NOW);
    expect(snap.latency.p99).toBeGreaterThan(3.9);
    expect(snap.latency.p99).toBeLessThan(4.1);
    expect(snap.total).toBe(3);
  });

  it('skips malformed events without stopping', () => {
    const store = new StreamStore();
    const ok = makeEvent({ now: NOW });
    expect(store.ingest([null, { metric: 'x' }, { metric: 'x', value: NaN, ts: 1 }, ok])).toBe(1);
    expect(store.invalid).toBe(3);
  });

  it('builds one per-second series per source, counters summed and gauges averaged', () => {
    const store = new StreamStore({ chartSeconds: 60 });
    const t = 1_700_000_010_000; // a whole second
    const at = (ms, source, metric, value) => ({ id: `${source}-${metric}-${ms}`, ts: t + ms, source, metric, value });
    store.ingest([
      at(-2900, 'web', 'page_views', 1),
      at(-2100, 'web', 'page_views', 1),
      at(-2500, 'api', 'page_views', 1),
      at(-2500, 'web', 'latency_ms', 10),
      at(-2400, 'web', 'latency_ms', 30),
    ], { receivedAt: t });
    const { charts } = store.snapshot(ALL, t + 300);
    expect(charts.page_views.map((s) => s.source)).toEqual(['api', 'web']);
    const web = charts.page_views[1].points;
    expect(web[0]).toEqual({ x: t - 2000, y: 2 });
    expect(web.at(-1)).toEqual({ x: t, y: 0 }); // a quiet second is a zero for a counter
    const lat = charts.latency_ms[0].points;
    expect(lat).toEqual([{ x: t - 2000, y: 20 }]); // and a gap for a gauge
  });

  it('draws no zeros for the seconds the stream was down', () => {
    const store = new StreamStore();
    const t = 1_700_000_010_000;
    store.ingest([{ id: 'a', ts: t - 4500, source: 'web', metric: 'signups', value: 1 }], { receivedAt: t - 4400 });
    store.setConnected(false, t - 3500);
    let points = store.snapshot(ALL, t + 100).charts.signups[0].points;
    expect(points).toEqual([{ x: t - 4000, y: 1 }]); // the second [t-5000, t-4000), and nothing after
    store.setConnected(true, t - 1200);
    points = store.snapshot(ALL, t + 100).charts.signups[0].points;
    expect(points).toEqual([{ x: t - 4000, y: 1 }, { x: t, y: 0 }]); // the outage stays a gap
  });

  it('leaves out a series until it has a complete second', () => {
    const store = new StreamStore();
    store.ingest([makeEvent({ now: NOW, ago: 1 })], { receivedAt: NOW });
    expect(store.snapshot(ALL, NOW).charts).toEqual({});
  });

  it('applies the filter to charts and prunes the log when it changes', () => {
    const store = new StreamStore();
    store.ingest([makeEvent({ source: 'web', now: NOW, ago: 2000 }), makeEvent({ source: 'api', now: NOW, ago: 2000 })], {
      receivedAt: NOW,
    });
    const filter = { source: 'api', metric: '' };
    store.setFilter(filter);
    const snap = store.snapshot(filter, NOW);
    expect(snap.log.map((e) => e.source)).toEqual(['api']);
    expect(snap.charts.orders.map((s) => s.source)).toEqual(['api']);
    expect(snap.sources).toEqual(['api', 'web']);
  });

  it('sums what the stream added after a given time, per metric', () => {
    const store = new StreamStore();
    const since = NOW - 1000;
    store.ingest([
      makeEvent({ now: NOW, ago: 3000, value: 100 }),
      makeEvent({ now: NOW, ago: 500, value: 5 }),
      makeEvent({ now: NOW, ago: 200, value: 7 }),
    ], { receivedAt: NOW });
    expect(store.tailSince(since, ALL)).toEqual({ orders: { count: 2, sum: 12, min: 5, max: 7 } });
  });

  it('stays bounded however many series arrive', () => {
    const store = new StreamStore({ maxSeries: 5 });
    store.ingest(Array.from({ length: 50 }, (_, i) => makeEvent({ metric: `m${i}`, now: NOW })), { receivedAt: NOW });
    expect(store.seriesCount).toBe(5);
    expect(store.total).toBe(50);
  });
});
