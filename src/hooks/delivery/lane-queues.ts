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

/** An item of an {@link AgeHeap}: its time, and where the heap keeps it (-1 when out of it). */
export interface Aged {
  readonly addedAt: number;
  agePlace: number;
}

/**
 * A binary min-heap of items by `addedAt` that can remove any item it holds (each item keeps its own place), so
 * the oldest of the entries waiting is known without looking at them: `push` and `remove` in O(log n), the
 * oldest in O(1). An item newer than every other (the usual case: an event just added) settles at once.
 */
export class AgeHeap<T extends Aged> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The oldest item's time, or undefined when empty. */
  oldest(): number | undefined {
    return this.#items[0]?.addedAt;
  }

  push(item: T): void {
    if (item.agePlace !== -1) return;
    this.#items.push(item);
    item.agePlace = this.#items.length - 1;
    this.#up(item.agePlace);
  }

  remove(item: T): void {
    const at = item.agePlace;
    if (at < 0 || this.#items[at] !== item) return;
    item.agePlace = -1;
    const last = this.#items.pop() as T;
    if (at === this.#items.length) return;
    this.#items[at] = last;
    last.agePlace = at;
    this.#up(at);
    this.#down(last.agePlace);
  }

  #up(start: number): void {
    const items = this.#items;
    const item = items[start] as T;
    let at = start;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const above = items[parent] as T;
      if (above.addedAt <= item.addedAt) break;
      items[at] = above;
      above.agePlace = at;
      at = parent;
    }
    items[at] = item;
    item.agePlace = at;
  }

  #down(start: number): void {
    const items = this.#items;
    const item = items[start] as T;
    const count = items.length;
    let at = start;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= count) break;
      const right = left + 1;
      let child = left;
      if (right < count && (items[right] as T).addedAt < (items[left] as T).addedAt) child = right;
      const below = items[child] as T;
      if (below.addedAt >= item.addedAt) break;
      items[at] = below;
      below.agePlace = at;
      at = child;
    }
    items[at] = item;
    item.agePlace = at;
  }
}
