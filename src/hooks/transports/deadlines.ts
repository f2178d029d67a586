/**
 * Calls each waiter's `expire` once its time is up, with one timer for all of them: a broker transport gave each
 * delivery a timer of its own (its confirm or its batch may never come), set and cleared for every event. Every
 * waiter of one queue waits as long (`timeoutMs`), so the first added is the first due: the timer is set for the
 * oldest waiter, and when it fires the waiters that are due expire and it is set for the next one.
 */
/**
 * Milliseconds on a monotonic clock: deadlines on the wall clock (Date.now) moved with every step of it, an NTP
 * correction or a restored VM, and a step back held every waiter (the oldest first) that much longer.
 */
const monotonicNow = (): number => performance.now();

export class DeadlineQueue {
  readonly #timeoutMs: number;
  /** Waiting, in the order they were added (so by deadline), with their deadlines. */
  readonly #waiting = new Map<() => void, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#waiting.size;
  }

  /** `expire` is called once `timeoutMs` from now, unless {@link DeadlineQueue.delete}d before. */
  add(expire: () => void): void {
    this.#waiting.set(expire, monotonicNow() + this.#timeoutMs);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  /** `expire` is no longer waited for; with nothing left, no timer runs (it would hold the process up). */
  delete(expire: () => void): void {
    this.#waiting.delete(expire);
    if (this.#waiting.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, delayMs));
  }

  #fire(): void {
    this.#timer = undefined;
    const now = monotonicNow();
    for (const [expire, deadline] of this.#waiting) {
      if (deadline > now) break;
      this.#waiting.delete(expire);
      expire();
    }
    // Set again for the oldest left (an expiry may have added a waiter, and set the timer for it).
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const oldest = this.#waiting.values().next();
    if (oldest.done !== true) this.#arm(oldest.value - monotonicNow());
  }
}
