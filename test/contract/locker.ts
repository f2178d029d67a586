import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type Lock, type Locker, LockTimeoutError } from '../../src/locks/locker.ts';

/** Two lockers that share one lock space, as two Wharf instances sharing Redis or PostgreSQL would. */
export interface LockersUnderTest {
  readonly first: Locker;
  readonly second: Locker;
  /**
   * Makes `first` vanish without releasing anything, as a SIGKILLed instance would. Only for shared
   * lockers: their locks must free themselves (expiry, end of session).
   */
  readonly crashFirst?: () => Promise<void>;
  close(): Promise<void>;
}

const ignore = (): void => undefined;

function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return new Promise((resolve) => setImmediate(() => resolve(settled)));
}

/**
 * What every Locker guarantees, between two instances: one holder at a time, a waiter asks the holder to
 * release (takeover), a waiter gives up at its timeout, keys are independent, release is idempotent, and
 * (for shared lockers) a crashed holder's lock frees itself.
 */
export function describeLocker(
  name: string,
  open: () => Promise<LockersUnderTest>,
  scope: { readonly shared: boolean },
): void {
  describe(`${name} locker contract`, () => {
    let lockers: LockersUnderTest;
    before(async () => {
      lockers = await open();
    });
    after(async () => {
      await lockers.close();
    });

    test('a waiter on the other instance asks the holder to release and gets the lock only after it', async () => {
      const key = randomUUID();
      let asked = 0;
      const held = await lockers.first.acquire(key, { timeoutMs: 5000, onReleaseRequest: () => asked++ });
      const waiting = lockers.second.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
      // The holder hears the request (over the wire for shared lockers)...
      for (let round = 0; asked === 0 && round < 200; round++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(asked >= 1, 'the holder was asked to release');
      // ...and the waiter is not granted while the holder keeps it.
      assert.equal(await settledYet(waiting), false);
      await held.release();
      const next = await waiting;
      await next.release();
    });

    test('takeover: a holder that releases on request hands the lock to the other instance', async () => {
      const key = randomUUID();
      let held: Lock | undefined;
      held = await lockers.first.acquire(key, {
        timeoutMs: 5000,
        onReleaseRequest: () => void held?.release(),
      });
      const taken = await lockers.second.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
      // The first instance must now wait in turn.
      await assert.rejects(
        lockers.first.acquire(key, { timeoutMs: 200, onReleaseRequest: ignore }),
        LockTimeoutError,
      );
      await taken.release();
      held = await lockers.first.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
      await held.release();
    });

    test('a waiter gives up at its timeout while the holder keeps the lock', async () => {
      const key = randomUUID();
      const held = await lockers.first.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
      await assert.rejects(
        lockers.second.acquire(key, { timeoutMs: 300, onReleaseRequest: ignore }),
        LockTimeoutError,
      );
      // The timed-out waiter left nothing behind: once free, the lock is available at once.
      await held.release();
      const again = await lockers.second.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
      await again.release();
    });

    test('different keys do not block each other, and releasing twice is harmless', async () => {
      const a = await lockers.first.acquire(randomUUID(), { timeoutMs: 1000, onReleaseRequest: ignore });
      const b = await lockers.second.acquire(randomUUID(), { timeoutMs: 1000, onReleaseRequest: ignore });
      await a.release();
      await a.release();
      await b.release();
    });

    test('contended from both instances, the critical section never has two holders', async () => {
      const key = randomUUID();
      let inside = 0;
      let most = 0;
      let entries = 0;
      const worker = async (locker: Locker): Promise<void> => {
        for (let round = 0; round < 5; round++) {
          const lock = await locker.acquire(key, { timeoutMs: 10_000, onReleaseRequest: ignore });
          inside++;
          most = Math.max(most, inside);
          entries++;
          await new Promise((resolve) => setTimeout(resolve, 2));
          inside--;
          await lock.release();
        }
      };
      await Promise.all([worker(lockers.first), worker(lockers.second), worker(lockers.first)]);
      assert.equal(entries, 15);
      assert.equal(most, 1);
    });

    if (scope.shared) {
      test("a crashed holder's lock frees itself and the other instance takes it", async () => {
        const crash = lockers.crashFirst;
        assert.ok(crash, 'shared lockers provide crashFirst');
        const key = randomUUID();
        await lockers.first.acquire(key, { timeoutMs: 5000, onReleaseRequest: ignore });
        await crash();
        const taken = await lockers.second.acquire(key, { timeoutMs: 10_000, onReleaseRequest: ignore });
        await taken.release();
      });
    }
  });
}
