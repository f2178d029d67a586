import type { Client, ClientConfig, Pool } from 'pg';
import { type Backend, redactDsn, withTimeout } from './backend.ts';
import { type Migration, migrationLockKey, migrations } from './postgres-migrations.ts';

const checkTimeoutMs = 2_000;

type PgModule = typeof import('pg');

/**
 * One PostgreSQL database shared by the db info store and the postgres locker: a pool for queries, and
 * dedicated sessions for LISTEN and advisory locks. The schema is migrated once on first use. The client
 * library is loaded only when PostgreSQL is configured.
 */
export class PostgresBackend implements Backend {
  readonly name = 'postgres';
  readonly #dsn: string;
  #ready: Promise<Pool> | undefined;
  #pool: Pool | undefined;
  readonly #clients = new Set<Client>();

  constructor(dsn: string) {
    this.#dsn = dsn;
  }

  #config(): ClientConfig {
    return { connectionString: this.#dsn, connectionTimeoutMillis: 5_000 };
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
      await runMigrations(pool, migrations);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new Error(`cannot prepare postgres at ${redactDsn(this.#dsn)}: ${(error as Error).message}`, {
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
    await client.connect();
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
 * Applies the migrations not yet recorded in wharf_schema_migrations, in one transaction, under an
 * advisory lock so that instances starting together do not race.
 */
export async function runMigrations(pool: Pool, list: readonly Migration[]): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
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
