const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export const DASH = '–';

/** Plain digits (no separators) for machine-read hooks such as events-total. */
export function plainCount(n) {
  return String(Math.round(n));
}

/** Events per second: one decimal below 100, whole numbers above. */
export function plainRate(r) {
  if (!Number.isFinite(r)) return '0';
  return r < 100 ? r.toFixed(1) : String(Math.round(r));
}

/** Milliseconds with one decimal, e.g. "3.2"; a dash when unknown. */
export function plainMs(ms) {
  return ms === null || ms === undefined || !Number.isFinite(ms) ? DASH : ms.toFixed(1);
}

/** Human numbers for cards and tables: 1234 -> "1,234", 1.2e6 -> "1.2M". */
export function human(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  const abs = Math.abs(v);
  if (abs >= 100000) return compact.format(v);
  if (abs >= 100) return grouped.format(Math.round(v));
  if (abs >= 1) return grouped.format(Math.round(v * 100) / 100);
  if (abs === 0) return '0';
  return v.toPrecision(2);
}

/** A rate for people: "0.35/s", "3.8/s", "212/s", "10.2k/s". */
export function perSecond(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return DASH;
  if (r >= 100) return `${human(r)}/s`;
  if (r >= 1) return `${r.toFixed(1)}/s`;
  return `${r.toPrecision(2)}/s`;
}

export function clockTime(ms) {
  return clock.format(ms);
}

export function clockTimeMs(ms) {
  return `${clock.format(ms)}.${String(Math.floor(ms % 1000)).padStart(3, '0')}`;
}

export const WINDOWS = [
  { value: 60, label: '1 m', long: 'last minute' },
  { value: 300, label: '5 m', long: 'last 5 minutes' },
  { value: 900, label: '15 m', long: 'last 15 minutes' },
  { value: 3600, label: '1 h', long: 'last hour' },
  { value: 86400, label: '24 h', long: 'last 24 hours' },
];

export function windowLong(seconds) {
  return WINDOWS.find((w) => w.value === seconds)?.long ?? `last ${seconds} s`;
}

const UNIT_SUFFIX = /[_.:-](ms|s|pct|bytes|kb|mb)$/i;

/** "orders" -> "Orders", "page_views" -> "Page views", "latency_ms" -> "Latency (ms)". */
export function metricLabel(metric) {
  let unit = metric.match(UNIT_SUFFIX)?.[1];
  let base = unit ? metric.slice(0, -unit.length - 1) : metric;
  if (!base.replace(/[_.:-]+/g, '')) [unit, base] = [undefined, metric];
  const words = base.replace(/[_.:-]+/g, ' ').trim() || metric;
  const label = words.charAt(0).toUpperCase() + words.slice(1);
  return unit ? `${label} (${unit})` : label;
}
