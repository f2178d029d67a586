import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import type { HookLogger } from '../../../src/hooks/engine.ts';
import { HookConfigError } from '../../../src/hooks/errors.ts';
import { isBlockingEvent, parseEventList, uploadEventNames } from '../../../src/hooks/events.ts';
import {
  captureLogger,
  gate,
  hooksConfig,
  readText,
  sampleEvent,
  startHookServer,
  temporaryDirectory,
  writeScript,
} from './fixtures.ts';

describe('blocking dispatch', () => {
  test('runs the file hook, then the dir hook, then each URL in order', async (t) => {
    const directory = await temporaryDirectory(t);
    const trace = join(directory, 'trace');
    const hooksDir = join(directory, 'hooks');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(hooksDir);
    const file = await writeScript(directory, 'file-hook.sh', `echo file >> "${trace}"`);
    await writeScript(hooksDir, 'pre-create', `echo dir >> "${trace}"`);
    const seenByHttp: string[] = [];
    const first = await startHookServer(t, async (_request, response) => {
      seenByHttp.push(`first after: ${(await readText(trace)).trim().split('\n').join(',')}`);
      response.writeHead(200).end();
    });
    const second = await startHookServer(t, (_request, response) => {
      seenByHttp.push('second');
      response.writeHead(200).end();
    });
    const engine = createHookEngine(
      hooksConfig({ hooksFile: file, hooksDir, httpUrls: [first.url, second.url] }),
      captureLogger().logger,
    );

    assert.deepEqual(await engine.runBlocking(sampleEvent()), { kind: 'continue' });
    assert.equal(await readText(trace), 'file\ndir\n');
    assert.deepEqual(seenByHttp, ['first after: file,dir', 'second']);
    const records = engine.runs.records();
    assert.deepEqual(
      records.map((record) => [record.target, record.status]),
      [
        [`file:${file}`, 'completed'],
        [`dir:${join(hooksDir, 'pre-create')}`, 'completed'],
        [`http:${first.url}`, 'completed'],
        [`http:${second.url}`, 'completed'],
      ],
    );
    assert.equal(new Set(records.map((record) => record.eventId)).size, 1, 'one event id per event');
  });

  test('stops at the first failure: later targets are not called and are recorded skipped', async (t) => {
    const directory = await temporaryDirectory(t);
    const trace = join(directory, 'trace');
    const hooksDir = join(directory, 'hooks');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(hooksDir);
    const file = await writeScript(directory, 'file-hook.sh', `echo file >> "${trace}"`);
    await writeScript(hooksDir, 'pre-create', `echo dir >> "${trace}"\necho "dir says no" >&2\nexit 1`);
    const server = await startHookServer(t);
    const engine = createHookEngine(
      hooksConfig({ hooksFile: file, hooksDir, httpUrls: [server.url] }),
      captureLogger().logger,
    );

    const outcome = await engine.runBlocking(sampleEvent());
    assert.deepEqual(outcome, {
      kind: 'reject',
      status: 400,
      body: 'Hook "pre-create" failed with exit code 1',
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
    assert.equal(await readText(trace), 'file\ndir\n');
    assert.equal(server.requests.length, 0);
    assert.deepEqual(
      engine.runs.records().map((record) => record.status),
      ['completed', 'failed', 'skipped'],
    );
  });

  test('with no targets configured nothing listens and blocking events continue', async () => {
    const engine = createHookEngine(hooksConfig(), captureLogger().logger);
    for (const name of uploadEventNames) assert.equal(engine.listens(name), false);
    assert.deepEqual(await engine.runBlocking(sampleEvent()), { kind: 'continue' });
    assert.equal(engine.runs.records().length, 0);
  });
});

describe('enabled events', () => {
  test('events not in enabledEvents fire nothing on any target', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(
      hooksConfig({ httpUrls: [server.url], enabledEvents: parseEventList('post-finish,pre-terminate') }),
      captureLogger().logger,
    );
    assert.equal(engine.listens('pre-create'), false);
    assert.equal(engine.listens('post-create'), false);
    assert.equal(engine.listens('post-finish'), true);
    assert.deepEqual(engine.targetsFor('post-create'), []);
    assert.deepEqual(engine.targetsFor('post-finish'), [`http:${server.url}`]);

    assert.deepEqual(await engine.runBlocking(sampleEvent('pre-create')), { kind: 'continue' });
    engine.emit(sampleEvent('post-create'));
    engine.emit(sampleEvent('post-receive'));
    engine.emit(sampleEvent('post-finish'));
    await engine.runs.waitFor((record) => record.event === 'post-finish');
    await engine.drain(5000);

    assert.deepEqual(
      server.requests.map((request) => request.headers['hook-name']),
      ['post-finish'],
    );
    assert.deepEqual(
      engine.runs.records().map((record) => record.event),
      ['post-finish'],
    );
  });

  test('parseEventList reads --hooks lists and refuses unknown names', () => {
    assert.deepEqual([...parseEventList(' pre-create, post-finish ,,')], ['pre-create', 'post-finish']);
    assert.deepEqual([...parseEventList('')], []);
    assert.throws(() => parseEventList('pre-create,pre-upload'), /unknown hook event "pre-upload"/);
    assert.deepEqual(uploadEventNames.filter(isBlockingEvent), ['pre-create', 'pre-terminate', 'pre-finish']);
  });
});

describe('non-blocking dispatch', () => {
  test('a failing target does not hide the event from the others', async (t) => {
    const directory = await temporaryDirectory(t);
    const failing = await startHookServer(t, (_request, response) => {
      response.writeHead(500).end();
    });
    const healthy = await startHookServer(t);
    const engine = createHookEngine(
      hooksConfig({
        hooksFile: join(directory, 'missing-hook.sh'),
        hooksDir: directory,
        httpUrls: [failing.url, healthy.url],
      }),
      captureLogger().logger,
    );

    engine.emit(sampleEvent('post-finish'));
    const records = await engine.runs.waitForCount((record) => record.event === 'post-finish', 4);

    const byTarget = new Map(records.map((record) => [record.target, record.status]));
    assert.equal(byTarget.get(`file:${join(directory, 'missing-hook.sh')}`), 'failed');
    assert.equal(byTarget.get(`dir:${join(directory, 'post-finish')}`), 'failed');
    assert.equal(byTarget.get(`http:${failing.url}`), 'failed');
    assert.equal(byTarget.get(`http:${healthy.url}`), 'completed');
    assert.equal((await healthy.nthRequest(1)).headers['hook-name'], 'post-finish');
  });

  test('drain waits for queued deliveries; close aborts running ones and skips queued ones', async (t) => {
    const release = gate();
    const server = await startHookServer(t, async (_request, response) => {
      await release.opened;
      response.writeHead(200).end();
    });
    const engine = createHookEngine(
      hooksConfig({ httpUrls: [server.url], postConcurrency: 1, postQueueLimit: 10, httpTimeoutMs: 10_000 }),
      captureLogger().logger,
    );
    engine.emit(sampleEvent('post-create'));
    engine.emit(sampleEvent('post-receive'));
    await server.nthRequest(1);

    await engine.close();
    release.open();
    const records = engine.runs.records();
    assert.deepEqual(
      records.map((record) => [record.event, record.status, record.error]),
      [
        ['post-create', 'failed', 'aborted: the hooks engine closed'],
        ['post-receive', 'skipped', 'the hooks engine closed'],
      ],
    );
    assert.equal(engine.closed, true);

    const outcome = await engine.runBlocking(sampleEvent('pre-create'));
    assert.equal(outcome.kind === 'reject' && outcome.status, 503);
    engine.emit(sampleEvent('post-finish'));
    assert.equal(engine.runs.records().at(-1)?.status, 'skipped');
  });

  test('drain resolves once every queued delivery is done', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(
      hooksConfig({ httpUrls: [server.url], postConcurrency: 2 }),
      captureLogger().logger,
    );
    for (let index = 0; index < 10; index += 1) engine.emit(sampleEvent('post-receive'));
    await engine.drain(10_000);
    assert.equal(engine.runs.filter((record) => record.status === 'completed').length, 10);
    await engine.close();
  });
});

describe('configuration', () => {
  test('invalid values are refused with HookConfigError', () => {
    const logger = captureLogger().logger;
    assert.throws(() => createHookEngine(hooksConfig({ httpUrls: ['not a url'] }), logger), HookConfigError);
    assert.throws(
      () => createHookEngine(hooksConfig({ httpUrls: ['ftp://example.com/'] }), logger),
      HookConfigError,
    );
    assert.throws(() => createHookEngine(hooksConfig({ postConcurrency: 0 }), logger), HookConfigError);
    assert.throws(() => createHookEngine(hooksConfig({ postQueueLimit: -1 }), logger), HookConfigError);
    assert.throws(() => createHookEngine(hooksConfig({ httpTimeoutMs: 0 }), logger), HookConfigError);
  });

  test('the configuration is copied and frozen', () => {
    const enabledEvents = new Set(['post-finish'] as const);
    const engine = createHookEngine(hooksConfig({ enabledEvents }), captureLogger().logger);
    enabledEvents.clear();
    assert.equal(engine.config.enabledEvents.has('post-finish'), true);
    assert.ok(Object.isFrozen(engine.config));
  });

  test('a pino logger is a HookLogger', () => {
    const logger: HookLogger = pino({ enabled: false });
    assert.doesNotThrow(() => createHookEngine(hooksConfig(), logger));
  });
});
