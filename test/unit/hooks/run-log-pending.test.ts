import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunLog } from '../../../src/hooks/history/run-log.ts';

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

test('watchers see every transition of a delivery, listeners only its final record', () => {
  const log = new RunLog(10);
  const base = {
    eventId: 'e2',
    event: 'post-create' as const,
    hook: 'post-create',
    target: 'amqp',
    uploadId: 'u2',
    blocking: false,
    startedAt: 1,
    attempt: 1,
  };
  const watched: string[] = [];
  const listened: string[] = [];
  log.watch((record) => watched.push(record.status));
  log.subscribe((record) => listened.push(record.status));
  log.addPending(base);
  log.markRunning(base);
  assert.deepEqual(
    log.pending().map((record) => record.status),
    ['running'],
  );
  log.add({ ...base, status: 'failed', durationMs: 2, error: 'refused' });
  assert.deepEqual(watched, ['pending', 'running', 'failed']);
  assert.deepEqual(listened, ['failed']);
  assert.deepEqual(log.pending(), []);
});

test('an event delivered to several targets is pending once per target, each until its own final record', () => {
  const log = new RunLog(10);
  const base = {
    event: 'post-finish' as const,
    hook: 'post-finish',
    uploadId: 'u3',
    blocking: false,
    startedAt: 1,
  };
  const shown = (): string[] =>
    log.pending().map((record) => `${record.eventId} ${record.target} ${record.status}`);
  log.addPending({ ...base, eventId: 'e3', target: 'amqp' });
  log.addPending({ ...base, eventId: 'e3', target: 'kafka' });
  log.addPending({ ...base, eventId: 'e4', target: 'amqp' });
  // A running mark for a delivery nobody queued changes nothing; one for a queued one replaces it in its place.
  log.markRunning({ ...base, eventId: 'e3', target: 'http:http://x/' });
  log.markRunning({ ...base, eventId: 'e3', target: 'kafka' });
  assert.deepEqual(shown(), ['e3 amqp pending', 'e3 kafka running', 'e4 amqp pending']);
  log.add({ ...base, eventId: 'e3', target: 'kafka', status: 'completed', durationMs: 1 });
  assert.deepEqual(shown(), ['e3 amqp pending', 'e4 amqp pending']);
  log.add({ ...base, eventId: 'e3', target: 'amqp', status: 'failed', durationMs: 1 });
  log.markRunning({ ...base, eventId: 'e4', target: 'amqp' });
  assert.deepEqual(shown(), ['e4 amqp running']);
  log.add({ ...base, eventId: 'e4', target: 'amqp', status: 'completed', durationMs: 1 });
  assert.deepEqual(log.pending(), []);
  assert.deepEqual(log.totals(), { completed: 2, failed: 1, skipped: 0, timed_out: 0 });
});
