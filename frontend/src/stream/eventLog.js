const byTsDesc = (a, b) => b.ts - a.ts;

/** The newest `capacity` events, newest first by `ts`; new events are merged on commit(). */
export class EventLog {
  #items = [];
  #pending = [];

  constructor(capacity = 200) {
    this.capacity = capacity;
  }

  /** The committed events, newest first: the same array until a commit or retain changes it. */
  get events() {
    return this.#items;
  }

  push(event) {
    this.#pending.push(event);
    // Keep the buffer bounded between commits however fast events arrive.
    if (this.#pending.length >= this.capacity * 8) this.#trimPending();
  }

  #trimPending() {
    this.#pending.sort(byTsDesc);
    this.#pending.length = Math.min(this.#pending.length, this.capacity);
  }

  /** Merges pending events; returns true when the visible list changed. */
  commit() {
    if (this.#pending.length === 0) return false;
    const merged = this.#items.concat(this.#pending).sort(byTsDesc);
    merged.length = Math.min(merged.length, this.capacity);
    this.#items = merged;
    this.#pending = [];
    return true;
  }

  /** Keeps only the events, pending ones included, that `keep(event)` accepts; commits them. */
  retain(keep) {
    this.commit();
    this.#items = this.#items.filter(keep);
  }
}
