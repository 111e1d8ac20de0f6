import { describe, expect, it } from 'vitest';
import { chartUnit, chartValue, kindOf } from './metricKinds.js';

describe('metric kinds', () => {
  it('guesses how a metric reads best from its name', () => {
    expect(kindOf('latency_ms')).toBe('gauge');
    expect(kindOf('active_users')).toBe('gauge');
    expect(kindOf('orders')).toBe('amount');
    expect(kindOf('page_views')).toBe('counter');
  });

  it('charts a gauge as its average and a gap, anything else as its sum and a zero', () => {
    const bucket = { count: 4, sum: 100 };
    expect([chartValue('latency_ms', bucket), chartValue('latency_ms', null)]).toEqual([25, null]);
    expect([chartValue('orders', bucket), chartValue('orders', null)]).toEqual([100, 0]);
    expect([chartValue('page_views', bucket), chartValue('page_views', null)]).toEqual([100, 0]);
    expect(['latency_ms', 'orders', 'page_views'].map(chartUnit)).toEqual(['avg per second', 'sum per second', 'per second']);
  });
});
