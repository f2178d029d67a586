import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { RunLog } from '../../../src/hooks/history/run-log.ts';
import { eventually } from '../../support/eventually.ts';
import { captureLogger, hooksConfig, sampleEvent } from './fixtures.ts';

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

test('the engine lists a post delivery in flight as running and one waiting for its turn as pending (docs/hooks.md)', async (t) => {
  // An HTTP receiver that holds every request until released: the first delivery stays in flight.
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/hooks`;
  const { logger } = captureLogger();
  // One post delivery at a time: the second event waits in the queue while the first is delivered.
  const engine = createHookEngine(hooksConfig({ httpUrls: [url], postConcurrency: 1 }), logger);
  t.after(() => engine.close());
  const first = sampleEvent('post-create', { upload: { ...sampleEvent().upload, id: 'first' } });
  const second = sampleEvent('post-create', { upload: { ...sampleEvent().upload, id: 'second' } });
  engine.emit(first);
  engine.emit(second);
  await eventually(() => (held.length === 1 ? true : undefined), 'the first delivery at the receiver');
  assert.deepEqual(
    engine.runs.pending().map((run) => `${run.uploadId} ${run.status}`),
    ['first running', 'second pending'],
  );
  for (const response of held.splice(0)) response.end('ok');
  await eventually(() => (held.length === 1 ? true : undefined), 'the second delivery at the receiver');
  assert.deepEqual(
    engine.runs.pending().map((run) => `${run.uploadId} ${run.status}`),
    ['second running'],
  );
  for (const response of held.splice(0)) response.end('ok');
  await eventually(() => (engine.runs.pending().length === 0 ? true : undefined), 'both final records');
  assert.deepEqual(
    engine.runs.records().map((run) => `${run.uploadId} ${run.status}`),
    ['first completed', 'second completed'],
  );
});
