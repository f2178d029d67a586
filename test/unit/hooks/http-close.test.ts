import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { eventually } from '../../support/eventually.ts';
import { captureLogger, hooksConfig, sampleEvent } from './fixtures.ts';
import { keptAliveTarget as target } from './kept-alive-target.ts';

test('closing the hook engine closes the kept-alive connections of its HTTP targets', async (t) => {
  // One target of each kind: a --hooks-http-urls URL, a named hook, a target added at run time (admin API).
  const [flag, named, added] = [await target(t), await target(t), await target(t)];
  const engine = createHookEngine(hooksConfig({ httpUrls: [flag.url] }), captureLogger().logger, {
    pipeline: {
      hooks: [{ name: 'named', transport: 'http', url: named.url, retries: 0, runOn: 'success', args: {} }],
      bindings: [{ hook: 'named', endpoint: '/files', events: ['pre-create'], args: {} }],
    },
  });
  let closed = false;
  t.after(() => (closed ? undefined : engine.close()));
  engine.delivery.addHttpTarget({ url: added.url, events: ['post-create'] });
  for (let round = 0; round < 2; round++) {
    assert.equal(
      (await engine.runBlocking(sampleEvent('pre-create', { endpoint: '/files' }))).kind,
      'continue',
    );
    engine.emit(sampleEvent('post-create', { endpoint: '/files' }));
    // The --hooks-http-urls target gets every event: pre-create and post-create.
    await eventually(
      () => (added.requests() === round + 1 && flag.requests() === 2 * (round + 1) ? true : undefined),
      'the post-create event',
    );
  }
  // Positive control: each target got its events on one connection, still open between them and after.
  assert.deepEqual([flag.requests(), named.requests(), added.requests()], [4, 2, 2]);
  for (const [name, each] of Object.entries({ flag, named, added })) {
    assert.equal(each.open(), 1, `${name}: one connection open`);
  }
  closed = true;
  await engine.close();
  for (const [name, each] of Object.entries({ flag, named, added })) {
    await eventually(() => (each.open() === 0 ? true : undefined), `${name}: its connection closed`);
  }
});
