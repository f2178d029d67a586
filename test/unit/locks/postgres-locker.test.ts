import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { advisoryKey, PostgresLocker } from '../../../src/locks/postgres.ts';
import { describeLocker } from '../../contract/locker.ts';
import { postgresUrl } from '../../support/services.ts';

describeLocker(
  'postgres',
  async () => {
    // Two instances: each has its own sessions, as two processes would.
    const firstBackend = new PostgresBackend(postgresUrl);
    const secondBackend = new PostgresBackend(postgresUrl);
    const first = new PostgresLocker(firstBackend, { retryMs: 1000 });
    const second = new PostgresLocker(secondBackend, { retryMs: 1000 });
    return {
      first,
      second,
      // Sessions ended without unlocking: PostgreSQL frees the advisory locks with them.
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

describe('postgres locker', () => {
  test('a holder whose session was terminated is told to stop, and the lock is free again', async () => {
    const backend = new PostgresBackend(postgresUrl);
    const other = new PostgresBackend(postgresUrl);
    const locker = new PostgresLocker(backend, { retryMs: 200 });
    const otherLocker = new PostgresLocker(other, { retryMs: 200 });
    try {
      const key = randomUUID();
      let told!: () => void;
      const toldToStop = new Promise<void>((resolve) => (told = resolve));
      await locker.acquire(key, { timeoutMs: 1000, onReleaseRequest: () => told() });
      const pool = await other.pool();
      // The session holding advisory locks is the one not listening and not in the pool.
      await pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = ($1::bigint & 4294967295)::oid`,
        [advisoryKey(key)],
      );
      await toldToStop;
      const taken = await otherLocker.acquire(key, { timeoutMs: 5000, onReleaseRequest: () => undefined });
      await taken.release();
    } finally {
      await locker.close();
      await otherLocker.close();
      await backend.close();
      await other.close();
    }
  });
});
