/**
 * The work queue of non-blocking deliveries: at most `concurrency` jobs run at once and at most `limit` wait.
 * A dead or slow target therefore costs bounded memory and bounded sockets/processes; what does not fit is
 * refused and the caller records it.
 */
export class PostQueue {
  readonly #waiting: (() => Promise<void>)[] = [];
  #running = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly limit: number,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be >= 1');
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError('queue limit must be >= 0');
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Starts or queues `job` (which must not reject); false when the queue is full. */
  push(job: () => Promise<void>): boolean {
    if (this.#running < this.concurrency) {
      this.#start(job);
      return true;
    }
    if (this.#waiting.length >= this.limit) return false;
    this.#waiting.push(job);
    return true;
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
    });
  }

  #start(job: () => Promise<void>): void {
    this.#running += 1;
    void job()
      .catch(() => {})
      .finally(() => {
        this.#running -= 1;
        const next = this.#waiting.shift();
        if (next !== undefined) this.#start(next);
        else if (this.#running === 0) this.#notifyIdle();
      });
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
