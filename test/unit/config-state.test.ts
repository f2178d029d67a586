import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';

const build = (argv: string[], env: Record<string, string> = {}) =>
  buildConfig(parseCommandLine(argv).options, env);

describe('shared state options', () => {
  it("reads rustus's names: --info-storage, --info-db-dsn, --redis-info-expiration and RUSTUS_* variables", () => {
    const config = build(['-i', 'redis-info-storage', '--info_db_dsn', 'redis://127.0.0.1:6379/2'], {
      RUSTUS_REDIS_INFO_EXPIRATION: '3600',
    });
    assert.equal(config.infoStorage, 'redis-info-storage');
    assert.equal(config.infoDbDsn, 'redis://127.0.0.1:6379/2');
    assert.equal(config.redisInfoExpirationSeconds, 3600);
    assert.equal(config.lockTtlMs, 10_000);
    const db = build([], {
      RUSTUS_INFO_STORAGE: 'db-info-storage',
      RUSTUS_INFO_DB_DSN: 'postgresql://u:p@db/wharf',
      WHARF_LOCK_TTL: '3',
    });
    assert.equal(db.infoStorage, 'db-info-storage');
    assert.equal(db.lockTtlMs, 3000);
  });

  it('refuses a shared storage without a DSN, or with a DSN of the wrong kind, without echoing it', () => {
    assert.throws(() => build(['--info-storage', 'redis-info-storage']), /needs --info-db-dsn/);
    assert.throws(
      () => build(['--info-storage', 'db-info-storage', '--info-db-dsn', 'mysql://u:hunter2@db/x']),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /postgres:\/\/ or postgresql:\/\//);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
    assert.throws(
      () => build(['--info-storage', 'redis-info-storage', '--info-db-dsn', 'postgres://db/x']),
      /redis:\/\/ or rediss:\/\//,
    );
  });
});

describe('backend timeout, Redis key prefix and PostgreSQL schema', () => {
  it('defaults to 5 s, `wharf:` and no schema; flags and WHARF_* variables set them', () => {
    const defaults = build([]);
    assert.equal(defaults.backendTimeoutMs, 5_000);
    assert.equal(defaults.redisKeyPrefix, 'wharf:');
    assert.equal(defaults.postgresSchema, undefined);
    const set = build(['--backend-timeout', '2', '--redis-key-prefix', 'tenant-a:'], {
      WHARF_POSTGRES_SCHEMA: 'tenant_a',
    });
    assert.equal(set.backendTimeoutMs, 2_000);
    assert.equal(set.redisKeyPrefix, 'tenant-a:');
    assert.equal(set.postgresSchema, 'tenant_a');
  });

  it('refuses a schema name that is not a plain lower-case identifier, naming the flag', () => {
    for (const schema of ['Tenant', '1abc', 'a-b', 'x"; DROP TABLE wharf_uploads; --', 'a'.repeat(51)]) {
      assert.throws(
        () => build(['--postgres-schema', schema]),
        (error: Error) => error instanceof ConfigError && error.message.startsWith('--postgres-schema'),
        schema,
      );
    }
    assert.throws(() => build(['--backend-timeout', '0']), ConfigError);
  });
});
