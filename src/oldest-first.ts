/**
 * Takes the oldest entries out of an insertion-ordered Map (one re-inserted on each use is then least recently
 * used first), through one iterator kept for good. `map.keys().next()` makes a new iterator each time, which
 * steps over every key deleted since the Map last compacted: with a key deleted per use (the re-insert) that is
 * 4-19 us per eviction once 100,000 keys went through, against 0.3 with the kept iterator.
 *
 * The kept iterator is right because every key it has passed was taken out by {@link OldestFirst.evict}: what
 * remains before it was deleted, or re-inserted at the end (after it). The Map's own iterator follows deletes,
 * inserts, `clear()` and compaction; only once spent (it came to the end) it stays spent and a new one starts.
 */
export class OldestFirst<K, V> {
  readonly #map: Map<K, V>;
  #keys: MapIterator<K>;

  constructor(map: Map<K, V>) {
    this.#map = map;
    this.#keys = map.keys();
  }

  /** Deletes the oldest entry of the Map and returns it, or undefined when the Map is empty. */
  evict(): [K, V] | undefined {
    const map = this.#map;
    if (map.size === 0) return undefined;
    let next = this.#keys.next();
    if (next.done === true) {
      this.#keys = map.keys();
      next = this.#keys.next();
      if (next.done === true) return undefined;
    }
    const key = next.value;
    const value = map.get(key) as V;
    map.delete(key);
    return [key, value];
  }
}
