import { type AcquireOptions, type Lock, type Locker, LockTimeoutError } from './locker.ts';
import { MemoryLocker } from './memory.ts';

/** A shared lock held by this instance; releasing it also tells every instance it is free. */
export interface Lease {
  release(): Promise<void>;
}

/** What a lease backend reports to the locker. */
export interface LeaseEvents {
  /** Another instance freed `key`: waiters try again now. */
  released(key: string): void;
  /** Another instance wants `key`: the holder here should finish soon. */
  releaseRequested(key: string): void;
  /** The lease on `key` (undefined: on every key) is no longer held here (expired, session gone). */
  lost(key: string | undefined): void;
}

/** A shared store of leases: Redis keys, PostgreSQL advisory locks. */
export interface LeaseBackend {
  /** Starts listening for the other instances' messages; called once before the first attempt. */
  start(events: LeaseEvents): Promise<void>;
  /** One attempt: the lease, or how long to wait at most before trying again (a released message may come first). */
  tryTake(key: string): Promise<{ readonly lease: Lease } | { readonly retryInMs: number }>;
  /** Asks whichever instance holds `key` to release it. */
  requestRelease(key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A lock shared by every instance. Requests in this process queue on a local lock first (ordering and
 * takeover without a round trip); the winner then takes the shared lease. When another instance holds
 * it, the waiter asks that holder to release (tusd's takeover, across machines) and waits for the
 * released message, bounded by the lease's own expiry and the timeout. No polling in between.
 */
export class DistributedLocker implements Locker {
  readonly #backend: LeaseBackend;
  readonly #local = new MemoryLocker();
  readonly #holders = new Map<string, AcquireOptions>();
  readonly #wakers = new Map<string, Set<() => void>>();
  #started: Promise<void> | undefined;

  constructor(backend: LeaseBackend) {
    this.#backend = backend;
  }

  #start(): Promise<void> {
    if (!this.#started) {
      const started = this.#backend.start({
        released: (key) => this.#wake(key),
        releaseRequested: (key) => this.#holders.get(key)?.onReleaseRequest(),
        lost: (key) => {
          if (key !== undefined) this.#holders.get(key)?.onReleaseRequest();
          else for (const holder of this.#holders.values()) holder.onReleaseRequest();
        },
      });
      this.#started = started;
      started.catch(() => {
        if (this.#started === started) this.#started = undefined;
      });
    }
    return this.#started;
  }

  #wake(key: string): void {
    const wakers = this.#wakers.get(key);
    if (!wakers) return;
    this.#wakers.delete(key);
    for (const wake of wakers) wake();
  }

  /** Resolves when `key` is announced free or after `ms`, whichever comes first. Registered before the attempt. */
  #waiter(key: string): { readonly wait: (ms: number) => Promise<void>; readonly cancel: () => void } {
    let wake: () => void = () => undefined;
    let woken = false;
    const announced = new Promise<void>((resolve) => {
      wake = () => {
        woken = true;
        resolve();
      };
    });
    let wakers = this.#wakers.get(key);
    if (!wakers) {
      wakers = new Set();
      this.#wakers.set(key, wakers);
    }
    wakers.add(wake);
    const cancel = (): void => {
      const current = this.#wakers.get(key);
      current?.delete(wake);
      if (current?.size === 0) this.#wakers.delete(key);
    };
    return {
      cancel,
      wait: async (ms) => {
        if (woken) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([announced, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
        clearTimeout(timer);
        cancel();
      },
    };
  }

  async acquire(key: string, options: AcquireOptions): Promise<Lock> {
    const deadline = Date.now() + options.timeoutMs;
    const local = await this.#local.acquire(key, options);
    try {
      await this.#start();
      for (;;) {
        const waiter = this.#waiter(key);
        const result = await this.#backend.tryTake(key);
        if ('lease' in result) {
          waiter.cancel();
          return this.#hold(key, options, result.lease, local);
        }
        // Asked again on every round: the holder may have changed since the last one.
        await this.#backend.requestRelease(key).catch(() => undefined);
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          waiter.cancel();
          throw new LockTimeoutError(key);
        }
        await waiter.wait(Math.min(result.retryInMs, remaining));
      }
    } catch (error) {
      await local.release();
      throw error;
    }
  }

  #hold(key: string, options: AcquireOptions, lease: Lease, local: Lock): Lock {
    this.#holders.set(key, options);
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        if (this.#holders.get(key) === options) this.#holders.delete(key);
        try {
          await lease.release();
        } catch {
          // The lease expires (Redis) or ends with its session (PostgreSQL) on its own.
        }
        await local.release();
      },
    };
  }

  async close(): Promise<void> {
    await this.#backend.close();
  }
}
