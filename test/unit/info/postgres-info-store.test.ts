import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PostgresBackend, runMigrations } from '../../../src/backends/postgres.ts';
import { migrations } from '../../../src/backends/postgres-migrations.ts';
import { PostgresInfoStore } from '../../../src/info/postgres.ts';
import { describeInfoStore, sampleRecord } from '../../contract/info-store.ts';
import { eventually } from '../../support/eventually.ts';
import { postgresUrl } from '../../support/services.ts';

describeInfoStore('postgres', async () => {
  const backend = new PostgresBackend(postgresUrl);
  const created: string[] = [];
  const store = new PostgresInfoStore(backend);
  const put = store.put.bind(store);
  // Remember what the contract creates, so the shared table is left as it was.
  store.put = (record, expected) => {
    created.push(record.id);
    return put(record, expected);
  };
  return {
    store,
    close: async () => {
      const pool = await backend.pool();
      await pool.query('DELETE FROM wharf_uploads WHERE id = ANY($1)', [created]);
      await backend.close();
    },
  };
});

describe('postgres schema migrations', () => {
  test('a fresh schema gets every migration once, recorded by version; a second start applies none', async () => {
    const schema = `wharf_migration_test_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const pool = new pg.Pool({ connectionString: postgresUrl, max: 2, options: `-c search_path=${schema}` });
    try {
      const first = await runMigrations(pool, migrations);
      assert.deepEqual(
        first,
        migrations.map((migration) => migration.version),
      );
      const second = await runMigrations(pool, migrations);
      assert.deepEqual(second, []);
      const { rows } = await pool.query<{ version: number }>(
        'SELECT version FROM wharf_schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        rows.map((row) => row.version),
        migrations.map((migration) => migration.version),
      );
      const table = await pool.query(`SELECT to_regclass('${schema}.wharf_uploads') AS name`);
      assert.equal(table.rows[0].name, 'wharf_uploads');
      // Two instances starting together: both succeed, the schema is applied once.
      const racers = await Promise.all([runMigrations(pool, migrations), runMigrations(pool, migrations)]);
      assert.deepEqual(racers, [[], []]);
    } finally {
      await pool.end();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });

  /** A fresh schema, a pool on it, and a way to drop both. */
  async function freshSchema(
    poolOptions: pg.PoolConfig = {},
  ): Promise<{ pool: pg.Pool; drop(): Promise<void> }> {
    const schema = `wharf_migration_test_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const pool = new pg.Pool({
      connectionString: postgresUrl,
      max: 1,
      options: `-c search_path=${schema}`,
      ...poolOptions,
    });
    return {
      pool,
      drop: async () => {
        await pool.end();
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.end();
      },
    };
  }

  /** A version after every real one (the column is a 4-byte integer). */
  const lastVersion = 2_000_000_000;

  /**
   * Another instance migrating `pool`'s schema, slowly: its last migration sleeps `seconds` while it holds the
   * migration lock. Resolves once that migration runs; `pid` is its session, to cancel it.
   */
  async function slowMigration(
    pool: pg.Pool,
    seconds: number,
  ): Promise<{ done: Promise<number[]>; pid: number }> {
    const tag = `slow_${randomBytes(4).toString('hex')}`;
    const done = runMigrations(pool, [
      ...migrations,
      { version: lastVersion, name: 'slow', sql: `SELECT pg_sleep(${seconds}) AS ${tag}` },
    ]);
    done.catch(() => undefined);
    const pid = await eventually(async () => {
      const { rows } = await pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`,
        [`%AS ${tag}`],
      );
      return rows[0]?.pid;
    }, 'the slow migration to run');
    return { done, pid };
  }

  test('an instance waits for another migrating the same schema, even past its query timeout', async () => {
    const { pool, drop } = await freshSchema({ max: 2 });
    // The query timeout Wharf sets (--backend-timeout), well under the other's migration.
    const waiting = new pg.Pool({
      connectionString: postgresUrl,
      max: 1,
      options: (pool.options as { options: string }).options,
      query_timeout: 1500,
    });
    try {
      const other = await slowMigration(pool, 3.5);
      // Every migration was the other's to apply; this one applies none and does not fail.
      assert.deepEqual(await runMigrations(waiting, migrations), []);
      assert.deepEqual(await other.done, [...migrations.map((migration) => migration.version), lastVersion]);
    } finally {
      await waiting.end();
      await drop();
    }
  });

  test('an instance migrating another schema does not wait for it', async () => {
    const busy = await freshSchema({ max: 2 });
    const free = await freshSchema();
    try {
      const other = await slowMigration(busy.pool, 60);
      assert.deepEqual(
        await runMigrations(free.pool, migrations),
        migrations.map((migration) => migration.version),
      );
      // The other schema's migration was still running (holding its lock) all along.
      const { rows } = await busy.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = $2', [
        other.pid,
        'active',
      ]);
      assert.equal(rows.length, 1);
      await busy.pool.query('SELECT pg_cancel_backend($1)', [other.pid]);
      await assert.rejects(other.done, /canceling statement/);
    } finally {
      await free.drop();
      await busy.drop();
    }
  });

  test('an instance that waited too long for another migrating its schema says so', async () => {
    const { pool, drop } = await freshSchema({ max: 3 });
    try {
      const other = await slowMigration(pool, 60);
      await assert.rejects(runMigrations(pool, migrations, undefined, 500), /held the schema migration lock/);
      await pool.query('SELECT pg_cancel_backend($1)', [other.pid]);
      await assert.rejects(other.done, /canceling statement/);
    } finally {
      await drop();
    }
  });

  test('a failing migration leaves nothing behind', async () => {
    const schema = `wharf_migration_test_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const pool = new pg.Pool({ connectionString: postgresUrl, max: 1, options: `-c search_path=${schema}` });
    try {
      const broken = [...migrations, { version: 999, name: 'broken', sql: 'SELECT * FROM no_such_table' }];
      await assert.rejects(runMigrations(pool, broken), /no_such_table/);
      const table = await pool.query(`SELECT to_regclass('${schema}.wharf_uploads') AS name`);
      assert.equal(table.rows[0].name, null);
    } finally {
      await pool.end();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });

  test('an unreachable server fails prepare with the address and no password', async () => {
    const backend = new PostgresBackend('postgres://wharf:secret-password@127.0.0.1:1/wharf_test');
    const store = new PostgresInfoStore(backend);
    await assert.rejects(store.prepare(), (error: Error) => {
      assert.match(
        error.message,
        /cannot prepare postgres at postgres:\/\/wharf:\*\*\*@127\.0\.0\.1:1\/wharf_test/,
      );
      assert.doesNotMatch(error.message, /secret-password/);
      return true;
    });
    await assert.rejects(store.get(sampleRecord().id));
    await backend.close();
  });
});
