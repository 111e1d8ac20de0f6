import { kindOf } from './metricKinds.js';

const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The window aggregate kept live, one row per metric: the server's exact aggregate (as of its
 * `to`) plus what the stream delivered after `to`, so the figures move between two polls.
 */
export function liveAggregate(aggregate, tail, now = Date.now()) {
  if (!aggregate) return [];
  const span = Math.max(1, (aggregate.to - aggregate.from) / 1000) + Math.max(0, now - aggregate.to) / 1000;
  const names = new Set([...Object.keys(aggregate.metrics ?? {}), ...Object.keys(tail ?? {})]);
  return [...names].sort().map((metric) => {
    const a = aggregate.metrics?.[metric] ?? {};
    const t = tail?.[metric] ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
    const count = (finite(a.count) ?? 0) + t.count;
    const sum = (finite(a.sum) ?? 0) + t.sum;
    const min = Math.min(finite(a.min) ?? Infinity, t.min);
    const max = Math.max(finite(a.max) ?? -Infinity, t.max);
    return {
      metric,
      kind: kindOf(metric),
      count,
      sum,
      avg: count > 0 ? sum / count : null,
      min: Number.isFinite(min) ? min : null,
      max: Number.isFinite(max) ? max : null,
      rate: count / span,
    };
  });
}
