// How a metric reads best. Names are open-ended, so the kind is guessed from the name:
// a gauge (a level such as latency or active users) is averaged, an amount (money) is
// summed and counted, anything else is a counter of occurrences.
const GAUGE = /(latency|duration|_ms$|_seconds$|^active|gauge|cpu|mem|temp|load|queue|users$|level|ratio|percent)/i;
const AMOUNT = /(order|revenue|amount|sales|price|payment|spend|gmv)/i;

export function kindOf(metric) {
  if (GAUGE.test(metric)) return 'gauge';
  if (AMOUNT.test(metric)) return 'amount';
  return 'counter';
}

/** The chart's y for one per-second bucket (null bucket = a second without events). */
export function chartValue(metric, bucket) {
  if (kindOf(metric) === 'gauge') return bucket === null ? null : bucket.sum / bucket.count;
  return bucket === null ? 0 : bucket.sum;
}

/** What chartValue's y is, as the chart's caption says it. */
export function chartUnit(metric) {
  const kind = kindOf(metric);
  if (kind === 'gauge') return 'avg per second';
  if (kind === 'amount') return 'sum per second';
  return 'per second';
}
