import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunLog } from '../../../src/hooks/run-log.ts';

test('a queued delivery is pending until its final record arrives', () => {
  const log = new RunLog(10);
  const base = {
    eventId: 'e1',
    event: 'post-finish' as const,
    hook: 'post-finish',
    target: 'http:http://x/',
    uploadId: 'u1',
    blocking: false,
    startedAt: 1,
  };
  log.addPending(base);
  assert.deepEqual(
    log.pending().map((record) => record.status),
    ['pending'],
  );
  assert.deepEqual(log.records(), []);
  log.add({ ...base, status: 'completed', durationMs: 3, output: 'ok' });
  assert.deepEqual(log.pending(), []);
  assert.equal(log.records()[0]?.output, 'ok');
  assert.deepEqual(log.totals(), { completed: 1, failed: 0, skipped: 0, timed_out: 0 });
});
