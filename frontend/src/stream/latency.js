// End-to-end latency over a sliding window of whole seconds, kept as log-bucketed histograms
// (1% relative error, like a DDSketch) so 10,000 samples/s cost O(1) each and percentiles
// never need a sort.
const GAMMA = 1.02;
const LOG_GAMMA = Math.log(GAMMA);
const MIN_MS = 0.01;
const MAX_MS = 10 * 60 * 1000;
export const LATENCY_BUCKETS = 2 + Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_GAMMA);

export function bucketOf(ms) {
  if (!(ms > MIN_MS)) return 0;
  const i = 1 + Math.floor(Math.log(ms / MIN_MS) / LOG_GAMMA);
  return i < LATENCY_BUCKETS ? i : LATENCY_BUCKETS - 1;
}

function representative(i) {
  return i === 0 ? 0 : MIN_MS * GAMMA ** (i - 0.5);
}

export class LatencyWindow {
  constructor(spanSeconds = 5) {
    this.span = spanSeconds;
    this.slots = Array.from({ length: spanSeconds + 1 }, () => ({
      sec: -1,
      n: 0,
      counts: new Uint32Array(LATENCY_BUCKETS),
    }));
  }

  slotFor(sec) {
    const slot = this.slots[sec % this.slots.length];
    if (slot.sec !== sec) {
      slot.sec = sec;
      slot.n = 0;
      slot.counts.fill(0);
    }
    return slot;
  }

  record(latencyMs, nowMs) {
    const slot = this.slotFor(Math.floor(nowMs / 1000));
    slot.counts[bucketOf(latencyMs)] += 1;
    slot.n += 1;
  }

  /** Percentiles (0..1) of the samples of the last `span` seconds; null when there are none. */
  percentiles(nowMs, qs = [0.5, 0.99]) {
    const nowSec = Math.floor(nowMs / 1000);
    const live = this.slots.filter((s) => s.n > 0 && s.sec > nowSec - this.span && s.sec <= nowSec);
    const total = live.reduce((acc, s) => acc + s.n, 0);
    if (total === 0) return { samples: 0, values: qs.map(() => null) };
    const ranks = qs.map((q) => Math.max(1, Math.ceil(q * total)));
    const values = new Array(qs.length).fill(null);
    let seen = 0;
    let next = 0;
    for (let i = 0; i < LATENCY_BUCKETS && next < ranks.length; i += 1) {
      for (const s of live) seen += s.counts[i];
      while (next < ranks.length && seen >= ranks[next]) {
        values[next] = representative(i);
        next += 1;
      }
    }
    return { samples: total, values };
  }
}

/** Events per second over the last `span` whole seconds (plus the current partial one). */
export class RateWindow {
  constructor(spanSeconds = 5) {
    this.span = spanSeconds;
    this.counts = new Float64Array(spanSeconds + 1);
    this.secs = new Float64Array(spanSeconds + 1).fill(-1);
    this.startedAt = null;
  }

  record(n, nowMs) {
    if (this.startedAt === null) this.startedAt = nowMs;
    const sec = Math.floor(nowMs / 1000);
    const i = sec % this.counts.length;
    if (this.secs[i] !== sec) {
      this.secs[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i] += n;
  }

  rate(nowMs) {
    if (this.startedAt === null) return 0;
    const nowSec = Math.floor(nowMs / 1000);
    let n = 0;
    for (let i = 0; i < this.counts.length; i += 1) {
      if (this.secs[i] > nowSec - this.span - 1 && this.secs[i] <= nowSec) n += this.counts[i];
    }
    // The window is `span` full seconds plus the elapsed part of the current one, or less
    // right after the first event of the session.
    const windowMs = Math.min(this.span * 1000 + (nowMs % 1000), nowMs - this.startedAt);
    return n / Math.max(windowMs, 1000) * 1000;
  }
}
