/**
 * The two queues the outbox dispatches from, so that adding or dispatching an event costs the same however many
 * events wait: a first-in first-out queue of lanes ready to send (one per target), and a heap of lanes waiting for
 * a time (an entry's retry), earliest first. Both hold plain references; the outbox checks an item is still
 * current when it takes it out, so nothing has to be found and removed in the middle.
 */

/** First in, first out; `push` and `shift` in constant time (amortised). */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    // Drops the consumed front once it is half of the array: each item is moved at most once on average.
    if (this.#head * 2 >= this.#items.length && this.#head > 16) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** A binary min-heap of items by a time; `push` and `pop` in O(log n). */
export class TimeHeap<T> {
  readonly #times: number[] = [];
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The earliest time held, or undefined when empty. */
  peekTime(): number | undefined {
    return this.#times[0];
  }

  push(time: number, item: T): void {
    this.#times.push(time);
    this.#items.push(item);
    let at = this.#times.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if ((this.#times[parent] ?? 0) <= time) break;
      this.#swap(at, parent);
      at = parent;
    }
  }

  /** Removes and returns the item of the earliest time. */
  pop(): T | undefined {
    const last = this.#items.length - 1;
    if (last < 0) return undefined;
    const top = this.#items[0];
    this.#swap(0, last);
    this.#times.pop();
    this.#items.pop();
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let smallest = at;
      if (left < last && (this.#times[left] ?? 0) < (this.#times[smallest] ?? 0)) smallest = left;
      if (right < last && (this.#times[right] ?? 0) < (this.#times[smallest] ?? 0)) smallest = right;
      if (smallest === at) break;
      this.#swap(at, smallest);
      at = smallest;
    }
    return top;
  }

  #swap(a: number, b: number): void {
    const time = this.#times[a] as number;
    this.#times[a] = this.#times[b] as number;
    this.#times[b] = time;
    const item = this.#items[a] as T;
    this.#items[a] = this.#items[b] as T;
    this.#items[b] = item;
  }
}
