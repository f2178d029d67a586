import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { formatPayload } from '../../../src/hooks/formats/index.ts';
import {
  captureLogger,
  hooksConfig,
  readText,
  sampleEvent,
  temporaryDirectory,
  writeScript,
} from './fixtures.ts';

test('a dir hook runs <dir>/<hook name> with the JSON as argv[1] and on stdin', async (t) => {
  const directory = await temporaryDirectory(t);
  const out = await temporaryDirectory(t);
  await writeScript(
    directory,
    'pre-create',
    `printf '%s' "$#" > "${out}/argc"\nprintf '%s' "$1" > "${out}/argv1"\ncat > "${out}/stdin"`,
  );
  const engine = createHookEngine(
    hooksConfig({ hooksDir: directory, format: 'tusd' }),
    captureLogger().logger,
  );
  const event = sampleEvent('pre-create');

  assert.deepEqual(await engine.runBlocking(event), { kind: 'continue' });
  assert.equal(await readText(join(out, 'argc')), '1');
  assert.equal(await readText(join(out, 'argv1')), formatPayload('tusd', event));
  assert.equal(await readText(join(out, 'stdin')), formatPayload('tusd', event));
  assert.equal(engine.runs.records()[0]?.target, `dir:${join(directory, 'pre-create')}`);
});

test('a missing dir hook file cancels a blocking event with 400 naming the hook', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeScript(directory, 'pre-create', 'exit 0');
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksDir: directory }), logger);

  const outcome = await engine.runBlocking(sampleEvent('pre-terminate'));
  assert.equal(outcome.kind, 'reject');
  assert.equal(outcome.kind === 'reject' && outcome.status, 400);
  assert.match(outcome.kind === 'reject' ? outcome.body : '', /^Hook "pre-terminate" failed: .*not found/);
  assert.equal(engine.runs.records()[0]?.status, 'failed');
  assert.ok(entries.some((entry) => entry.level === 'error'));
});

test('a dir hook exiting non-zero rejects with a fixed message; its stderr goes to the log only', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeScript(directory, 'pre-create', 'echo "quota exceeded for token tk_live_123" >&2\nexit 2');
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksDir: directory }), logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 400);
  assert.equal(outcome.kind === 'reject' && outcome.body, 'Hook "pre-create" failed with exit code 2');
  assert.equal(engine.runs.records()[0]?.exitCode, 2);
  const warned = entries.find((entry) => entry.level === 'warn' && entry.fields.stderr !== undefined);
  assert.equal(warned?.fields.stderr, 'quota exceeded for token tk_live_123');
  assert.equal(warned?.fields.target, 'dir:pre-create');
});

test('a dir hook answering {"reject": true} on stdout gets its own status and body', async (t) => {
  const directory = await temporaryDirectory(t);
  const answer = JSON.stringify({ reject: true, httpResponse: { status: 413, body: 'quota exceeded' } });
  await writeScript(directory, 'pre-create', `printf '%s' '${answer}'`);
  const engine = createHookEngine(hooksConfig({ hooksDir: directory }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 413);
  assert.equal(outcome.kind === 'reject' && outcome.body, 'quota exceeded');
});

test('a missing dir hook file for a post event is recorded as failed and logged', async (t) => {
  const directory = await temporaryDirectory(t);
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksDir: directory }), logger);
  engine.emit(sampleEvent('post-receive'));
  const record = await engine.runs.waitFor((candidate) => candidate.event === 'post-receive');
  assert.equal(record.status, 'failed');
  assert.equal(record.target, `dir:${join(directory, 'post-receive')}`);
  assert.ok(entries.some((entry) => entry.level === 'error' && entry.fields.eventId === record.eventId));
});

test('post dir hooks run with the JSON of their own event', async (t) => {
  const directory = await temporaryDirectory(t);
  const out = await temporaryDirectory(t);
  await writeScript(directory, 'post-finish', `printf '%s' "$1" > "${out}/post-finish"`);
  const engine = createHookEngine(hooksConfig({ hooksDir: directory, format: 'v2' }), captureLogger().logger);
  const event = sampleEvent('post-finish');
  engine.emit(event);
  const record = await engine.runs.waitFor((candidate) => candidate.event === 'post-finish');
  assert.equal(record.status, 'completed');
  // The upload's first post event here: numbered 1 (docs/hooks.md, "Order").
  assert.equal(await readText(join(out, 'post-finish')), formatPayload('v2', { ...event, sequence: 1 }));
});
