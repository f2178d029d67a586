import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  type AmqpHooksConfig,
  amqpMessage,
  amqpPublishFields,
  amqpQueueNames,
  amqpRoutingKey,
  redactedUrl,
} from '../../../src/hooks/transports/amqp.ts';
import type { HookDelivery } from '../../../src/hooks/transports/types.ts';

const config: AmqpHooksConfig = {
  url: 'amqp://guest:secret@localhost:5672',
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
  connectionPoolSize: 10,
  channelPoolSize: 10,
  idleConnectionTimeoutMs: undefined,
  idleChannelsTimeoutMs: undefined,
  publishTimeoutMs: 10_000,
};

const delivery: HookDelivery = {
  eventId: '6f1c3a52-6c1e-4d7e-9a43-5b0d3b1f2a10',
  event: 'post-finish',
  hook: 'post-finish',
  uploadId: 'abc',
  payload: '{"upload":{"id":"abc"},"request":{}}',
  request: { uri: '/files/abc/', method: 'PATCH', remoteAddr: '127.0.0.1', headers: {} },
  signal: new AbortController().signal,
};

describe('AMQP messages', () => {
  test('routing keys and queues: {prefix}.{event}, or the one routing key', () => {
    assert.equal(amqpRoutingKey(config, 'pre-create'), 'rustus.pre-create');
    assert.deepEqual(amqpQueueNames({ ...config, queuesPrefix: 'p' }), [
      'p.pre-create',
      'p.post-create',
      'p.post-receive',
      'p.pre-terminate',
      'p.post-terminate',
      'p.post-finish',
      'p.pre-finish',
    ]);
    assert.equal(amqpRoutingKey({ ...config, routingKey: 'route66' }, 'pre-create'), 'route66');
    assert.deepEqual(amqpQueueNames({ ...config, routingKey: 'route66' }), ['route66']);
  });

  test('plain messages: the payload as is, JSON properties, message id = event id, persistent only when durable', () => {
    const message = amqpMessage(config, delivery);
    assert.equal(message.body.toString('utf8'), delivery.payload);
    assert.equal(message.properties.contentType, 'application/json');
    assert.equal(message.properties.contentEncoding, 'utf-8');
    assert.equal(message.properties.messageId, delivery.eventId);
    assert.equal(message.properties.deliveryMode, 1);
    assert.equal(amqpMessage({ ...config, durableQueues: true }, delivery).properties.deliveryMode, 2);
  });

  test('Celery messages follow protocol v2', () => {
    const message = amqpMessage({ ...config, celery: true, queuesPrefix: 'media' }, delivery);
    assert.deepEqual(JSON.parse(message.body.toString('utf8')), [
      [JSON.parse(delivery.payload)],
      {},
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
    const headers = message.properties.headers as Record<string, unknown>;
    assert.equal(headers.task, 'media.post-finish');
    assert.equal(headers.id, delivery.eventId);
    assert.equal(headers.root_id, delivery.eventId);
    assert.equal(headers.lang, 'py');
    assert.equal(headers.parent_id, null);
    assert.equal(headers.group, null);
    assert.equal(headers.kwargsrepr, '{}');
    assert.match(String(headers.argsrepr), /^\(\{"upload".*,\)$/);
    assert.match(String(headers.origin), /^wharf-\d+@/);
    assert.equal(message.properties.correlationId, delivery.eventId);
    assert.equal(message.properties.deliveryMode, 2);
  });

  test('the publish fields Wharf hands amqplib encode to the bytes amqplib builds from the same message', () => {
    // amqplib's own encoder and argument builder (not in its exports map: loaded by path).
    const require = createRequire(import.meta.url);
    const lib = path.join(path.dirname(require.resolve('amqplib')), 'lib');
    const defs = require(path.join(lib, 'defs.js')) as {
      BasicPublish: number;
      BasicProperties: number;
      encodeMethod(method: number, channel: number, fields: unknown): Buffer;
      encodeProperties(properties: number, channel: number, size: number, fields: unknown): Buffer;
    };
    const args = require(path.join(lib, 'api_args.js')) as {
      publish(exchange: string, routingKey: string, options: unknown): unknown;
    };
    const binary = { specversion: '1.0', id: delivery.eventId, source: '/files', type: 'post-finish' };
    const messages = [
      amqpMessage(config, delivery),
      amqpMessage({ ...config, durableQueues: true }, { ...delivery, sequence: 7 }),
      amqpMessage(config, { ...delivery, sequence: 2, cloudEvent: { mode: 'binary', attributes: binary } }),
      amqpMessage({ ...config, celery: true, queuesPrefix: 'media' }, delivery),
    ];
    for (const message of messages) {
      const theirs = args.publish('rustus', message.routingKey, message.properties);
      const ours = amqpPublishFields('rustus', message);
      assert.deepEqual(
        defs.encodeMethod(defs.BasicPublish, 3, ours),
        defs.encodeMethod(defs.BasicPublish, 3, theirs),
      );
      assert.deepEqual(
        defs.encodeProperties(defs.BasicProperties, 3, message.body.length, ours),
        defs.encodeProperties(defs.BasicProperties, 3, message.body.length, theirs),
      );
    }
  });

  test('the password never shows in target names', () => {
    assert.equal(redactedUrl(config.url), 'amqp://guest:***@localhost:5672');
    assert.ok(!redactedUrl('amqp://u:p%40ss@h/v').includes('p%40ss'));
  });
});
