import { BucketRing } from './buckets.js';
import { RecentIds } from './dedupe.js';
import { EventLog } from './eventLog.js';
import { matches } from './filter.js';
import { LatencyWindow, RateWindow } from './latency.js';
import { chartValue } from './metricKinds.js';

const TAIL_BUCKET_MS = 100;
const TAIL_SECONDS = 60;

function isEvent(e) {
  return (
    e !== null &&
    typeof e === 'object' &&
    typeof e.metric === 'string' &&
    typeof e.value === 'number' &&
    Number.isFinite(e.value) &&
    typeof e.ts === 'number'
  );
}

/**
 * Everything the dashboard knows about the stream, bounded: the mutable side that ingests
 * events as they arrive, and snapshot() that the React side reads at most ~20 times a second.
 */
export class StreamStore {
  constructor({ chartSeconds = 60, logSize = 200, logEveryMs = 200, dedupeSize = 20000, maxSeries = 500, filter } = {}) {
    this.chartSeconds = chartSeconds;
    // The log is unreadable faster than a few updates a second, and re-rendering 200 rows is
    // the dearest part of a flush: it follows the stream at <= 5 Hz.
    this.logEveryMs = logEveryMs;
    this.logCommittedAt = -Infinity;
    this.maxSeries = maxSeries;
    this.ids = new RecentIds(dedupeSize);
    this.log = new EventLog(logSize);
    this.latency = new LatencyWindow(5);
    this.rate = new RateWindow(5);
    this.series = new Map(); // metric -> Map(source -> { chart: BucketRing, tail: BucketRing })
    this.seriesCount = 0;
    this.filter = filter ?? { source: '', metric: '' };
    this.total = 0;
    this.duplicates = 0;
    this.invalid = 0;
    this.lastEventAt = null;
    this.outages = []; // [{ from, to }]: a quiet second in one is unknown, not zero
    this.chartsCache = null;
    this.dirty = false;
  }

  seriesFor(metric, source) {
    let bySource = this.series.get(metric);
    if (bySource === undefined) {
      if (this.seriesCount >= this.maxSeries) return null;
      bySource = new Map();
      this.series.set(metric, bySource);
    }
    let s = bySource.get(source);
    if (s === undefined) {
      if (this.seriesCount >= this.maxSeries) return null;
      s = {
        chart: new BucketRing(1000, this.chartSeconds + 3),
        tail: new BucketRing(TAIL_BUCKET_MS, (TAIL_SECONDS * 1000) / TAIL_BUCKET_MS),
      };
      bySource.set(source, s);
      this.seriesCount += 1;
    }
    return s;
  }

  /**
   * Takes a batch (oldest first). `live` events count towards latency and rate; backfilled
   * ones only fill the gaps. Returns how many were new.
   */
  ingest(events, { live = true, receivedAt = Date.now() } = {}) {
    let accepted = 0;
    for (let i = 0; i < events.length; i += 1) {
      const e = events[i];
      if (!isEvent(e)) {
        this.invalid += 1;
        continue;
      }
      if (typeof e.id === 'string' && !this.ids.add(e.id)) {
        this.duplicates += 1;
        continue;
      }
      accepted += 1;
      const source = typeof e.source === 'string' ? e.source : 'default';
      if (live) this.latency.record(receivedAt - e.ts, receivedAt);
      const s = this.seriesFor(e.metric, source);
      if (s !== null) {
        s.chart.add(e.ts, e.value);
        s.tail.add(e.ts, e.value);
      }
      if (matches(this.filter, source, e.metric)) this.log.push(e);
    }
    if (accepted > 0) {
      this.total += accepted;
      if (live) {
        this.rate.record(accepted, receivedAt);
        this.lastEventAt = receivedAt;
      }
      this.dirty = true;
    }
    return accepted;
  }

  /** The stream went down or came back at `at` (ms); the last few outages are remembered. */
  setConnected(connected, at = Date.now()) {
    const open = this.outages.length > 0 && this.outages[this.outages.length - 1].to === Infinity;
    if (connected === !open) return;
    if (connected) this.outages[this.outages.length - 1].to = at;
    else this.outages = [...this.outages.slice(-19), { from: at, to: Infinity }];
    this.chartsCache = null;
    this.dirty = true;
  }

  inOutage(start) {
    return this.outages.some((o) => start + 1000 > o.from && start < o.to);
  }

  /** A new filter: the log keeps only what still matches (a backfill refills it). */
  setFilter(filter) {
    this.filter = filter;
    this.log.retain((e) => matches(filter, e.source ?? 'default', e.metric));
    this.logCommittedAt = -Infinity;
    this.chartsCache = null;
    this.dirty = true;
  }

  /** Every metric and source seen this session (same arrays until a new one shows up). */
  names() {
    if (this.namesCache?.seriesCount === this.seriesCount) return this.namesCache.names;
    const metrics = [...this.series.keys()].sort();
    const sources = new Set();
    for (const bySource of this.series.values()) for (const src of bySource.keys()) sources.add(src);
    this.namesCache = { seriesCount: this.seriesCount, names: { metrics, sources: [...sources].sort() } };
    return this.namesCache.names;
  }

  /** Per metric, the stream's count/sum/min/max of events with ts after `sinceMs`. */
  tailSince(sinceMs, filter) {
    const out = {};
    const half = TAIL_BUCKET_MS / 2;
    for (const [metric, bySource] of this.series) {
      for (const [source, s] of bySource) {
        if (!matches(filter, source, metric)) continue;
        s.tail.forEach(sinceMs - TAIL_BUCKET_MS, s.tail.latest, (b) => {
          if (b === null || b.start + half <= sinceMs) return;
          const t = (out[metric] ??= { count: 0, sum: 0, min: Infinity, max: -Infinity });
          t.count += b.count;
          t.sum += b.sum;
          if (b.min < t.min) t.min = b.min;
          if (b.max > t.max) t.max = b.max;
        });
      }
    }
    return out;
  }

  /** Per-second points per source of one metric, for the chart: [{ source, points }]. */
  chartSeries(metric, bySource, filter, now) {
    const from = now - this.chartSeconds * 1000 - 1000;
    const lastComplete = Math.floor(now / 1000) * 1000 - 1000;
    const out = [];
    for (const [source, s] of bySource) {
      if (!matches(filter, source, metric)) continue;
      const points = [];
      s.chart.forEach(Math.max(from, s.chart.first), lastComplete, (b, start) => {
        if (b === null && this.inOutage(start)) return; // a gap, not a zero
        // A point sits at the end of its second: "the value over the second up to x".
        const y = chartValue(metric, b);
        if (y !== null) points.push({ x: start + 1000, y });
      });
      if (points.length > 0) out.push({ source, points });
    }
    out.sort((a, b) => (a.source < b.source ? -1 : 1));
    return out;
  }

  /**
   * Chart series change only when a second completes (points are per second), so they are
   * rebuilt at most once a second and keep their identity in between: charts redraw at 1 Hz.
   */
  chartsFor(filter, now) {
    const until = Math.floor(now / 1000) * 1000;
    const c = this.chartsCache;
    if (c && c.until === until && c.filter === filter && c.seriesCount === this.seriesCount) return c;
    const charts = {};
    for (const [metric, bySource] of this.series) {
      if (filter.metric && filter.metric !== metric) continue;
      const series = this.chartSeries(metric, bySource, filter, now);
      if (series.length > 0) charts[metric] = series;
    }
    this.chartsCache = { until, filter, seriesCount: this.seriesCount, charts };
    return this.chartsCache;
  }

  snapshot(filter, now = Date.now(), { tailSince = null } = {}) {
    if (now - this.logCommittedAt >= this.logEveryMs && this.log.commit()) this.logCommittedAt = now;
    const [p50, p99] = this.latency.percentiles(now, [0.5, 0.99]).values;
    const { charts, until } = this.chartsFor(filter, now);
    return {
      now,
      total: this.total,
      duplicates: this.duplicates,
      rate: this.rate.rate(now),
      latency: { p50, p99 },
      lastEventAt: this.lastEventAt,
      log: this.log.events,
      charts,
      chartsUntil: until,
      tail: tailSince === null ? {} : this.tailSince(tailSince, filter),
      ...this.names(),
    };
  }
}
