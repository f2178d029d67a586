import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunLog, type RunRecord } from '../../../src/hooks/history/run-log.ts';

function record(index: number, status: RunRecord['status'] = 'completed'): RunRecord {
  return {
    eventId: `event-${index}`,
    event: 'post-receive',
    hook: 'post-receive',
    target: 'http:http://127.0.0.1/hooks',
    uploadId: 'upload',
    blocking: false,
    status,
    startedAt: index,
    durationMs: 1,
  };
}

test('keeps only the most recent records, oldest first, while totals count everything', () => {
  const log = new RunLog(3);
  for (let index = 1; index <= 5; index += 1) log.add(record(index, index === 2 ? 'failed' : 'completed'));
  assert.deepEqual(
    log.records().map((kept) => kept.eventId),
    ['event-3', 'event-4', 'event-5'],
  );
  assert.deepEqual(log.totals(), { completed: 4, failed: 1, skipped: 0, timed_out: 0 });
});

test('subscribers see new records until they unsubscribe; a throwing subscriber harms nobody', () => {
  const log = new RunLog();
  const seen: string[] = [];
  log.subscribe(() => {
    throw new Error('bad listener');
  });
  const unsubscribe = log.subscribe((added) => seen.push(added.eventId));
  log.add(record(1));
  unsubscribe();
  log.add(record(2));
  assert.deepEqual(seen, ['event-1']);
  assert.equal(log.records().length, 2);
});

test('waitFor finds a kept record at once, or the next matching one', async () => {
  const log = new RunLog();
  log.add(record(1));
  assert.equal((await log.waitFor((kept) => kept.eventId === 'event-1')).startedAt, 1);
  const pending = log.waitFor((kept) => kept.status === 'timed_out');
  log.add(record(2));
  log.add(record(3, 'timed_out'));
  assert.equal((await pending).eventId, 'event-3');
  await assert.rejects(
    log.waitFor(() => false, 10),
    /no matching hook run/,
  );
});
