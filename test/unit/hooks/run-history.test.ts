import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { eventStatus } from '../../../src/hooks/history/run-history.ts';
import { FileRunHistory } from '../../../src/hooks/history/run-history-file.ts';
import { PostgresRunHistory } from '../../../src/hooks/history/run-history-postgres.ts';
import { RedisRunHistory } from '../../../src/hooks/history/run-history-redis.ts';
import { describeRunHistory, sampleRun } from '../../contract/run-history.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';

const failOnError = (error: unknown): void => {
  throw error;
};

describeRunHistory('file', async (retention) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-history-'));
  return {
    history: new FileRunHistory(directory, { ...retention, onError: failOnError }),
    close: () => rm(directory, { recursive: true, force: true }),
  };
});

describeRunHistory('redis', async (retention) => {
  const backend = new RedisBackend(redisUrl);
  const keyPrefix = `wharf-test-${randomUUID()}:`;
  return {
    history: new RedisRunHistory(backend, { ...retention, keyPrefix, onError: failOnError }),
    close: async () => {
      const client = await backend.client();
      const keys = await client.keys(`${keyPrefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await backend.close();
    },
  };
});

/** Each PostgreSQL history gets a schema of its own: retention deletes across the whole table. */
describeRunHistory('postgres', async (retention) => {
  const schema = `wharf_test_${randomUUID().replaceAll('-', '')}`;
  const admin = new PostgresBackend(postgresUrl);
  await (await admin.pool()).query(`CREATE SCHEMA ${schema}`);
  const url = new URL(postgresUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const backend = new PostgresBackend(url.toString());
  return {
    history: new PostgresRunHistory(backend, { ...retention, onError: failOnError }),
    close: async () => {
      await backend.close();
      await (await admin.pool()).query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
});

describe('run history', () => {
  test('the status of an event: per target the latest attempt, then the worst target', () => {
    const run = sampleRun();
    assert.equal(
      eventStatus([
        { ...run, status: 'failed', attempt: 1 },
        { ...run, status: 'completed', attempt: 2 },
      ]),
      'completed',
    );
    assert.equal(
      eventStatus([
        { ...run, status: 'completed' },
        { ...run, target: 'kafka', status: 'timed_out' },
        { ...run, target: 'amqp', status: 'pending' },
      ]),
      'timed_out',
    );
    assert.equal(eventStatus([{ ...run, status: 'skipped' }]), 'skipped');
  });

  test('the file history comes back after a restart, past a torn last line', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'wharf-history-'));
    try {
      const retention = { limit: 100, maxAgeMs: 86_400_000, onError: failOnError };
      const first = new FileRunHistory(directory, retention);
      await first.open();
      const run = sampleRun({ status: 'failed', error: 'HTTP 500' });
      first.record(run);
      first.record({ ...run, attempt: 2, status: 'completed' });
      await first.close();
      const [segment] = await readdir(directory);
      assert.ok(segment);
      await writeFile(path.join(directory, segment), '{"eventId":"torn', { flag: 'a' });

      const second = new FileRunHistory(directory, retention);
      await second.open();
      const summary = await second.event(run.eventId);
      assert.deepEqual(
        summary?.runs.map((kept) => [kept.attempt, kept.status]),
        [
          [1, 'failed'],
          [2, 'completed'],
        ],
      );
      await second.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  test('the file history deletes segments that hold only removed events', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'wharf-history-'));
    try {
      const history = new FileRunHistory(directory, {
        limit: 2,
        maxAgeMs: 86_400_000,
        segmentLines: 2,
        onError: failOnError,
      });
      await history.open();
      for (let index = 0; index < 6; index++) {
        history.record(sampleRun({ startedAt: Date.now() + index }));
        await history.flush();
      }
      await history.close();
      const segments = await readdir(directory);
      assert.ok(segments.length <= 2, `segments left: ${segments.join(', ')}`);
      const reopened = new FileRunHistory(directory, {
        limit: 2,
        maxAgeMs: 86_400_000,
        onError: failOnError,
      });
      await reopened.open();
      assert.equal((await reopened.events({})).length, 2);
      await reopened.close();
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
