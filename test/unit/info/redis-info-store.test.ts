import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { RedisInfoStore } from '../../../src/info/redis.ts';
import { describeInfoStore, sampleRecord } from '../../contract/info-store.ts';
import { redisUrl } from '../../support/services.ts';

async function removeKeys(backend: RedisBackend, prefix: string): Promise<void> {
  const client = await backend.client();
  const keys = await client.keys(`${prefix}*`);
  if (keys.length > 0) await client.del(...keys);
}

describeInfoStore('redis', async () => {
  const backend = new RedisBackend(redisUrl);
  const keyPrefix = `wharf-test-${randomUUID()}:`;
  return {
    store: new RedisInfoStore(backend, { expirationSeconds: 0, keyPrefix }),
    close: async () => {
      await removeKeys(backend, keyPrefix);
      await backend.close();
    },
  };
});

describe('redis info store', () => {
  test('--redis-info-expiration slides the record TTL on every write', async () => {
    const backend = new RedisBackend(redisUrl);
    const keyPrefix = `wharf-test-${randomUUID()}:`;
    try {
      const store = new RedisInfoStore(backend, { expirationSeconds: 60, keyPrefix });
      const record = sampleRecord();
      await store.put(record, null);
      const client = await backend.client();
      const key = `${keyPrefix}info:${record.id}`;
      await client.expire(key, 5);
      await store.put(record, 1);
      const ttl = await client.ttl(key);
      assert.ok(ttl > 5 && ttl <= 60, `ttl ${ttl}`);
    } finally {
      await removeKeys(backend, keyPrefix);
      await backend.close();
    }
  });

  test('the health check fails while the server cannot be reached', async () => {
    const backend = new RedisBackend('redis://127.0.0.1:1/0');
    await assert.rejects(
      new RedisInfoStore(backend, { expirationSeconds: 0 }).prepare(),
      /cannot reach redis at redis:\/\/127\.0\.0\.1:1\/0/,
    );
    await assert.rejects(backend.check());
    await backend.close();
  });
});
