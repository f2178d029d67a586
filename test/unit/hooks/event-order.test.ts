import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { Outbox } from '../../../src/hooks/delivery/outbox.ts';
import { PostgresOutboxStore } from '../../../src/hooks/delivery/outbox-postgres-store.ts';
import { RedisOutboxStore } from '../../../src/hooks/delivery/outbox-redis-store.ts';
import type { OutboxStore, SharedOrder } from '../../../src/hooks/delivery/outbox-store.ts';
import { formatEvent, formatPayload, rustusHookFormatNames } from '../../../src/hooks/formats/index.ts';
import { type AmqpHooksConfig, amqpMessage } from '../../../src/hooks/transports/amqp.ts';
import {
  amqpCloudEventProperties,
  kafkaCloudEventHeaders,
} from '../../../src/hooks/transports/cloudevents-bindings.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';
import { hookSchemaErrors } from '../../support/hook-payload-validator.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';
import { captureLogger, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('the upload sequence number in payloads and headers', () => {
  const numbered = sampleEvent('post-receive', { sequence: 7 });

  test('default and v2 carry `sequence`, tusd `Sequence`, at the top level; rustus schemas still accept them', () => {
    for (const format of rustusHookFormatNames) {
      const payload = JSON.parse(formatPayload(format, numbered)) as Record<string, unknown>;
      assert.equal(payload[format === 'tusd' ? 'Sequence' : 'sequence'], 7, format);
      // The schemas have no `additionalProperties: false` at the top: an extra field is allowed.
      assert.deepEqual(hookSchemaErrors(format, payload), [], format);
      // An event without a number (pre-* events) has no field at all.
      const unnumbered = JSON.parse(formatPayload(format, sampleEvent('pre-create'))) as object;
      assert.equal('sequence' in unnumbered || 'Sequence' in unnumbered, false, format);
    }
  });

  test('CloudEvents: the `uploadsequence` extension attribute, an Integer in structured mode, text in binary headers', () => {
    const structured = formatEvent('cloudevents', numbered, { eventId: 'e1' });
    const event = JSON.parse(structured.payload) as Record<string, unknown>;
    assert.equal(event.uploadsequence, 7);
    const binary = formatEvent('cloudevents', numbered, {
      eventId: 'e1',
      cloudEvents: { mode: 'binary' },
    });
    assert.equal(binary.cloudEvent?.mode, 'binary');
    if (binary.cloudEvent?.mode !== 'binary') return;
    assert.equal(binary.cloudEvent.attributes.uploadsequence, '7');
    assert.equal(kafkaCloudEventHeaders(binary.cloudEvent).ce_uploadsequence, '7');
    assert.equal(amqpCloudEventProperties(binary.cloudEvent).headers.cloudEvents_uploadsequence, '7');
    const pre = JSON.parse(formatEvent('cloudevents', sampleEvent('pre-create'), { eventId: 'e2' }).payload);
    assert.equal('uploadsequence' in pre, false);
  });

  test('AMQP messages carry an `upload-sequence` header', () => {
    const config: AmqpHooksConfig = {
      url: 'amqp://localhost:5672',
      exchange: 'rustus',
      exchangeKind: 'topic',
      routingKey: undefined,
      queuesPrefix: 'rustus',
      declareExchange: false,
      declareQueues: false,
      durableExchange: false,
      durableQueues: false,
      autoDelete: false,
      celery: false,
      connectionPoolSize: 1,
      channelPoolSize: 1,
      idleConnectionTimeoutMs: undefined,
      idleChannelsTimeoutMs: undefined,
      publishTimeoutMs: 1000,
    };
    const message = amqpMessage(config, delivery('u', 3));
    assert.equal(message.properties.headers?.['upload-sequence'], 3);
  });

  test('one process numbers each upload`s post events 1, 2, 3 on its own', async (t) => {
    const server = await startHookServer(t);
    const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
    t.after(() => engine.close());
    const other = { ...sampleEvent().upload, id: 'another-upload' };
    engine.emit(sampleEvent('post-create'));
    engine.emit(sampleEvent('post-create', { upload: other }));
    engine.emit(sampleEvent('post-receive'));
    engine.emit(sampleEvent('post-finish'));
    await engine.drain(5000);
    const numbers = (id: string) =>
      server.requests
        .map((request) => JSON.parse(request.body) as { upload: { id: string }; sequence: number })
        .filter((payload) => payload.upload.id === id)
        .map((payload) => payload.sequence)
        .sort();
    assert.deepEqual(numbers(sampleEvent().upload.id), [1, 2, 3]);
    assert.deepEqual(numbers('another-upload'), [1]);
  });
});

function delivery(uploadId: string, sequence: number): HookDelivery {
  return {
    eventId: `${uploadId}-${sequence}`,
    event: 'post-receive',
    hook: 'post-receive',
    uploadId,
    sequence,
    payload: JSON.stringify({ sequence }),
    request: { uri: '/files/', method: 'PATCH', remoteAddr: null, headers: {} },
    signal: new AbortController().signal,
  };
}

/** The one receiver both instances send to: it keeps the numbers in the order it accepted them. */
function receiver(): HookTransport & { accepted: number[] } {
  return {
    accepted: [],
    describe: () => 'test',
    async deliver(sent): Promise<DeliveryResult> {
      this.accepted.push(sent.sequence ?? 0);
      return { kind: 'delivered' };
    },
  };
}

interface Place {
  /** Another instance's view of the shared store. */
  store(): OutboxStore & SharedOrder;
  cleanup(): Promise<void>;
}

// Long enough that a loaded machine never lets a live instance's lease lapse (a takeover is not what these tests are about).
const leaseMs = 2_000;

async function redisPlace(): Promise<Place> {
  const backend = new RedisBackend(redisUrl);
  const keyPrefix = `wharf-test-${randomBytes(4).toString('hex')}:`;
  return {
    store: () => new RedisOutboxStore(backend, { leaseMs, keyPrefix }),
    cleanup: async () => {
      const client = await backend.client();
      const keys = await client.keys(`${keyPrefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await backend.close();
    },
  };
}

async function postgresPlace(): Promise<Place> {
  const schema = `wharf_order_unit_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const backend = new PostgresBackend(
    `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
  );
  return {
    store: () => new PostgresOutboxStore(backend, { leaseMs }),
    cleanup: async () => {
      await backend.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

function instance(store: OutboxStore, transport: HookTransport): Outbox {
  return new Outbox(new Map([['t', transport]]), {
    store,
    limit: 1000,
    concurrency: 8,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    logger: quiet,
    signal: new AbortController().signal,
    deliver: (target, sent) => target.deliver(sent),
  });
}

// Every test below at once: each has its own store (key prefix or schema), instances and upload.
describe('shared outboxes', { concurrency: true }, () => {
  for (const [name, setup] of [
    ['Redis', redisPlace],
    ['PostgreSQL', postgresPlace],
  ] as const) {
    describe(`two instances sharing a ${name} outbox`, () => {
      test('a later event waits while an earlier one of its upload is counted on the other instance but not yet stored', async () => {
        const place = await setup();
        const a = place.store();
        const b = place.store();
        const transport = receiver();
        const first = instance(a, transport);
        const second = instance(b, transport);
        try {
          await Promise.all([first.ready(), second.ready()]);
          const upload = `u-${randomBytes(4).toString('hex')}`;
          // A counts event 1 (the request answered), B then counts and stores event 2 at once.
          assert.equal(await a.nextSequence(upload), 1);
          assert.equal(await b.nextSequence(upload), 2);
          assert.equal(await second.add('t', delivery(upload, 2)), true);
          await b.settleSequence(upload, 2);
          // Time enough for B to send event 2, were it not held back.
          await new Promise((resolve) => setTimeout(resolve, 150));
          assert.equal(await first.add('t', delivery(upload, 1)), true);
          await a.settleSequence(upload, 1);
          await Promise.all([first.idle(), second.idle()]);
          assert.deepEqual(transport.accepted, [1, 2]);
        } finally {
          await Promise.all([first.close(), second.close()]);
          await place.cleanup();
        }
      });

      test('an earlier event owed by the other instance goes first, and a count whose event never came lapses', async () => {
        const place = await setup();
        const a = place.store();
        const b = place.store();
        const transport = receiver();
        const first = instance(a, transport);
        const second = instance(b, transport);
        try {
          await Promise.all([first.ready(), second.ready()]);
          const upload = `u-${randomBytes(4).toString('hex')}`;
          for (let sequence = 1; sequence <= 6; sequence++) {
            const store = sequence % 2 === 1 ? a : b;
            assert.equal(await store.nextSequence(upload), sequence);
          }
          // Stored the wrong way round: B's (2, 4, 6) first, then A's (1, 3, 5).
          for (const sequence of [6, 4, 2]) await second.add('t', delivery(upload, sequence));
          for (const sequence of [2, 4, 6]) await b.settleSequence(upload, sequence);
          await new Promise((resolve) => setTimeout(resolve, 100));
          for (const sequence of [1, 3, 5]) await first.add('t', delivery(upload, sequence));
          for (const sequence of [1, 3, 5]) await a.settleSequence(upload, sequence);
          await Promise.all([first.idle(), second.idle()]);
          assert.deepEqual(transport.accepted, [1, 2, 3, 4, 5, 6]);

          // Event 7 is counted by an instance that dies before storing it: event 8 goes once the mark lapses.
          assert.equal(await a.nextSequence(upload), 7);
          assert.equal(await b.nextSequence(upload), 8);
          await second.add('t', delivery(upload, 8));
          await b.settleSequence(upload, 8);
          await second.idle();
          assert.deepEqual(transport.accepted, [1, 2, 3, 4, 5, 6, 8]);
        } finally {
          await Promise.all([first.close(), second.close()]);
          await place.cleanup();
        }
      });
    });
  }
});

describe('one instance whose store answers slowly', () => {
  test('events added behind a head that must wait still go out in order (the head goes back to its place)', async () => {
    const place = await redisPlace();
    const store = place.store();
    // The shared order answers late, as a loaded store does: later events arrive while the first is checked.
    const isNext = store.isNext.bind(store);
    store.isNext = async (entry) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return isNext(entry);
    };
    const transport = receiver();
    const outbox = instance(store, transport);
    try {
      await outbox.ready();
      const upload = `u-${randomBytes(4).toString('hex')}`;
      for (let sequence = 1; sequence <= 3; sequence++)
        assert.equal(await store.nextSequence(upload), sequence);
      // Event 3 first: while its check is on its way, 2 and then 1 come in behind it.
      for (const sequence of [3, 2, 1]) {
        assert.equal(await outbox.add('t', delivery(upload, sequence)), true);
        await store.settleSequence(upload, sequence);
      }
      const idle = outbox.idle().then(() => 'idle' as const);
      const stuck = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 20_000).unref());
      assert.equal(
        await Promise.race([idle, stuck]),
        'idle',
        `delivered so far: ${transport.accepted.join(',')}`,
      );
      assert.deepEqual(transport.accepted, [1, 2, 3]);
    } finally {
      await outbox.close();
      await place.cleanup();
    }
  });
});
