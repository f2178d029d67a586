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
