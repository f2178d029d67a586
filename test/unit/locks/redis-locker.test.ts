import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { RedisLocker } from '../../../src/locks/redis.ts';
import { describeLocker } from '../../contract/locker.ts';
import { redisUrl } from '../../support/services.ts';

describeLocker(
  'redis',
  async () => {
    // Two instances: each has its own connections, as two processes would.
    const keyPrefix = `wharf-test-${randomUUID()}:`;
    const firstBackend = new RedisBackend(redisUrl);
    const secondBackend = new RedisBackend(redisUrl);
    const first = new RedisLocker(firstBackend, { ttlMs: 1000, keyPrefix });
    const second = new RedisLocker(secondBackend, { ttlMs: 1000, keyPrefix });
    return {
      first,
      second,
      // Connections dropped, nothing released: the leases must expire by themselves.
      crashFirst: () => firstBackend.close(),
      close: async () => {
        await first.close();
        await second.close();
        await firstBackend.close();
        await secondBackend.close();
      },
    };
  },
  { shared: true },
);

describe('redis locker', () => {
  test('a holder whose lease vanished (expired, Redis flushed) is told to stop', async () => {
    const keyPrefix = `wharf-test-${randomUUID()}:`;
    const backend = new RedisBackend(redisUrl);
    const locker = new RedisLocker(backend, { ttlMs: 300, keyPrefix });
    try {
      const key = randomUUID();
      let told!: () => void;
      const toldToStop = new Promise<void>((resolve) => (told = resolve));
      const lock = await locker.acquire(key, { timeoutMs: 1000, onReleaseRequest: () => told() });
      const client = await backend.client();
      assert.equal(await client.del(`${keyPrefix}lock:${key}`), 1);
      await toldToStop;
      await lock.release();
    } finally {
      await locker.close();
      await backend.close();
    }
  });
});
