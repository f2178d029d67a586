/**
 * A shared external service (Redis, PostgreSQL, an object store) that stores and lockers use. The server
 * reports each one on /health and closes it on shutdown.
 */
export interface Backend {
  /** Short name shown on /health, e.g. `redis`. */
  readonly name: string;
  /** Resolves when the service answers; rejects with the reason otherwise. Never hangs past a few seconds. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** Rejects with `message` if `promise` has not settled after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The DSN with its password replaced, for logs and error messages (secrets are never logged). */
export function redactDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '<unparsable DSN>';
  }
}
