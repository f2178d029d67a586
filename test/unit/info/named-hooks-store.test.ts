import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { FileNamedHooksStore } from '../../../src/info/named-hooks-file.ts';
import { PostgresNamedHooksStore } from '../../../src/info/named-hooks-postgres.ts';
import { RedisNamedHooksStore } from '../../../src/info/named-hooks-redis.ts';
import type { NamedHooksStore } from '../../../src/info/named-hooks-store.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';

/** The contract every store keeps: version 0 until written, compare-and-set on the version, one more per write. */
function describeNamedHooksStore(
  name: string,
  open: () => Promise<{ stores: [NamedHooksStore, NamedHooksStore]; close: () => Promise<void> }>,
) {
  describe(`${name} named hooks store`, () => {
    test('writes with compare-and-set; a second handle on the same storage sees each version', async () => {
      const { stores, close } = await open();
      const [one, other] = stores;
      try {
        assert.equal(await one.version(), 0);
        assert.deepEqual(await one.read(), { version: 0, document: undefined });
        const first = {
          hooks: {},
          bindings: [{ id: 'a', hook: 'snooper', endpoint: '/files', events: ['post-finish'] }],
        };
        assert.equal(await one.write(first, 0), true);
        // A writer that read version 0 too loses, and changes nothing.
        assert.equal(await other.write({ hooks: {}, bindings: [] }, 0), false);
        assert.equal(await other.version(), 1);
        assert.deepEqual(await other.read(), { version: 1, document: first });
        const second = {
          hooks: { crm: { transport: 'http', url: 'https://crm.example/hook' } },
          bindings: [],
        };
        assert.equal(await other.write(second, 1), true);
        assert.deepEqual(await one.read(), { version: 2, document: second });
      } finally {
        await close();
      }
    });
  });
}

describeNamedHooksStore('file', async () => {
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-named-hooks-'));
  return {
    stores: [
      new FileNamedHooksStore(folder, { shared: true }),
      new FileNamedHooksStore(folder, { shared: true }),
    ],
    close: () => rm(folder, { recursive: true, force: true }),
  };
});

describeNamedHooksStore('redis', async () => {
  const keyPrefix = `wharf-test-${randomUUID()}:`;
  const backends = [new RedisBackend(redisUrl, { keyPrefix }), new RedisBackend(redisUrl, { keyPrefix })];
  return {
    stores: [
      new RedisNamedHooksStore(backends[0] as RedisBackend),
      new RedisNamedHooksStore(backends[1] as RedisBackend),
    ],
    close: async () => {
      const client = await (backends[0] as RedisBackend).client();
      const keys = await client.keys(`${keyPrefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await Promise.all(backends.map((backend) => backend.close()));
    },
  };
});

describeNamedHooksStore('postgres', async () => {
  const schema = `wharf_named_hooks_test_${randomBytes(4).toString('hex')}`;
  const backends = [
    new PostgresBackend(postgresUrl, { schema }),
    new PostgresBackend(postgresUrl, { schema }),
  ];
  return {
    stores: [
      new PostgresNamedHooksStore(backends[0] as PostgresBackend),
      new PostgresNamedHooksStore(backends[1] as PostgresBackend),
    ],
    close: async () => {
      const pool = await (backends[0] as PostgresBackend).pool();
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      await Promise.all(backends.map((backend) => backend.close()));
    },
  };
});
