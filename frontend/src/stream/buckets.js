/**
 * Fixed-width time buckets (count/sum/min/max) in a ring: memory stays constant however
 * many events arrive; buckets older than `capacity` widths are overwritten.
 */
export class BucketRing {
  constructor(bucketMs, capacity) {
    this.bucketMs = bucketMs;
    this.capacity = capacity;
    this.slots = new Array(capacity).fill(null);
    this.latest = -Infinity;
    this.first = Infinity;
  }

  indexOf(start) {
    const i = (start / this.bucketMs) % this.capacity;
    return i < 0 ? i + this.capacity : i;
  }

  add(ts, value) {
    const start = Math.floor(ts / this.bucketMs) * this.bucketMs;
    if (start <= this.latest - this.capacity * this.bucketMs) return false;
    const i = this.indexOf(start);
    let b = this.slots[i];
    if (b === null || b.start !== start) {
      if (b !== null && b.start > start) return false;
      b = { start, count: 0, sum: 0, min: Infinity, max: -Infinity };
      this.slots[i] = b;
    }
    b.count += 1;
    b.sum += value;
    if (value < b.min) b.min = value;
    if (value > b.max) b.max = value;
    if (start > this.latest) this.latest = start;
    if (start < this.first) this.first = start;
    return true;
  }

  get(start) {
    const b = this.slots[this.indexOf(start)];
    return b !== null && b.start === start ? b : null;
  }

  /** Calls fn(bucketOrNull, start) for every bucket start in [fromMs, toMs], oldest first. */
  forEach(fromMs, toMs, fn) {
    const w = this.bucketMs;
    const oldest = Math.max(Math.floor(fromMs / w) * w, this.latest - (this.capacity - 1) * w);
    for (let start = oldest; start <= toMs; start += w) fn(this.get(start), start);
  }
}
