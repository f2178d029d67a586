import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PipelineConfig } from '../../../src/hooks/chain/pipeline.ts';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { amqpUrl } from '../../support/brokers.ts';
import { eventually } from '../../support/eventually.ts';
import { tcpProxy } from '../../support/tcp-proxy.ts';
import { amqpTestConfig, captureLogger, hooksConfig, sampleEvent } from './fixtures.ts';
import { keptAliveTarget as target } from './kept-alive-target.ts';

const http = (name: string, url: string) =>
  ({ name, transport: 'http', url, retries: 0, runOn: 'success', args: {} }) as const;

/** `gate`: a blocking pre-create hook; `audit`: a post-create hook, delivered through the outbox. */
function pipeline(gateUrl: string, auditUrl: string): PipelineConfig {
  return {
    hooks: [http('gate', gateUrl), http('audit', auditUrl)],
    bindings: [
      { hook: 'gate', endpoint: '/files', events: ['pre-create'], args: {} },
      { hook: 'audit', endpoint: '/files', events: ['post-create'], args: {} },
    ],
  };
}

const preCreate = () => sampleEvent('pre-create', { endpoint: '/files' });
const postCreate = () => sampleEvent('post-create', { endpoint: '/files' });

test('replaced named hooks let go of their kept-alive connections once their deliveries in flight end; unchanged ones keep theirs', async (t) => {
  const [old, fresh, posted, moved] = [await target(t), await target(t), await target(t), await target(t)];
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig(), logger, { pipeline: pipeline(old.url, posted.url) });
  t.after(() => engine.close());

  // Two blocking runs at once: two connections to the gate, idle and kept after them.
  const first = await Promise.all([engine.runBlocking(preCreate()), engine.runBlocking(preCreate())]);
  assert.deepEqual(
    first.map((outcome) => outcome.kind),
    ['continue', 'continue'],
  );
  engine.emit(postCreate());
  await eventually(() => (posted.requests() === 1 ? true : undefined), 'the post-create');
  assert.equal(old.open(), 2, 'positive control: the gate keeps its connections');
  assert.equal(posted.open(), 1);

  // A run of the old set in flight (the gate holds its answer) when the gate moves to another URL.
  const oldSet = engine.hookSet;
  const held = old.hold();
  const inFlight = engine.runBlocking(preCreate(), oldSet);
  await held;
  engine.replaceNamedHooks(pipeline(fresh.url, posted.url));
  // The idle connection closes at once; the one in use stays until its delivery ends, which is delivered.
  await eventually(() => (old.open() === 1 ? true : undefined), 'the idle connection of the old gate closed');
  old.release();
  assert.equal((await inFlight).kind, 'continue');
  assert.equal(old.requests(), 3);
  await eventually(
    () => (old.open() === 0 ? true : undefined),
    'the old gate connection closed after its run',
  );

  // A request that started with the old set still runs it, on a connection that is not kept.
  assert.equal((await engine.runBlocking(preCreate(), oldSet)).kind, 'continue');
  assert.equal(old.requests(), 4);
  await eventually(
    () => (old.open() === 0 ? true : undefined),
    'the late run of the old set left nothing open',
  );

  // The new set keeps its connections; the unchanged audit binding keeps its outbox target and its connection.
  for (let round = 0; round < 2; round++) {
    assert.equal((await engine.runBlocking(preCreate())).kind, 'continue');
    engine.emit(postCreate());
  }
  await eventually(() => (posted.requests() === 3 ? true : undefined), 'the post-create events after');
  assert.equal(fresh.requests(), 2);
  assert.deepEqual([fresh.open(), fresh.connections()], [1, 1], 'the new gate: one kept connection');
  assert.deepEqual([posted.open(), posted.connections()], [1, 1], 'audit: still its first connection');

  // audit moves (a new outbox target), then comes back (its first target, and transport, again).
  engine.replaceNamedHooks(pipeline(fresh.url, moved.url));
  engine.emit(postCreate());
  await eventually(() => (moved.requests() === 1 ? true : undefined), 'the post-create at the moved audit');
  await eventually(() => (posted.open() === 0 ? true : undefined), "the first audit's connection closed");
  engine.replaceNamedHooks(pipeline(fresh.url, posted.url));
  await eventually(() => (moved.open() === 0 ? true : undefined), "the moved audit's connection closed");
  for (let round = 0; round < 2; round++) {
    engine.emit(postCreate());
    await eventually(() => (posted.requests() === 4 + round ? true : undefined), 'the post-create back');
  }
  // Kept again: both events on one new connection, still open.
  assert.deepEqual([posted.open(), posted.connections()], [1, 2]);
});

/** A named AMQP hook through `url`: the default exchange and no declarations (nothing changes on the broker). */
const bus = (url: string, queuesPrefix: string) =>
  ({
    name: 'bus',
    transport: 'amqp',
    retries: 0,
    runOn: 'success',
    args: {},
    amqp: amqpTestConfig(url, queuesPrefix, 5000),
  }) as const;

/** `gate` (blocking http), `bus` (amqp, post-create) and `extra`, whose args a change alters alone. */
function withBroker(gateUrl: string, busUrl: string, prefix: string, extra: string): PipelineConfig {
  return {
    hooks: [http('gate', gateUrl), bus(busUrl, prefix)],
    bindings: [
      { hook: 'gate', endpoint: '/files', events: ['pre-create'], args: {} },
      { hook: 'bus', endpoint: '/files', events: ['post-create'], args: {} },
      { hook: 'gate', endpoint: '/files', events: ['pre-terminate'], args: { extra } },
    ],
  };
}

test('a replacement keeps the transports (and connections) of hooks whose declaration did not change', async (t) => {
  const gate = await target(t);
  const broker = await tcpProxy(amqpUrl, 5672);
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig(), logger, {
    pipeline: withBroker(gate.url, broker.url, 'wharf-replaced-test', 'one'),
  });
  // The engine first, while the broker still answers its close (after hooks run in the order they were added).
  t.after(() => engine.close());
  t.after(() => broker.close());
  const delivered = (count: number) =>
    eventually(
      () =>
        engine.runs.records().filter((run) => run.target.startsWith('amqp:')).length === count
          ? true
          : undefined,
      `${count} AMQP deliveries`,
    );
  assert.equal((await engine.runBlocking(preCreate())).kind, 'continue');
  engine.emit(postCreate());
  await delivered(1);
  assert.deepEqual([gate.connections(), broker.connections()], [1, 1], 'positive control: one each');

  // Only a binding's args change (as each admin API write replaces the whole set): gate and bus are unchanged.
  for (const [round, extra] of ['two', 'three'].entries()) {
    engine.replaceNamedHooks(withBroker(gate.url, broker.url, 'wharf-replaced-test', extra));
    assert.equal((await engine.runBlocking(preCreate())).kind, 'continue');
    engine.emit(postCreate());
    await delivered(round + 2);
  }
  assert.equal(gate.requests(), 3);
  assert.deepEqual([gate.connections(), gate.open()], [1, 1], 'the gate: still its first connection');
  assert.deepEqual([broker.connections(), broker.open()], [1, 1], 'the bus: still its first connection');
  assert.deepEqual(
    engine.runs.records().map((run) => run.status),
    ['completed', 'completed', 'completed', 'completed', 'completed', 'completed'],
  );
});

test('a replaced broker hook closes its connection once nothing delivers through it', async (t) => {
  const gate = await target(t);
  const broker = await tcpProxy(amqpUrl, 5672);
  const { logger } = captureLogger();
  const engine = createHookEngine(hooksConfig(), logger, {
    pipeline: withBroker(gate.url, broker.url, 'wharf-replaced-a', 'one'),
  });
  t.after(() => engine.close());
  t.after(() => broker.close());
  const amqpRuns = () => engine.runs.records().filter((run) => run.target.startsWith('amqp:'));
  engine.emit(postCreate());
  await eventually(() => (amqpRuns().length === 1 ? true : undefined), 'the first AMQP delivery');
  assert.equal(broker.open(), 1);

  // bus changes (another queue prefix): a new transport; the old one's outbox target stays for its stored events.
  engine.replaceNamedHooks(withBroker(gate.url, broker.url, 'wharf-replaced-b', 'one'));
  engine.emit(postCreate());
  await eventually(() => (amqpRuns().length === 2 ? true : undefined), 'the AMQP delivery of the new bus');
  assert.equal(broker.connections(), 2, 'the new bus has a connection of its own');
  await eventually(() => (broker.open() === 1 ? true : undefined), "the old bus's connection closed");
  assert.deepEqual(
    amqpRuns().map((run) => run.status),
    ['completed', 'completed'],
  );
});
