import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { BackendUnavailableError } from '../../../src/backends/backend.ts';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { PostgresOutboxStore } from '../../../src/hooks/delivery/outbox-postgres-store.ts';
import { RedisOutboxStore } from '../../../src/hooks/delivery/outbox-redis-store.ts';
import type { OutboxStore } from '../../../src/hooks/delivery/outbox-store.ts';
import type { InfoStore } from '../../../src/info/info-store.ts';
import { PostgresInfoStore } from '../../../src/info/postgres.ts';
import { RedisInfoStore } from '../../../src/info/redis.ts';
import type { DistributedLocker } from '../../../src/locks/distributed.ts';
import { PostgresLocker } from '../../../src/locks/postgres.ts';
import { RedisLocker } from '../../../src/locks/redis.ts';
import { type BackendProxy, startBackendProxy } from '../../support/backend-proxy.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';
import { uploadRecord } from '../../support/upload-record.ts';

interface Parts {
  readonly backend: RedisBackend | PostgresBackend;
  readonly infoStore: InfoStore;
  readonly locker: DistributedLocker;
  readonly outbox: OutboxStore;
  cleanUp(): Promise<void>;
}

const timeoutMs = 1_000;
const lockOptions = { timeoutMs: 30_000, onReleaseRequest: () => undefined };

function behind(url: string, proxy: BackendProxy): string {
  const moved = new URL(url);
  moved.port = String(proxy.port);
  return moved.toString();
}

const kinds: Record<string, (proxy: BackendProxy) => Parts> = {
  redis: (proxy) => {
    const keyPrefix = `test-timeouts-${randomUUID()}:`;
    const backend = new RedisBackend(behind(redisUrl, proxy), { keyPrefix, timeoutMs });
    return {
      backend,
      infoStore: new RedisInfoStore(backend, { expirationSeconds: 0 }),
      locker: new RedisLocker(backend, { ttlMs: 2_000 }),
      outbox: new RedisOutboxStore(backend, { leaseMs: 10_000, keyPrefix }),
      cleanUp: async () => {
        const direct = new RedisBackend(redisUrl);
        const client = await direct.client();
        const keys = await client.keys(`${keyPrefix}*`);
        if (keys.length > 0) await client.del(...keys);
        await direct.close();
      },
    };
  },
  postgres: (proxy) => {
    const schema = `test_timeouts_${randomBytes(6).toString('hex')}`;
    const backend = new PostgresBackend(behind(postgresUrl, proxy), { schema, timeoutMs });
    return {
      backend,
      infoStore: new PostgresInfoStore(backend),
      locker: new PostgresLocker(backend, { retryMs: 100 }),
      outbox: new PostgresOutboxStore(backend, { leaseMs: 10_000 }),
      cleanUp: async () => {
        const direct = new PostgresBackend(postgresUrl);
        const pool = await direct.pool();
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await direct.close();
      },
    };
  },
};

// Redis and PostgreSQL at once: each has its own proxy, key prefix or schema.
describe('backends', { concurrency: true }, () => {
  for (const [kind, make] of Object.entries(kinds)) {
    describe(`${kind}: every call is bounded by the backend timeout`, () => {
      test('while the server hangs, the info store, the locker and the outbox fail as unavailable instead of waiting; afterwards they work', async () => {
        const proxy = await startBackendProxy(
          Number(new URL(kind === 'redis' ? redisUrl : postgresUrl).port),
        );
        const parts = make(proxy);
        const id = randomUUID().replaceAll('-', '');
        try {
          // Everything connected and working first (positive control).
          await parts.infoStore.put(uploadRecord({ id }), null);
          const lock = await parts.locker.acquire(`${id}-first`, lockOptions);
          await lock.release();
          assert.deepEqual(await parts.outbox.pending(), []);

          proxy.hang();
          // Without a bound these would wait for the hang to end, then succeed.
          const hangEnds = setTimeout(() => proxy.restore(), 8_000);
          try {
            const read = await parts.infoStore.get(id).catch((error: unknown) => error);
            assert.ok(read instanceof BackendUnavailableError, String(read));
            assert.equal(read.backend, kind);
            const write = await parts.infoStore
              .put(uploadRecord({ id, offset: 5 }), 1)
              .catch((error: unknown) => error);
            assert.ok(write instanceof BackendUnavailableError, String(write));
            const locked = await parts.locker.acquire(id, lockOptions).catch((error: unknown) => error);
            assert.ok(locked instanceof BackendUnavailableError, String(locked));
            const pending = await parts.outbox.pending().catch((error: unknown) => error);
            assert.ok(pending instanceof Error && parts.backend.isUnavailable(pending), String(pending));
          } finally {
            clearTimeout(hangEnds);
            proxy.restore();
          }

          // Back: the record is whole. A write that timed out here may still have landed when the server woke up
          // (it was sent): either version is consistent, since bytes are always written before their record.
          assert.ok([0, 5].includes((await parts.infoStore.get(id))?.offset ?? -1));
          const again = await parts.locker.acquire(id, lockOptions);
          await again.release();
        } finally {
          await parts.locker.close();
          await parts.outbox.close();
          await parts.backend.close();
          await proxy.close();
          await parts.cleanUp();
        }
      });
    });
  }
});

describe('what counts as "unavailable"', () => {
  test('redis: silence, closed connections and transient replies do; a script or type error does not', () => {
    const backend = new RedisBackend('redis://:pw@127.0.0.1:1/0');
    const maxRetries = Object.assign(new Error('Reached the max retries per request limit'), {
      name: 'MaxRetriesPerRequestError',
    });
    const loading = Object.assign(new Error('LOADING Redis is loading the dataset in memory'), {
      name: 'ReplyError',
    });
    const wrongType = Object.assign(new Error('WRONGTYPE Operation against a key'), { name: 'ReplyError' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    for (const error of [
      maxRetries,
      loading,
      refused,
      new Error('Command timed out'),
      new Error('Connection is closed.'),
    ]) {
      assert.equal(backend.isUnavailable(error), true, error.message);
    }
    for (const error of [wrongType, new SyntaxError('Unexpected token'), new Error('invalid upload id')]) {
      assert.equal(backend.isUnavailable(error), false, error.message);
    }
    assert.equal(backend.address, 'redis://:***@127.0.0.1:1/0');
  });

  test('postgres: timeouts, dropped connections and SQLSTATE 08/57P0x/53300 do; a constraint violation does not', () => {
    const backend = new PostgresBackend('postgres://wharf:pw@127.0.0.1:1/db');
    const sqlstate = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });
    for (const error of [
      new Error('Query read timeout'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      sqlstate('08006'),
      sqlstate('57P01'),
      sqlstate('53300'),
    ]) {
      assert.equal(backend.isUnavailable(error), true, error.message);
    }
    for (const error of [sqlstate('23505'), sqlstate('42P01'), new TypeError('x')]) {
      assert.equal(backend.isUnavailable(error), false, error.message);
    }
    assert.equal(backend.address, 'postgres://wharf:***@127.0.0.1:1/db');
  });

  test('a PostgreSQL schema name outside [a-z_][a-z0-9_]* is refused before any SQL', () => {
    assert.throws(() => new PostgresBackend(postgresUrl, { schema: 'x"; DROP TABLE y; --' }), RangeError);
    assert.throws(() => new PostgresBackend(postgresUrl, { schema: 'Upper' }), RangeError);
  });
});
