import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import type { Backend } from '../../../src/backends/backend.ts';
import type { JobLeases } from '../../../src/backends/job-leases.ts';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { PostgresJobLeases } from '../../../src/backends/postgres-job-leases.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { RedisJobLeases } from '../../../src/backends/redis-job-leases.ts';
import { eventually } from '../../support/eventually.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';

// Issue 17, point 8: the cluster-wide turns of the expiration sweep and the module schedules, on the real
// Redis and PostgreSQL. Each instance is a backend connection of its own with its own leases.

const ttlMs = 600;
const noErrors = (): void => undefined;

interface Place {
  /** A new instance: its own connection and holder identity. */
  instance(): { backend: Backend; leases: JobLeases };
  cleanup(): Promise<void>;
}

function redisPlace(): Place {
  const keyPrefix = `wharf-test-${randomBytes(4).toString('hex')}:`;
  const opened: RedisBackend[] = [];
  return {
    instance: () => {
      const backend = new RedisBackend(redisUrl);
      opened.push(backend);
      return { backend, leases: new RedisJobLeases(backend, { ttlMs, keyPrefix, onError: noErrors }) };
    },
    cleanup: async () => {
      const client = await opened[0]?.client();
      const keys = (await client?.keys(`${keyPrefix}*`)) ?? [];
      if (keys.length > 0) await client?.del(...keys);
      await Promise.all(opened.map((backend) => backend.close()));
    },
  };
}

async function postgresPlace(): Promise<Place> {
  const schema = `wharf_job_leases_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const opened: PostgresBackend[] = [];
  return {
    instance: () => {
      const backend = new PostgresBackend(dsn);
      opened.push(backend);
      return { backend, leases: new PostgresJobLeases(backend, { ttlMs, onError: noErrors }) };
    },
    cleanup: async () => {
      await Promise.all(opened.map((backend) => backend.close()));
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

function describeJobLeases(name: string, makePlace: () => Place | Promise<Place>): void {
  describe(`job leases on ${name}`, () => {
    test('a tick is won by one instance; a later one waits for the holder to release', async () => {
      const place = await makePlace();
      try {
        const a = place.instance();
        const b = place.instance();
        const [first, second] = await Promise.all([a.leases.claim('sweep', 1), b.leases.claim('sweep', 1)]);
        assert.equal([first, second].filter((lease) => lease !== undefined).length, 1);
        const holder = first ?? second;
        // The next tick, while the holder still runs the first: nobody overlaps it.
        assert.equal(await a.leases.claim('sweep', 2), undefined);
        assert.equal(await b.leases.claim('sweep', 2), undefined);
        await holder?.release();
        // An old tick is never run again; the next one is, by whoever asks first.
        assert.equal(await a.leases.claim('sweep', 1), undefined);
        const next = await b.leases.claim('sweep', 3);
        assert.notEqual(next, undefined);
        await next?.release();
        // Jobs are apart: another job's tick is free.
        const other = await a.leases.claim('schedule:m:* * * * * *:0', 3);
        assert.notEqual(other, undefined);
        await other?.release();
      } finally {
        await place.cleanup();
      }
    });

    test('a holder that keeps renewing keeps the job; a holder that died loses it after the TTL', async () => {
      const place = await makePlace();
      try {
        const a = place.instance();
        const b = place.instance();
        const held = await a.leases.claim('schedule', 10);
        assert.notEqual(held, undefined);
        // Several TTLs later the live holder still has it (renewed every third of the TTL).
        await new Promise((resolve) => setTimeout(resolve, ttlMs * 3));
        assert.equal(await b.leases.claim('schedule', 11), undefined);
        // The holder dies: its connection goes, nothing renews, nothing releases.
        await a.backend.close();
        const taken = await eventually(
          () => b.leases.claim('schedule', Math.floor(Date.now() / 100)),
          'the job to be free after its dead holder',
        );
        await taken.release();
      } finally {
        await place.cleanup();
      }
    });
  });
}

describeJobLeases('Redis', redisPlace);
describeJobLeases('PostgreSQL', postgresPlace);
