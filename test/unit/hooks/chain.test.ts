import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import type { RunRecord } from '../../../src/hooks/history/run-log.ts';
import { HookError } from '../../../src/hooks/modules/hook-error.ts';
import { HookModules } from '../../../src/hooks/modules/registry.ts';
import type { HookModuleContext } from '../../../src/hooks/modules/types.ts';
import { captureLogger, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

/** Every hook, whatever declared it, is an entry of one chain; its runs are recorded the same way. */

async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

describe('one chain', () => {
  test('a run-time target refused by a full outbox gets a skipped record saying so', async (t) => {
    // The receiver holds every request: the first event stays in the outbox, which then is full.
    const held: (() => void)[] = [];
    const server = await startHookServer(t, (_request, response) => {
      held.push(() => response.writeHead(200).end());
    });
    const engine = createHookEngine(
      hooksConfig({ outboxLimit: 1, httpTimeoutMs: 10_000 }),
      captureLogger().logger,
    );
    t.after(async () => {
      for (const release of held) release();
      await engine.close();
    });
    const state = engine.delivery.addHttpTarget({ url: server.url, events: ['post-finish'] });
    assert.equal(state.addedAtRuntime, true);
    const first = sampleEvent('post-finish', { upload: { ...sampleEvent().upload, id: 'first' } });
    const second = sampleEvent('post-finish', { upload: { ...sampleEvent().upload, id: 'second' } });
    engine.emit(first);
    await server.nthRequest(1);
    engine.emit(second);
    const ofUpload = (id: string): RunRecord[] => engine.runs.records().filter((run) => run.uploadId === id);
    await until('the second event recorded skipped', () =>
      ofUpload('second').some((run) => run.status === 'skipped'),
    );
    assert.deepEqual(
      ofUpload('second').map((run) => [run.target, run.status, run.error]),
      [[`http:${new URL(server.url).href}`, 'skipped', 'outbox full']],
    );
    // Positive control: the event that fitted was delivered, not skipped.
    assert.equal(server.requests.length, 1);
    assert.equal(
      ofUpload('first').some((run) => run.status === 'skipped'),
      false,
    );
  });

  test('a target added at run time is an entry of the post chains from the next event on', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(hooksConfig({ enabledEvents: new Set() }), captureLogger().logger);
    t.after(() => engine.close());
    assert.equal(engine.listens('post-create'), false);
    engine.delivery.addHttpTarget({ url: server.url });
    assert.equal(engine.listens('post-create'), true);
    assert.equal(engine.listens('pre-create'), false);
    engine.emit(sampleEvent('post-create'));
    const request = await server.nthRequest(1);
    assert.equal(request.headers['hook-name'], 'post-create');
  });

  test('a failing critical entry skips every later entry, whatever declared it, and records why', async (t) => {
    const flagTarget = await startHookServer(t);
    const namedTarget = await startHookServer(t);
    const { logger } = captureLogger();
    const modules = new HookModules(logger);
    const context = { args: {} } as unknown as HookModuleContext;
    modules.filters.set('pre-create', [
      {
        module: 'gate',
        context,
        handler: () => {
          throw new HookError(403, 'closed today');
        },
      },
    ]);
    const engine = createHookEngine(hooksConfig({ httpUrls: [flagTarget.url] }), logger, {
      modules,
      pipeline: {
        hooks: [
          { name: 'audit', transport: 'http', url: namedTarget.url, retries: 0, runOn: 'success', args: {} },
        ],
        bindings: [{ hook: 'audit', endpoint: '/files', events: ['pre-create'], args: {} }],
      },
    });
    t.after(() => engine.close());
    const outcome = await engine.runBlocking(sampleEvent('pre-create', { endpoint: '/files' }));
    assert.deepEqual(outcome.kind === 'reject' && [outcome.status, outcome.body], [403, 'closed today']);
    assert.deepEqual(
      engine.runs.records().map((run) => [run.hook, run.target, run.status, run.error]),
      [
        ['pre-create', 'module:gate', 'failed', 'closed today'],
        ['pre-create', `http:${flagTarget.url}`, 'skipped', 'not run: an earlier blocking hook failed'],
        ['audit', `http:${namedTarget.url}`, 'skipped', 'not run: an earlier blocking hook failed'],
      ],
    );
    assert.equal(flagTarget.requests.length + namedTarget.requests.length, 0);
    // Positive control: the same chain with the gate open calls both targets, in chain order.
    const open = new HookModules(logger);
    open.filters.set('pre-create', [{ module: 'gate', context, handler: (upload) => upload }]);
    const opened = createHookEngine(hooksConfig({ httpUrls: [flagTarget.url] }), logger, {
      modules: open,
      pipeline: {
        hooks: [
          { name: 'audit', transport: 'http', url: namedTarget.url, retries: 0, runOn: 'success', args: {} },
        ],
        bindings: [{ hook: 'audit', endpoint: '/files', events: ['pre-create'], args: {} }],
      },
    });
    t.after(() => opened.close());
    assert.deepEqual(await opened.runBlocking(sampleEvent('pre-create', { endpoint: '/files' })), {
      kind: 'continue',
    });
    assert.deepEqual(
      opened.runs.records().map((run) => [run.target, run.status]),
      [
        ['module:gate', 'completed'],
        [`http:${flagTarget.url}`, 'completed'],
        [`http:${namedTarget.url}`, 'completed'],
      ],
    );
  });
});
