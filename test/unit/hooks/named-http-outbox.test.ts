import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { NamedHookDeclaration, PipelineConfig } from '../../../src/hooks/chain/pipeline.ts';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { captureLogger, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

const secret = `whsec_${randomBytes(24).toString('base64')}`;

function httpHook(
  name: string,
  url: string,
  extra: Partial<NamedHookDeclaration> = {},
): NamedHookDeclaration {
  return { name, transport: 'http', url, retries: 0, runOn: 'success', args: {}, ...extra };
}

function pipeline(url: string): PipelineConfig {
  return {
    hooks: [
      httpHook('gate', url, { retries: 1 }),
      httpHook('notify', url, { secrets: [secret], retrySchedule: [5, 10] }),
      httpHook('plain', url),
    ],
    bindings: [
      { hook: 'gate', endpoint: '/files', events: ['pre-create'], args: {} },
      { hook: 'notify', endpoint: '/files', events: ['pre-create', 'post-finish'], args: {} },
      { hook: 'plain', endpoint: '/files', events: ['post-finish'], args: {} },
    ],
  };
}

describe('named http hooks in the outbox', () => {
  test('each binding with a post event is an http target with its own schedule; pre-only bindings are not', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(hooksConfig({ retrySchedule: [7000] }), captureLogger().logger, {
      pipeline: pipeline(server.url),
    });
    t.after(() => engine.close());
    assert.deepEqual(
      engine.delivery
        .targets()
        .map((target) => [target.name, target.kind, target.retrySchedule, target.signed]),
      [
        ['hook:notify@/files#1', 'http', [5, 10], true],
        ['hook:plain@/files#2', 'http', [7000], false],
      ],
    );
    // On a pre-* event the same hook runs blocking (not through the outbox): the answer decides at once.
    const outcome = await engine.runBlocking(sampleEvent('pre-create', { endpoint: '/files' }));
    assert.equal(outcome.kind, 'continue');
    assert.equal(server.requests.length, 2);
    assert.equal(engine.outbox.pending, 0);
  });

  test('with the HTTP outbox off, named http hooks are no outbox targets', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(hooksConfig({ httpOutbox: false }), captureLogger().logger, {
      pipeline: pipeline(server.url),
    });
    t.after(() => engine.close());
    assert.deepEqual(engine.delivery.targets(), []);
  });
});
