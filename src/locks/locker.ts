/** A held lock; releasing twice is harmless. */
export interface Lock {
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Called on the holder when another request wants the lock: it should stop and release soon. */
  readonly onReleaseRequest: () => void;
  /** How long to wait for a held lock before failing with LockTimeoutError. */
  readonly timeoutMs: number;
}

/** One writer per upload: PATCH, HEAD, DELETE and concatenation hold the upload's lock. */
export interface Locker {
  acquire(key: string, options: AcquireOptions): Promise<Lock>;
}

export class LockTimeoutError extends Error {
  readonly code = 'ERR_LOCK_TIMEOUT';
  constructor(key: string) {
    super(`timed out waiting for the lock on ${key}`);
    this.name = 'LockTimeoutError';
  }
}
