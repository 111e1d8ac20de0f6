import { describe, expect, it } from 'vitest';
import { sourceColor } from './colors.js';
import { mergeCounters } from './counters.js';
import { human, plainMs, plainRate } from './format.js';
import { kindOf, metricLabel } from './metricKinds.js';

describe('mergeCounters', () => {
  const aggregate = {
    window: 60,
    from: 1_000_000,
    to: 1_060_000,
    metrics: { orders: { count: 10, sum: 100, min: 1, max: 50, avg: 10, rate: 0.17 } },
  };

  it('adds what the stream delivered after the aggregate to its exact numbers', () => {
    const [orders] = mergeCounters(aggregate, { orders: { count: 2, sum: 300, min: 100, max: 200 } }, 1_060_000);
    expect(orders).toMatchObject({ metric: 'orders', kind: 'amount', count: 12, sum: 400, min: 1, max: 200 });
    expect(orders.avg).toBeCloseTo(400 / 12);
    expect(orders.rate).toBeCloseTo(12 / 60);
  });

  it('shows a metric that only the stream has seen so far', () => {
    const names = mergeCounters(aggregate, { signups: { count: 1, sum: 1, min: 1, max: 1 } }).map((c) => c.metric);
    expect(names).toEqual(['orders', 'signups']);
  });

  it('is empty before the first aggregate', () => {
    expect(mergeCounters(null, {})).toEqual([]);
  });
});

describe('formatting', () => {
  it('writes the machine-read numbers plainly', () => {
    expect(plainMs(3.24)).toBe('3.2');
    expect(plainMs(null)).toBe('–');
    expect(plainRate(12.34)).toBe('12.3');
    expect(plainRate(10234.4)).toBe('10234');
  });

  it('writes human numbers compactly', () => {
    expect(human(1234.5)).toBe('1,235');
    expect(human(2_500_000)).toBe('2.5M');
    expect(human(0.1234)).toBe('0.12');
    expect(human(null)).toBe('–');
  });
});

describe('metric kinds and colours', () => {
  it('guesses how a metric reads best from its name', () => {
    expect(kindOf('latency_ms')).toBe('gauge');
    expect(kindOf('active_users')).toBe('gauge');
    expect(kindOf('orders')).toBe('amount');
    expect(kindOf('page_views')).toBe('counter');
    expect(metricLabel('page_views')).toBe('Page views');
    expect(metricLabel('latency_ms')).toBe('Latency (ms)');
  });

  it('gives every source a stable colour', () => {
    expect(sourceColor('web')).not.toBe(sourceColor('mobile'));
    expect(sourceColor('billing')).toBe(sourceColor('billing'));
  });
});
