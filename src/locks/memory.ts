import { type AcquireOptions, type Lock, type Locker, LockTimeoutError } from './locker.ts';

interface Waiter {
  readonly options: AcquireOptions;
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

interface Entry {
  holder: AcquireOptions;
  readonly waiters: Waiter[];
}

/**
 * In-process locks. A waiter asks the holder to release (the way tusd resolves a client that reconnected
 * while its old request is still open) and queues; release hands the lock to the next waiter in order.
 * No polling: waiting is a queue resolved on release, bounded by a timer.
 */
export class MemoryLocker implements Locker {
  readonly #entries = new Map<string, Entry>();

  acquire(key: string, options: AcquireOptions): Promise<Lock> {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#entries.set(key, { holder: options, waiters: [] });
      return Promise.resolve(this.#lock(key, options));
    }
    return new Promise<Lock>((resolve, reject) => {
      const waiter: Waiter = {
        options,
        grant: () => resolve(this.#lock(key, options)),
        timer: setTimeout(() => {
          const index = entry.waiters.indexOf(waiter);
          if (index !== -1) entry.waiters.splice(index, 1);
          reject(new LockTimeoutError(key));
        }, options.timeoutMs),
      };
      entry.waiters.push(waiter);
      entry.holder.onReleaseRequest();
    });
  }

  #lock(key: string, holder: AcquireOptions): Lock {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#handOver(key, holder);
      },
    };
  }

  #handOver(key: string, previous: AcquireOptions): void {
    const entry = this.#entries.get(key);
    if (!entry || entry.holder !== previous) return;
    const next = entry.waiters.shift();
    if (!next) {
      this.#entries.delete(key);
      return;
    }
    clearTimeout(next.timer);
    entry.holder = next.options;
    next.grant();
    // Someone else is still waiting: the new holder is asked to be brief as well.
    if (entry.waiters.length > 0) next.options.onReleaseRequest();
  }
}
