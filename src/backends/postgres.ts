import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, ClientConfig, Pool, PoolClient } from 'pg';
import {
  type Backend,
  BackendUnavailableError,
  type GuardedBackend,
  guardBackendCall,
  isNetworkError,
  redactDsn,
  withTimeout,
} from './backend.ts';
import { type Migration, migrationLockKey, migrations } from './postgres-migrations.ts';

const checkTimeoutMs = 2_000;
const defaultTimeoutMs = 5_000;
/**
 * How long a starting instance waits while another one migrates the same schema: far longer than the migrations take
 * even on a loaded server, yet an end to the wait if the other one hangs while holding the lock.
 */
const migrationWaitMs = 60_000;
/** How often it asks for the migration lock meanwhile. */
const migrationLockPollMs = 100;

/** What node-postgres says when the server is not there, dropped the connection or did not answer in time. */
const silenceMessages = new Set([
  'Query read timeout',
  'timeout expired',
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
]);

/** A schema name Wharf accepts: a plain lower-case identifier, so it never needs quoting rules. */
export const postgresSchemaPattern = /^[a-z_][a-z0-9_]{0,49}$/;

export interface PostgresBackendOptions {
  /** The schema every Wharf table lives in, created if missing (--postgres-schema); unset: the default search path. */
  readonly schema?: string;
  /** How long one query (or getting a connection) may take before it fails: --backend-timeout. */
  readonly timeoutMs?: number;
}

type PgModule = typeof import('pg');

/**
 * One PostgreSQL database shared by the db info store and the postgres locker: a pool for queries, and
 * dedicated sessions for LISTEN and advisory locks. The schema is migrated once on first use. The client
 * library is loaded only when PostgreSQL is configured.
 */
export class PostgresBackend implements Backend, GuardedBackend {
  readonly name = 'postgres';
  readonly address: string;
  /** The schema Wharf's tables live in; undefined: the connection's default search path. */
  readonly schema: string | undefined;
  readonly timeoutMs: number;
  readonly #dsn: string;
  #ready: Promise<Pool> | undefined;
  #pool: Pool | undefined;
  readonly #clients = new Set<Client>();

  constructor(dsn: string, options: PostgresBackendOptions = {}) {
    if (options.schema !== undefined && !postgresSchemaPattern.test(options.schema)) {
      throw new RangeError(`invalid PostgreSQL schema name: ${JSON.stringify(options.schema)}`);
    }
    this.#dsn = dsn;
    this.address = redactDsn(dsn);
    this.schema = options.schema;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  }

  #config(): ClientConfig {
    return {
      connectionString: this.#dsn,
      connectionTimeoutMillis: this.timeoutMs,
      // Client-side: a hung server (connection open, no answer) fails the query instead of holding it.
      query_timeout: this.timeoutMs,
      // Every unqualified table name (all of Wharf's SQL) resolves in the schema, so deployments can share a database.
      ...(this.schema !== undefined ? { options: `-c search_path="${this.schema}"` } : {}),
    };
  }

  isUnavailable(error: unknown): boolean {
    if (!(error instanceof Error)) return false;
    const code = (error as { code?: unknown }).code;
    return (
      error instanceof BackendUnavailableError ||
      isNetworkError(error) ||
      silenceMessages.has(error.message) ||
      // SQLSTATE 08 (connection exception), 57P01-03 (shutting down, cannot connect now), 53300 (too many connections).
      (typeof code === 'string' && (/^08/.test(code) || /^57P0[123]$/.test(code) || code === '53300'))
    );
  }

  /** Runs `work` with the query pool; a silent or absent PostgreSQL becomes a BackendUnavailableError. */
  run<T>(work: (pool: Pool) => Promise<T>): Promise<T> {
    return guardBackendCall(this, async () => work(await this.pool()));
  }

  async #module(): Promise<PgModule> {
    const loaded = (await import('pg')) as PgModule & { default?: PgModule };
    return loaded.default ?? loaded;
  }

  /** The query pool, with the schema migrated. */
  pool(): Promise<Pool> {
    if (!this.#ready) {
      const ready = this.#open();
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #open(): Promise<Pool> {
    const pg = await this.#module();
    const pool = new pg.Pool({ ...this.#config(), max: 20, idleTimeoutMillis: 30_000 });
    // An idle connection dropped by a server restart must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    try {
      await runMigrations(pool, migrations, this.schema);
    } catch (error) {
      await pool.end().catch(() => undefined);
      if (this.isUnavailable(error))
        throw new BackendUnavailableError(this.name, this.address, error, 'cannot prepare');
      throw new Error(`cannot prepare postgres at ${this.address}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#pool = pool;
    return pool;
  }

  /** A connected session of its own (LISTEN, session-level advisory locks). The caller ends it. */
  async session(): Promise<Client> {
    const pg = await this.#module();
    const client = new pg.Client(this.#config());
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      if (this.isUnavailable(error)) throw new BackendUnavailableError(this.name, this.address, error);
      throw error;
    }
    this.#clients.add(client);
    client.once('end', () => this.#clients.delete(client));
    return client;
  }

  async check(): Promise<void> {
    const pool = await withTimeout(this.pool(), checkTimeoutMs * 3, 'postgres: not connected');
    await withTimeout(pool.query('SELECT 1'), checkTimeoutMs, 'postgres: no answer');
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    this.#ready = undefined;
    await Promise.all([...this.#clients].map((client) => client.end().catch(() => undefined)));
    await pool?.end().catch(() => undefined);
  }
}

/**
 * Takes the schema's migration lock for the transaction, waiting while another instance holds it (it is migrating
 * that schema). The lock is asked for again and again, not waited for in one query: a query blocked on the lock
 * would count against the query timeout (--backend-timeout, meant to catch a silent server), and instances starting
 * together on a loaded server then failed to start with "Query read timeout" once the migrations ahead of them took
 * longer than that. The key is the schema's (its name, else the connection's current schema): deployments in
 * other schemas of the database, which never touch these tables, do not wait for each other.
 */
async function takeMigrationLock(
  client: PoolClient,
  schema: string | undefined,
  waitMs: number,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query<{ taken: boolean }>(
      "SELECT pg_try_advisory_xact_lock($1, hashtext(coalesce($2::text, current_schema(), ''))) AS taken",
      [migrationLockKey, schema ?? null],
    );
    if (rows[0]?.taken === true) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `another instance held the schema migration lock for over ${Math.round(waitMs / 1000)} s; is one stuck migrating the schema?`,
      );
    }
    await sleep(migrationLockPollMs);
  }
}

/**
 * Applies the migrations not yet recorded in wharf_schema_migrations, in one transaction, under an
 * advisory lock so that instances starting together do not race. With `schema`, the schema is created first
 * (the pool's search path already points every table there).
 */
export async function runMigrations(
  pool: Pool,
  list: readonly Migration[],
  schema?: string,
  waitMs = migrationWaitMs,
): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await takeMigrationLock(client, schema, waitMs);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS wharf_schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM wharf_schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const done: number[] = [];
    for (const migration of [...list].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO wharf_schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      done.push(migration.version);
    }
    await client.query('COMMIT');
    return done;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
