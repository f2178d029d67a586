import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Outbox } from '../../../src/hooks/delivery/outbox.ts';
import { OutboxControl } from '../../../src/hooks/delivery/outbox-control.ts';
import { HookEngine, type HookEngineOptions } from '../../../src/hooks/engine.ts';
import type { HooksConfig } from '../../../src/hooks/engine-config.ts';
import { RunnerLink } from '../../../src/hooks/runner-link.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';
import { captureLogger, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

/** A transport built by the test: records what it is handed and accepts it. */
class RecordingTransport implements HookTransport {
  readonly delivered: string[] = [];
  constructor(readonly name: string) {}
  describe(): string {
    return `test:${this.name}`;
  }
  async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    this.delivered.push(delivery.hook);
    return { kind: 'delivered' };
  }
}

const { logger } = captureLogger();

/** Collaborators the test builds itself, none derived from a configuration. */
function partsWith(blocking: HookTransport, outboxed: HookTransport): HookEngineOptions {
  const closing = new AbortController();
  const link = new RunnerLink();
  const outbox = new Outbox(new Map([['test-outboxed', outboxed]]), {
    store: undefined,
    limit: 100,
    concurrency: 2,
    logger,
    signal: closing.signal,
    deliver: (transport, delivery, attempt) => link.deliver(transport, delivery, attempt),
  });
  const delivery = new OutboxControl(outbox, {
    httpTransport: () => {
      throw new Error('no run-time targets in this test');
    },
    deliverOnce: (transport, hookDelivery) => link.deliverOnce(transport, hookDelivery),
    signal: closing.signal,
  });
  return {
    transports: [blocking],
    brokers: [outboxed],
    outboxNames: new Map([[outboxed, 'test-outboxed']]),
    outbox,
    delivery,
    link,
    closing,
  };
}

function engineWith(config: HooksConfig, blocking: HookTransport, outboxed: HookTransport): HookEngine {
  return new HookEngine(config, logger, partsWith(blocking, outboxed));
}

test('the engine delivers to the transports it is handed, not to targets of its configuration', async (t) => {
  // The configuration names an HTTP hook: an engine that built its own transports would call it.
  const server = await startHookServer(t);
  const blocking = new RecordingTransport('blocking');
  const outboxed = new RecordingTransport('outboxed');
  const engine = engineWith(hooksConfig({ httpUrls: [server.url] }), blocking, outboxed);
  t.after(() => engine.close());

  const outcome = await engine.runBlocking(sampleEvent('pre-create'));
  assert.equal(outcome.kind, 'continue');
  engine.emit(sampleEvent('post-finish'));
  await engine.drain(5000);

  // The handed transports got the events (the outboxed one through the outbox, which reached the engine's
  // runner through the link), and the runner recorded each run.
  assert.deepEqual(blocking.delivered, ['pre-create', 'post-finish']);
  assert.deepEqual(outboxed.delivered, ['pre-create', 'post-finish']);
  assert.deepEqual(
    engine.runs
      .records()
      .map((run) => `${run.target} ${run.hook} ${run.status}`)
      .sort(),
    [
      'test:blocking post-finish completed',
      'test:blocking pre-create completed',
      'test:outboxed post-finish completed',
      'test:outboxed pre-create completed',
    ],
  );
  assert.deepEqual(engine.targetsFor('pre-create'), ['test:blocking', 'test:outboxed']);
  // The configured URL was never built into a transport, so it was never called.
  assert.equal(server.requests.length, 0);
});

test('the outbox reaches the runner only once an engine attached the link, and one engine only', async (t) => {
  const transport = new RecordingTransport('linked');
  const parts = partsWith(new RecordingTransport('blocking'), transport);
  const delivery = {
    hook: 'post-finish',
    event: 'post-finish',
    eventId: 'e1',
    uploadId: 'u1',
  } as HookDelivery;
  await assert.rejects(parts.link.deliver(transport, delivery, 1), /not attached to an engine yet/);
  assert.deepEqual(transport.delivered, []);

  const engine = new HookEngine(hooksConfig(), logger, parts);
  t.after(() => engine.close());
  assert.deepEqual(await parts.link.deliver(transport, delivery, 1), { kind: 'delivered' });
  assert.deepEqual(transport.delivered, ['post-finish']);
  assert.deepEqual(
    engine.runs.records().map((run) => `${run.target} ${run.status}`),
    ['test:linked completed'],
  );
  assert.throws(() => new HookEngine(hooksConfig(), logger, parts), /already attached/);
});
