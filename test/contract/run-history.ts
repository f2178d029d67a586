import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { RetentionSettings, RunHistory } from '../../src/hooks/history/run-history.ts';
import type { RunRecord } from '../../src/hooks/history/run-log.ts';

export interface RunHistoryUnderTest {
  readonly history: RunHistory;
  /** Closes connections and removes what the history created. */
  close(): Promise<void>;
}

export type OpenRunHistory = (retention: RetentionSettings) => Promise<RunHistoryUnderTest>;

const roomy: RetentionSettings = { limit: 1000, maxAgeMs: 7 * 86_400_000 };

export function sampleRun(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    eventId: randomUUID(),
    event: 'post-finish',
    hook: 'post-finish',
    target: 'http:http://127.0.0.1:9/hooks',
    uploadId: randomUUID(),
    blocking: false,
    status: 'completed',
    startedAt: Date.now(),
    durationMs: 3,
    attempt: 1,
    ...overrides,
  };
}

async function withHistory(
  open: OpenRunHistory,
  retention: RetentionSettings,
  body: (history: RunHistory) => Promise<void>,
): Promise<void> {
  const { history, close } = await open(retention);
  try {
    await history.open();
    await body(history);
  } finally {
    await history.close().catch(() => undefined);
    await close();
  }
}

/**
 * What every run history guarantees: transitions of one run collapse to its latest state, runs group by event
 * with the worst latest status per target, every attempt is kept, queries filter and come newest first, and
 * retention (count and age) holds.
 */
export function describeRunHistory(name: string, open: OpenRunHistory): void {
  describe(`run history contract: ${name}`, () => {
    test('the transitions of one run end as its latest state; an event shows every attempt', async () => {
      await withHistory(open, roomy, async (history) => {
        const first = sampleRun({ status: 'pending', startedAt: Date.now() - 5000 });
        history.record(first);
        history.record({ ...first, status: 'running' });
        history.record({ ...first, status: 'failed', httpStatus: 500, error: 'HTTP 500', durationMs: 12 });
        history.record({
          ...first,
          attempt: 2,
          status: 'failed',
          httpStatus: 503,
          startedAt: first.startedAt + 1000,
        });
        history.record({ ...first, attempt: 3, status: 'running', startedAt: first.startedAt + 2000 });
        await history.flush();
        const running = await history.event(first.eventId);
        assert.equal(running?.status, 'running');
        history.record({
          ...first,
          attempt: 3,
          status: 'completed',
          httpStatus: 200,
          startedAt: first.startedAt + 2000,
        });
        await history.flush();
        const summary = await history.event(first.eventId);
        assert.ok(summary);
        assert.equal(summary.status, 'completed');
        assert.equal(summary.uploadId, first.uploadId);
        assert.equal(summary.event, 'post-finish');
        assert.equal(summary.at, first.startedAt);
        assert.deepEqual(
          summary.runs.map((run) => [run.attempt, run.status, run.httpStatus]),
          [
            [1, 'failed', 500],
            [2, 'failed', 503],
            [3, 'completed', 200],
          ],
        );
        assert.equal(await history.event(randomUUID()), undefined);
      });
    });

    test('a resent event starts its attempts again at 1; the earlier round is kept', async () => {
      await withHistory(open, roomy, async (history) => {
        const first = sampleRun({ status: 'failed', startedAt: Date.now() - 9000 });
        history.record(first);
        history.record({ ...first, attempt: 2, status: 'failed', startedAt: first.startedAt + 1000 });
        await history.flush();
        assert.equal((await history.event(first.eventId))?.status, 'failed');
        const resent = { ...first, attempt: 1, startedAt: first.startedAt + 5000 };
        history.record({ ...resent, status: 'pending' });
        await history.flush();
        assert.equal((await history.event(first.eventId))?.status, 'pending');
        history.record({ ...resent, status: 'completed' });
        await history.flush();
        const summary = await history.event(first.eventId);
        assert.equal(summary?.status, 'completed');
        assert.deepEqual(
          summary?.runs.map((run) => [run.attempt, run.status]),
          [
            [1, 'failed'],
            [2, 'failed'],
            [1, 'completed'],
          ],
        );
      });
    });

    test('an event is as bad as its worst target; queries filter and list newest first', async () => {
      await withHistory(open, roomy, async (history) => {
        const uploadId = randomUUID();
        const now = Date.now();
        const ok = sampleRun({ uploadId, event: 'post-create', startedAt: now - 3000 });
        const mixed = sampleRun({ uploadId, event: 'post-receive', startedAt: now - 2000 });
        const latest = sampleRun({
          uploadId,
          event: 'post-finish',
          startedAt: now - 1000,
          status: 'pending',
        });
        history.record(ok);
        history.record(mixed);
        history.record({ ...mixed, target: 'amqp', status: 'failed', error: 'down' });
        history.record(latest);
        history.record(sampleRun({ startedAt: now - 500 }));
        await history.flush();

        const all = await history.events({ uploadId });
        assert.deepEqual(
          all.map((summary) => [summary.event, summary.status]),
          [
            ['post-finish', 'pending'],
            ['post-receive', 'failed'],
            ['post-create', 'completed'],
          ],
        );
        assert.equal(all[1]?.runs.length, 2);
        assert.deepEqual(
          (await history.events({ uploadId, status: 'failed' })).map((summary) => summary.eventId),
          [mixed.eventId],
        );
        assert.deepEqual(
          (await history.events({ uploadId, event: 'post-create' })).map((summary) => summary.eventId),
          [ok.eventId],
        );
        assert.deepEqual(
          (await history.events({ uploadId, since: now - 2000 })).map((summary) => summary.eventId),
          [latest.eventId, mixed.eventId],
        );
        assert.deepEqual(
          (await history.events({ uploadId, limit: 1 })).map((summary) => summary.eventId),
          [latest.eventId],
        );
        const recent = await history.events({ since: now - 3000, limit: 10 });
        assert.ok(recent.some((summary) => summary.eventId === ok.eventId));
        for (let index = 1; index < recent.length; index++) {
          assert.ok((recent[index - 1]?.at ?? 0) >= (recent[index]?.at ?? 0), 'newest first');
        }
      });
    });

    test('only the newest events up to the limit are kept', async () => {
      await withHistory(open, { limit: 3, maxAgeMs: roomy.maxAgeMs }, async (history) => {
        const uploadId = randomUUID();
        const now = Date.now();
        const runs = [5, 4, 3, 2, 1].map((ago) => sampleRun({ uploadId, startedAt: now - ago * 1000 }));
        for (const run of runs) history.record(run);
        await history.flush();
        const kept = await history.events({ uploadId });
        assert.deepEqual(
          kept.map((summary) => summary.eventId),
          runs
            .slice(2)
            .reverse()
            .map((run) => run.eventId),
        );
        assert.equal(await history.event(runs[0]?.eventId ?? ''), undefined);
      });
    });

    test('events older than the maximum age are not shown', async () => {
      await withHistory(open, { limit: 1000, maxAgeMs: 60_000 }, async (history) => {
        const uploadId = randomUUID();
        const old = sampleRun({ uploadId, startedAt: Date.now() - 120_000 });
        const fresh = sampleRun({ uploadId });
        history.record(old);
        history.record(fresh);
        await history.flush();
        assert.deepEqual(
          (await history.events({ uploadId })).map((summary) => summary.eventId),
          [fresh.eventId],
        );
      });
    });
  });
}
