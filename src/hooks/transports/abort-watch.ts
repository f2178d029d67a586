/**
 * Calls back what must stop when a delivery's signal aborts, with one listener per signal. Every delivery of a
 * server carries the same signal (the engine's closing one): an EventTarget listener added and removed for each
 * delivery cost each one several microseconds and some garbage, where a set insertion and deletion cost next
 * to nothing.
 */
export class AbortWatch {
  readonly #cancels = new WeakMap<AbortSignal, Set<() => void>>();

  /** Calls `cancel` once when `signal` aborts (never when it already has); returns the function that forgets it. */
  on(signal: AbortSignal, cancel: () => void): () => void {
    let cancels = this.#cancels.get(signal);
    if (cancels === undefined) {
      const registered = new Set<() => void>();
      cancels = registered;
      this.#cancels.set(signal, registered);
      signal.addEventListener(
        'abort',
        () => {
          const now = [...registered];
          registered.clear();
          for (const each of now) each();
        },
        { once: true },
      );
    }
    const set = cancels;
    set.add(cancel);
    return () => {
      set.delete(cancel);
    };
  }
}
