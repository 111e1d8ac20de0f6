import { describe, expect, it } from 'vitest';
import { bucketOf, LatencyWindow, RateWindow } from './latency.js';

describe('LatencyWindow', () => {
  it('reports p50 and p99 within 2% of the exact values', () => {
    const w = new LatencyWindow(5);
    const now = 1_700_000_000_500;
    for (let i = 1; i <= 1000; i += 1) w.record(i / 10, now); // 0.1 .. 100 ms
    const [p50, p99] = w.percentiles(now, [0.5, 0.99]).values;
    expect(p50).toBeGreaterThan(50 * 0.98);
    expect(p50).toBeLessThan(50 * 1.02);
    expect(p99).toBeGreaterThan(99 * 0.98);
    expect(p99).toBeLessThan(99 * 1.02);
  });

  it('forgets samples older than its span', () => {
    const w = new LatencyWindow(5);
    const t0 = 1_700_000_000_000;
    w.record(500, t0);
    w.record(2, t0 + 6000);
    const { samples, values } = w.percentiles(t0 + 6000, [0.99]);
    expect(samples).toBe(1);
    expect(values[0]).toBeLessThan(3);
  });

  it('has no percentile without samples', () => {
    expect(new LatencyWindow().percentiles(Date.now()).values).toEqual([null, null]);
  });

  it('puts negative latencies (producer clock ahead) in the lowest bucket', () => {
    expect(bucketOf(-3)).toBe(0);
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(1e12)).toBeGreaterThan(bucketOf(1000));
  });
});

describe('RateWindow', () => {
  it('averages over the last seconds', () => {
    const r = new RateWindow(5);
    const t0 = 1_700_000_000_000;
    for (let s = 0; s < 10; s += 1) r.record(200, t0 + s * 1000);
    const rate = r.rate(t0 + 9999);
    expect(rate).toBeGreaterThan(180);
    expect(rate).toBeLessThan(220);
  });

  it('is zero before any event', () => {
    expect(new RateWindow().rate(Date.now())).toBe(0);
  });
});
