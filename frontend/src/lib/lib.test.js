import { describe, expect, it } from 'vitest';
import { sourceColor } from './colors.js';
import { human, metricLabel, plainMs, plainRate } from './format.js';

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

describe('metric labels and colours', () => {
  it('makes a metric name readable, its unit in brackets', () => {
    expect(metricLabel('page_views')).toBe('Page views');
    expect(metricLabel('latency_ms')).toBe('Latency (ms)');
    expect(metricLabel('ms')).toBe('Ms');
  });

  it('gives every source a stable colour', () => {
    expect(sourceColor('web')).not.toBe(sourceColor('mobile'));
    expect(sourceColor('billing')).toBe(sourceColor('billing'));
  });
});
