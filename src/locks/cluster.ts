import type { Worker } from 'node:cluster';
import { type AcquireOptions, type Lock, type Locker, LockTimeoutError } from './locker.ts';
import { MemoryLocker } from './memory.ts';

/** Messages between cluster workers and the primary, which owns the locks of every worker. */
type LockMessage =
  | {
      readonly wharfLock: 'acquire';
      readonly requestId: number;
      readonly key: string;
      readonly timeoutMs: number;
    }
  | { readonly wharfLock: 'release'; readonly requestId: number }
  | { readonly wharfLock: 'granted'; readonly requestId: number }
  | { readonly wharfLock: 'timeout'; readonly requestId: number }
  | { readonly wharfLock: 'release-request'; readonly requestId: number };

function isLockMessage(message: unknown): message is LockMessage {
  return typeof message === 'object' && message !== null && 'wharfLock' in message;
}

/**
 * Runs in the cluster primary: serves lock requests of every worker from one MemoryLocker, forwards
 * release requests to the holding worker, and frees the locks of a worker that exits.
 */
export function serveClusterLocks(worker: Worker): void {
  const locker = sharedLocker;
  const held = new Map<number, Lock>();
  worker.on('message', (message: unknown) => {
    if (!isLockMessage(message)) return;
    if (message.wharfLock === 'acquire') {
      const { requestId } = message;
      locker
        .acquire(message.key, {
          timeoutMs: message.timeoutMs,
          onReleaseRequest: () => {
            if (worker.isConnected())
              worker.send({ wharfLock: 'release-request', requestId } satisfies LockMessage);
          },
        })
        .then((lock) => {
          if (!worker.isConnected()) {
            void lock.release();
            return;
          }
          held.set(requestId, lock);
          worker.send({ wharfLock: 'granted', requestId } satisfies LockMessage);
        })
        .catch(() => {
          if (worker.isConnected()) worker.send({ wharfLock: 'timeout', requestId } satisfies LockMessage);
        });
    } else if (message.wharfLock === 'release') {
      const lock = held.get(message.requestId);
      held.delete(message.requestId);
      void lock?.release();
    }
  });
  worker.on('exit', () => {
    for (const lock of held.values()) void lock.release();
    held.clear();
  });
}

const sharedLocker = new MemoryLocker();

interface PendingAcquire {
  readonly key: string;
  readonly options: AcquireOptions;
  readonly resolve: (lock: Lock) => void;
  readonly reject: (error: Error) => void;
}

/** Used in a cluster worker: every lock is held in the primary, so workers never write one upload at once. */
export class ClusterLocker implements Locker {
  #nextId = 1;
  readonly #pending = new Map<number, PendingAcquire>();
  readonly #holders = new Map<number, AcquireOptions>();
  readonly #process: NodeJS.Process;

  constructor(processHandle: NodeJS.Process = process) {
    this.#process = processHandle;
    processHandle.on('message', (message: unknown) => {
      if (!isLockMessage(message)) return;
      const { requestId } = message;
      if (message.wharfLock === 'granted') {
        const pending = this.#pending.get(requestId);
        this.#pending.delete(requestId);
        if (!pending) return;
        this.#holders.set(requestId, pending.options);
        let released = false;
        pending.resolve({
          release: async () => {
            if (released) return;
            released = true;
            this.#holders.delete(requestId);
            this.#send({ wharfLock: 'release', requestId });
          },
        });
      } else if (message.wharfLock === 'timeout') {
        const pending = this.#pending.get(requestId);
        this.#pending.delete(requestId);
        pending?.reject(new LockTimeoutError(pending.key));
      } else if (message.wharfLock === 'release-request') {
        this.#holders.get(requestId)?.onReleaseRequest();
      }
    });
  }

  #send(message: LockMessage): void {
    this.#process.send?.(message);
  }

  acquire(key: string, options: AcquireOptions): Promise<Lock> {
    const requestId = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(requestId, { key, options, resolve, reject });
      this.#send({ wharfLock: 'acquire', requestId, key, timeoutMs: options.timeoutMs });
    });
  }
}
