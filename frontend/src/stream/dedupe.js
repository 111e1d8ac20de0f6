/** A bounded set of the most recent ids: remembers the last `capacity` ids, forgets older ones. */
export class RecentIds {
  constructor(capacity = 20000) {
    this.capacity = capacity;
    this.ring = new Array(capacity);
    this.next = 0;
    this.set = new Set();
  }

  /** Adds `id`; returns false when it was already seen (a duplicate). */
  add(id) {
    if (this.set.has(id)) return false;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.set.delete(evicted);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.set.add(id);
    return true;
  }

  get size() {
    return this.set.size;
  }
}
