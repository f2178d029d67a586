import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LockTimeoutError } from '../../../src/locks/locker.ts';
import { MemoryLocker } from '../../../src/locks/memory.ts';
import { describeLocker } from '../../contract/locker.ts';

describe('MemoryLocker', () => {
  it('asks the holder to release, then hands the lock over in arrival order', async () => {
    const locker = new MemoryLocker();
    const order: string[] = [];
    const first = await locker.acquire('u', {
      timeoutMs: 1000,
      onReleaseRequest: () => order.push('first asked'),
    });
    const second = locker.acquire('u', {
      timeoutMs: 1000,
      onReleaseRequest: () => order.push('second asked'),
    });
    const third = locker.acquire('u', { timeoutMs: 1000, onReleaseRequest: () => order.push('third asked') });
    assert.deepEqual(order, ['first asked', 'first asked']);
    await first.release();
    const secondLock = await second;
    order.push('second holds');
    await secondLock.release();
    const thirdLock = await third;
    order.push('third holds');
    await thirdLock.release();
    assert.deepEqual(order, ['first asked', 'first asked', 'second asked', 'second holds', 'third holds']);
  });

  it('fails a waiter after its timeout and keeps other keys independent', async () => {
    const locker = new MemoryLocker();
    const held = await locker.acquire('a', { timeoutMs: 1000, onReleaseRequest: () => undefined });
    await assert.rejects(
      locker.acquire('a', { timeoutMs: 10, onReleaseRequest: () => undefined }),
      LockTimeoutError,
    );
    const other = await locker.acquire('b', { timeoutMs: 10, onReleaseRequest: () => undefined });
    await other.release();
    await held.release();
    const again = await locker.acquire('a', { timeoutMs: 10, onReleaseRequest: () => undefined });
    await again.release();
  });
});

describeLocker(
  'memory',
  async () => {
    const locker = new MemoryLocker();
    return { first: locker, second: locker, close: async () => undefined };
  },
  { shared: false },
);
