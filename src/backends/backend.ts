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

/**
 * A shared backend (Redis, PostgreSQL) did not answer: it is down, unreachable, or hung past
 * --backend-timeout. Nothing was lost; the same request succeeds once it is back, so clients are told to wait
 * and retry (503 with Retry-After, 423 on HEAD) rather than to start over.
 */
export class BackendUnavailableError extends Error {
  /** The backend's short name, e.g. `redis`. */
  readonly backend: string;
  /** Where it was reached, password masked. */
  readonly address: string;

  constructor(backend: string, address: string, cause: unknown, doing = 'cannot reach') {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${doing} ${backend} at ${address}: ${reason}`, { cause });
    this.name = 'BackendUnavailableError';
    this.backend = backend;
    this.address = address;
  }
}

/** The backend failure somewhere in `error`'s cause chain (errors are wrapped on their way up). */
export function backendFailureIn(error: unknown): BackendUnavailableError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 10; depth++) {
    if (current instanceof BackendUnavailableError) return current;
    current = current.cause;
  }
  return undefined;
}

const networkErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** A socket-level failure (refused, reset, timed out): the service is not there, whatever it is. */
export function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && networkErrorCodes.has(code);
}

/** What {@link guardBackendCall} needs to know of a backend. */
export interface GuardedBackend {
  readonly name: string;
  /** Where the backend is, password masked. */
  readonly address: string;
  /** Whether `error` means the backend is down, unreachable or did not answer in time (not a refusal it gave). */
  isUnavailable(error: unknown): boolean;
}

/**
 * Runs one backend call and turns a failure that means "the backend is not there" into a
 * {@link BackendUnavailableError}. Anything else (a conflict, a script error, a bug) passes unchanged.
 */
export async function guardBackendCall<T>(backend: GuardedBackend, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof BackendUnavailableError || !backend.isUnavailable(error)) throw error;
    throw new BackendUnavailableError(backend.name, backend.address, error);
  }
}
