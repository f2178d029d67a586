import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WharfFile } from '../../../src/config/config-file.ts';
import { WharfError } from '../../../src/errors.ts';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import type { NamedHooksStore, StoredNamedHooks } from '../../../src/info/named-hooks-store.ts';
import { createLogger } from '../../../src/logger.ts';
import { RuntimeNamedHooks } from '../../../src/server/admin/named-hooks.ts';
import { captureLogger, hooksConfig } from '../hooks/fixtures.ts';

/** A store that fails every read until `answer` is set (a fake: this tests RuntimeNamedHooks alone). */
class FlakyStore implements NamedHooksStore {
  readonly shared = false;
  answer: StoredNamedHooks | undefined;
  async version(): Promise<number> {
    return (await this.read()).version;
  }
  async read(): Promise<StoredNamedHooks> {
    if (this.answer === undefined) throw new Error('store away');
    return this.answer;
  }
  async write(): Promise<boolean> {
    return false;
  }
}

const file = (hooks: WharfFile['hooks']): WharfFile => ({
  file: '/etc/wharf.yaml',
  hooks,
  endpoints: [{ path: '/files' } as WharfFile['endpoints'][number]],
  bindings: [],
});

const audit = {
  name: 'audit',
  transport: 'http',
  url: 'http://127.0.0.1:9/audit',
  retries: 0,
  runOn: 'success',
  args: {},
} as const;

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof WharfError ? error.code : String(error);
  }
}

test('a reload (SIGHUP) before the stored named hooks were ever read does not count as reading them: requests stay refused until the store answers', async (t) => {
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig(), logger, {});
  t.after(() => engine.close());
  const store = new FlakyStore();
  let current: WharfFile | undefined = file([audit]);
  const named = new RuntimeNamedHooks({
    store,
    engine,
    file: () => current,
    endpoints: ['/files'],
    inherited: {},
    logger: createLogger('silent'),
  });
  await named.start();
  t.after(() => named.stop());
  assert.equal(
    codeOf(() => named.pin('POST')),
    'ERR_NAMED_HOOKS_UNAVAILABLE',
  );
  assert.equal(named.health().status, 'unavailable');

  const reloaded = file([audit]);
  named.reload(reloaded);
  current = reloaded;
  assert.equal(
    codeOf(() => named.pin('POST')),
    'ERR_NAMED_HOOKS_UNAVAILABLE',
    'still refused after the reload',
  );
  assert.equal(
    codeOf(() => named.pin('HEAD')),
    undefined,
  );

  // The store answers with a binding the file does not fit (no hook "quota"): refused, naming it.
  store.answer = {
    version: 1,
    document: {
      hooks: {},
      bindings: [{ id: 'b1', endpoint: '/files', hook: 'quota', events: ['pre-create'] }],
    },
  };
  await named.list();
  assert.equal(
    codeOf(() => named.pin('POST')),
    'ERR_NAMED_HOOKS_UNFIT',
  );
  const health = named.health();
  assert.equal(health.status, 'unfit');
  assert.match(health.status === 'unfit' ? (health.problems[0] ?? '') : '', /^bindings\[b1\]\.hook: /);
});
