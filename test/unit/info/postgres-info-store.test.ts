import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PostgresBackend, runMigrations } from '../../../src/backends/postgres.ts';
import { migrations } from '../../../src/backends/postgres-migrations.ts';
import { PostgresInfoStore } from '../../../src/info/postgres.ts';
import { describeInfoStore, sampleRecord } from '../../contract/info-store.ts';
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
