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
  assert.deepEqual(named.health(), { status: 'unfit', problemCount: 1 });
  assert.match(String((await named.list()).problems?.[0]), /^bindings\[b1\]\.hook: /);
});

/**
 * A shared store whose next read can be held, as a pool of connections can answer an earlier query after a later
 * one (a fake: this tests RuntimeNamedHooks alone).
 */
class HeldReadStore implements NamedHooksStore {
  readonly shared = true;
  stored: StoredNamedHooks = { version: 0, document: { hooks: {}, bindings: [] } };
  holdNext = false;
  #held: (() => void) | undefined;
  async version(): Promise<number> {
    return this.stored.version;
  }
  async read(): Promise<StoredNamedHooks> {
    const snapshot = this.stored;
    if (this.holdNext) {
      this.holdNext = false;
      await new Promise<void>((resolve) => {
        this.#held = resolve;
      });
    }
    return snapshot;
  }
  async write(document: unknown, expected: number): Promise<boolean> {
    if (this.stored.version !== expected) return false;
    this.stored = { version: expected + 1, document };
    return true;
  }
  get holding(): boolean {
    return this.#held !== undefined;
  }
  release(): void {
    this.#held?.();
    this.#held = undefined;
  }
}

test('a read of the stored named hooks answered after this instance wrote a newer version does not put the older one back', async (t) => {
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig(), logger, {});
  t.after(() => engine.close());
  const store = new HeldReadStore();
  const named = new RuntimeNamedHooks({
    store,
    engine,
    file: () => file([audit]),
    endpoints: ['/files'],
    inherited: {},
    logger: createLogger('silent'),
  });
  await named.start();
  t.after(() => named.stop());
  // Another instance wrote version 1 (nothing bound). A request here starts a check, whose read is held.
  store.stored = { version: 1, document: { hooks: {}, bindings: [] } };
  store.holdNext = true;
  const request = named.pin('POST');
  for (let turn = 0; turn < 20 && !store.holding; turn++)
    await new Promise((resolve) => setImmediate(resolve));
  assert.ok(store.holding, 'the check reads version 1');
  // Meanwhile this instance binds the file's hook "audit" through the admin API (version 2) and installs it.
  await named.putBinding(undefined, { endpoint: '/files', hook: 'audit', events: ['post-finish'] });
  assert.equal(store.stored.version, 2);
  const bound = engine.hookSet.version;
  // Then the held read answers, with version 1: the set with the binding stays.
  store.release();
  await request;
  assert.equal(engine.hookSet.version, bound, 'the older version read late did not replace the newer one');
  // Positive control: a newer version from another instance is installed.
  store.stored = { version: 3, document: { hooks: {}, bindings: [] } };
  await named.pin('POST');
  assert.equal(engine.hookSet.version, bound + 1, 'version 3 is installed');
});
