import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { BackendUnavailableError, guardBackendCall } from '../backends/backend.ts';
import type { PostgresBackend } from '../backends/postgres.ts';
import { DistributedLocker, type Lease, type LeaseBackend, type LeaseEvents } from './distributed.ts';

const releasedMessage = 'released';
const requestMessage = 'release-request';

/**
 * The advisory lock number of an upload id: 64 bits of its SHA-256, so collisions are negligible. Advisory
 * locks belong to the database, not a schema: the schema goes into the hash so deployments sharing a
 * database never hold each other's locks.
 */
export function advisoryKey(key: string, schema?: string): string {
  const scoped = schema === undefined ? `wharf:${key}` : `wharf:${schema}:${key}`;
  return createHash('sha256').update(scoped).digest().readBigInt64BE(0).toString();
}

export interface PostgresLockerOptions {
  /** How long a waiter sleeps at most between attempts when no released message arrives. */
  readonly retryMs: number;
}

/**
 * Leases as session-level advisory locks, all held by one dedicated session per instance (not one
 * connection per upload). When the instance dies its session ends and PostgreSQL frees every lock it
 * held at once. Release and release requests go over LISTEN/NOTIFY on a second session.
 */
class PostgresLeases implements LeaseBackend {
  readonly #backend: PostgresBackend;
  readonly #retryMs: number;
  #session: Promise<Client> | undefined;
  #listener: Client | undefined;
  #events: LeaseEvents | undefined;
  /** LISTEN/NOTIFY channels belong to the database: one per schema keeps deployments apart. */
  readonly #channel: string;
  #closed = false;
  /** Queries on the lock session run one after another (pg wants one query at a time per client). */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(backend: PostgresBackend, options: PostgresLockerOptions) {
    this.#backend = backend;
    this.#retryMs = options.retryMs;
    this.#channel = backend.schema === undefined ? 'wharf_locks' : `wharf_locks_${backend.schema}`;
  }

  async start(events: LeaseEvents): Promise<void> {
    this.#events = events;
    await this.#listen();
  }

  async #listen(): Promise<void> {
    const listener = await this.#backend.session();
    listener.on('notification', (message) => {
      if (message.channel !== this.#channel || !message.payload) return;
      const newline = message.payload.indexOf('\n');
      const kind = message.payload.slice(0, newline);
      const key = message.payload.slice(newline + 1);
      if (kind === releasedMessage) this.#events?.released(key);
      else if (kind === requestMessage) this.#events?.releaseRequested(key);
    });
    listener.once('end', () => {
      if (this.#listener === listener) this.#listener = undefined;
      // Reconnect in the background; until then waiters fall back to their retry interval.
      if (!this.#closed) this.#relisten();
    });
    await listener.query(`LISTEN ${this.#channel}`);
    this.#listener = listener;
  }

  #relisten(): void {
    setTimeout(() => {
      if (this.#closed || this.#listener) return;
      this.#listen().catch(() => this.#relisten());
    }, 500).unref();
  }

  /** The session that holds the advisory locks. If it ends, every lock it held is gone. */
  #lockSession(): Promise<Client> {
    if (!this.#session) {
      const session = this.#backend.session().then((client) => {
        client.once('end', () => {
          if (this.#session === session) this.#session = undefined;
          this.#events?.lost(undefined);
        });
        return client;
      });
      this.#session = session;
      session.catch(() => {
        if (this.#session === session) this.#session = undefined;
      });
    }
    return this.#session;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(work);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  /** Drops a lock session that stopped answering: its locks are as good as gone, and a new one is opened next time. */
  #abandon(sessionPromise: Promise<Client>, session: Client): void {
    if (this.#session === sessionPromise) this.#session = undefined;
    session.end().catch(() => undefined);
  }

  async tryTake(key: string): Promise<{ lease: Lease } | { retryInMs: number }> {
    const sessionPromise = this.#lockSession();
    const session = await guardBackendCall(this.#backend, () => sessionPromise);
    const number = advisoryKey(key, this.#backend.schema);
    const { rows } = await guardBackendCall(this.#backend, () =>
      this.#serial(() =>
        session.query<{ taken: boolean }>('SELECT pg_try_advisory_lock($1) AS taken', [number]),
      ),
    ).catch((error: unknown) => {
      if (error instanceof BackendUnavailableError) this.#abandon(sessionPromise, session);
      throw error;
    });
    if (!rows[0]?.taken) return { retryInMs: this.#retryMs };
    return {
      lease: {
        release: async () => {
          try {
            await this.#serial(() =>
              session.query('SELECT pg_advisory_unlock($1), pg_notify($2, $3)', [
                number,
                this.#channel,
                `${releasedMessage}\n${key}`,
              ]),
            );
          } catch (error) {
            // A lock we could not unlock would stay held by this session: end the session to free it.
            await session.end().catch(() => undefined);
            throw error;
          }
        },
      },
    };
  }

  async requestRelease(key: string): Promise<void> {
    await this.#backend.run((pool) =>
      pool.query('SELECT pg_notify($1, $2)', [this.#channel, `${requestMessage}\n${key}`]),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => undefined);
    if (session) await (await session.catch(() => undefined))?.end().catch(() => undefined);
  }
}

/** The per-upload lock shared by every instance using one PostgreSQL database. */
export class PostgresLocker extends DistributedLocker {
  constructor(backend: PostgresBackend, options: PostgresLockerOptions) {
    super(new PostgresLeases(backend, options));
  }
}
