import { describe, expect, it } from 'vitest';
import { liveAggregate } from './liveAggregate.js';

describe('liveAggregate', () => {
  const aggregate = {
    window: 60,
    from: 1_000_000,
    to: 1_060_000,
    metrics: { orders: { count: 10, sum: 100, min: 1, max: 50, avg: 10, rate: 0.17 } },
  };

  it('adds what the stream delivered after the aggregate to its exact numbers', () => {
    const [orders] = liveAggregate(aggregate, { orders: { count: 2, sum: 300, min: 100, max: 200 } }, 1_060_000);
    expect(orders).toMatchObject({ metric: 'orders', kind: 'amount', count: 12, sum: 400, min: 1, max: 200 });
    expect(orders.avg).toBeCloseTo(400 / 12);
    expect(orders.rate).toBeCloseTo(12 / 60);
  });

  it('shows a metric that only the stream has seen so far', () => {
    const names = liveAggregate(aggregate, { signups: { count: 1, sum: 1, min: 1, max: 1 } }).map((c) => c.metric);
    expect(names).toEqual(['orders', 'signups']);
  });

  it('is empty before the first aggregate', () => {
    expect(liveAggregate(null, {})).toEqual([]);
  });
});
