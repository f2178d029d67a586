import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { HookError } from '../../../src/hooks/modules/hook-error.ts';
import { HookModules } from '../../../src/hooks/modules/registry.ts';
import type { FilterHandler, HookModuleContext } from '../../../src/hooks/modules/types.ts';
import { captureLogger, hooksConfig, sampleEvent } from './fixtures.ts';

function modulesWith(filters: [string, FilterHandler][]): HookModules {
  const { logger } = captureLogger();
  const modules = new HookModules(logger);
  const context = { args: {} } as unknown as HookModuleContext;
  modules.filters.set(
    'pre-create',
    filters.map(([module, handler]) => ({ module, handler, context })),
  );
  return modules;
}

test('filters chain, a HookError cancels with its status and the rest are skipped', async () => {
  const modules = modulesWith([
    [
      'first',
      (upload) => {
        upload.metadata.seen = 'first';
        return upload;
      },
    ],
    [
      'second',
      (upload) => {
        throw new HookError(403, `no entry after ${upload.metadata.seen}`);
      },
    ],
    ['third', (upload) => upload],
  ]);
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: undefined }), logger, { modules });
  const outcome = await engine.runBlocking(sampleEvent('pre-create'));
  assert.deepEqual(outcome.kind === 'reject' && [outcome.status, outcome.body], [
    403,
    'no entry after first',
  ]);
  assert.deepEqual(
    engine.runs.records().map((record) => [record.target, record.status]),
    [
      ['module:first', 'completed'],
      ['module:second', 'failed'],
      ['module:third', 'skipped'],
    ],
  );
});

test('a filter that never answers is abandoned at the timeout with 504', async () => {
  const modules = modulesWith([['stuck', () => new Promise<undefined>(() => {})]]);
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: undefined, executableTimeoutMs: 50 }), logger, {
    modules,
  });
  const outcome = await engine.runBlocking(sampleEvent('pre-create'));
  assert.deepEqual(outcome.kind === 'reject' && outcome.status, 504);
  assert.match(outcome.kind === 'reject' ? outcome.body : '', /did not answer within 50 ms/);
  assert.deepEqual(
    engine.runs.records().map((record) => [record.target, record.status, record.error]),
    [['module:stuck', 'timed_out', 'Hook module "stuck" did not answer within 50 ms']],
  );
  assert.equal(engine.runs.totals().timed_out, 1);
});

test('a changed metadata becomes a changeUpload answer', async () => {
  const modules = modulesWith([
    ['rename', (upload) => ({ ...upload, metadata: { ...upload.metadata, filename: 'renamed.txt' } })],
  ]);
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: undefined }), logger, { modules });
  const outcome = await engine.runBlocking(sampleEvent('pre-create'));
  assert.equal(outcome.kind, 'continue');
  assert.equal(
    outcome.kind === 'continue' && outcome.answer?.changeUpload?.metadata?.filename,
    'renamed.txt',
  );
});
