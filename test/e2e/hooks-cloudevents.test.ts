import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { ConsumeMessage } from 'amqplib';
import { percentDecodeHeaderValue } from 'wharf-uploads/webhooks';
import {
  type AmqpPeer,
  amqpPeer,
  amqpUrl,
  type KafkaRecord,
  kafkaBrokers,
  kafkaConsumer,
  takeMessages,
} from '../support/brokers.ts';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { HookReceiver, type ReceivedHook } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { scratchCwd, startWharf, wharfBin } from '../support/wharf-process.ts';

/** The events these tests enable: one blocking, two post events (pre-create reaches brokers once it passed). */
const events = ['pre-create', 'post-create', 'post-finish'] as const;

/** CloudEvents 1.0 §3.1.1: attribute names are lowercase letters and digits, and SHOULD be at most 20 long. */
const attributeName = /^[a-z0-9]{1,20}$/;
/** RFC 3339 date-time (the `time` attribute's type, CloudEvents 1.0 §2 "Timestamp"). */
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface Expected {
  readonly uploadId: string;
  readonly source: string;
  /** When the test ran: `time` must fall in it. */
  readonly from: number;
  readonly to: number;
}

/**
 * Checks one event's context attributes against CloudEvents 1.0: the required ones (id, source, specversion,
 * type) present, non-empty strings, specversion "1.0"; the optional ones Wharf sets typed as the spec says;
 * names valid. Returns the event's name (from `type`).
 */
function checkAttributes(attributes: Record<string, unknown>, expected: Expected): string {
  for (const name of Object.keys(attributes)) assert.match(name, attributeName, `attribute name ${name}`);
  for (const required of ['id', 'source', 'specversion', 'type']) {
    assert.equal(typeof attributes[required], 'string', `${required} is a String`);
    assert.notEqual(attributes[required], '', `${required} is not empty`);
  }
  assert.equal(attributes.specversion, '1.0');
  assert.match(String(attributes.id), /^[0-9a-f-]{36}$/);
  assert.equal(attributes.source, expected.source);
  const type = String(attributes.type);
  assert.match(type, /^io\.wharf\.upload\.(pre|post)-[a-z]+$/);
  const event = type.slice('io.wharf.upload.'.length);
  assert.ok((events as readonly string[]).includes(event), `type ${type}`);
  assert.equal(attributes.subject, expected.uploadId);
  const time = String(attributes.time);
  assert.match(time, rfc3339);
  const at = Date.parse(time);
  assert.ok(
    at >= expected.from - 1000 && at <= expected.to + 1000,
    `time ${time} is when the event happened`,
  );
  return event;
}

/** `data`: the upload and the request as in the v2 format (its published JSON schema). */
function checkData(data: unknown, uploadId: string, event: string): void {
  assert.deepEqual(hookSchemaErrors('v2', data), [], event);
  const { upload, request } = data as {
    upload: { id: string; metadata: Record<string, string> };
    request: { uri: string };
  };
  assert.equal(upload.id, uploadId);
  assert.equal(upload.metadata.filename, 'cloud.txt');
  assert.match(request.uri, /^\/files\//);
}

async function oneUpload(endpoint: string): Promise<string> {
  const body = 'cloudevents!';
  const url = await createUpload(endpoint, {
    'Upload-Length': body.length,
    'Upload-Metadata': `filename ${Buffer.from('cloud.txt').toString('base64')}`,
  });
  const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body });
  assert.equal(reply.status, 204, reply.text);
  return url.split('/').pop() ?? '';
}

/** What one event looked like on each transport, by event name. */
interface Seen {
  readonly http: Map<string, ReceivedHook>;
  readonly amqp: Map<string, ConsumeMessage>;
  readonly kafka: Map<string, KafkaRecord>;
  readonly expected: Expected;
}

/** Starts Wharf with HTTP, AMQP and Kafka targets in one CloudEvents mode and collects one upload's events. */
async function deliverOneUpload(
  receiver: HookReceiver,
  peer: AmqpPeer,
  extraArgs: readonly string[],
  source?: string,
): Promise<Seen> {
  const tag = `wharf-ce-${randomUUID().slice(0, 8)}`;
  const consumer = await kafkaConsumer([tag]);
  const wharf = await startWharf({
    args: [
      '--hooks',
      events.join(','),
      '--hooks-format',
      'cloudevents',
      '--hooks-http-urls',
      receiver.url,
      '--hooks-amqp-url',
      amqpUrl,
      '--hooks-amqp-exchange',
      tag,
      '--hooks-amqp-routing-key',
      tag,
      '--hooks-amqp-declare-exchange',
      '--hooks-amqp-declare-queues',
      '--hooks-kafka-urls',
      kafkaBrokers.join(','),
      '--hooks-kafka-topic',
      tag,
      ...extraArgs,
    ],
  });
  const from = Date.now();
  try {
    const uploadId = await oneUpload(wharf.endpoint);
    const http = await receiver.waitForNames(uploadId, [...events]);
    const messages = await takeMessages(peer.connection, tag, events.length);
    const records = await consumer.take(events.length);
    const to = Date.now();
    return {
      http: new Map(http.map((hook) => [hook.name, hook])),
      amqp: new Map(messages.map((message) => [String(message.properties.type), message])),
      kafka: new Map(records.map((record) => [record.headers['hook-name'] ?? '', record])),
      expected: { uploadId, source: source ?? wharf.endpoint, from, to },
    };
  } finally {
    await wharf.stop();
    await consumer.close();
    await peer.channel.deleteQueue(tag).catch(() => {});
    await peer.channel.deleteExchange(tag).catch(() => {});
  }
}

const receiver = new HookReceiver();
let peer: AmqpPeer;
before(async () => {
  await receiver.start();
  peer = await amqpPeer();
});
after(async () => {
  await receiver.close();
  await peer.close();
});

describe('CloudEvents structured mode (default) over HTTP, AMQP and Kafka', () => {
  let seen: Seen;
  before(async () => {
    seen = await deliverOneUpload(receiver, peer, []);
  });

  it('HTTP: the body is the event (JSON format), Content-Type application/cloudevents+json', () => {
    for (const name of events) {
      const hook = seen.http.get(name);
      assert.ok(hook, name);
      assert.equal(hook.headers['content-type'], 'application/cloudevents+json; charset=UTF-8');
      const { data, datacontenttype, ...attributes } = hook.payload;
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(datacontenttype, 'application/json');
      assert.equal(attributes.id, hook.headers['idempotency-key'], 'id is the event id');
      assert.equal(hook.headers['ce-id'], undefined, 'no binary-mode headers');
      checkData(data, seen.expected.uploadId, name);
    }
  });

  it('AMQP: the body is the event, content-type application/cloudevents+json; same id as over HTTP', () => {
    for (const name of events) {
      const message = seen.amqp.get(name);
      assert.ok(message, name);
      assert.equal(message.properties.contentType, 'application/cloudevents+json');
      const event = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
      const { data, datacontenttype: _type, ...attributes } = event;
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(attributes.id, message.properties.messageId);
      assert.equal(attributes.id, seen.http.get(name)?.payload.id, 'one event, one id on every transport');
      assert.deepEqual(event, seen.http.get(name)?.payload, 'the same event as over HTTP');
      // Post events carry their upload's event number (docs/hooks.md, "Order"); pre-* events do not.
      assert.deepEqual(
        Object.keys(message.properties.headers ?? {}),
        name.startsWith('post-') ? ['upload-sequence'] : [],
      );
      checkData(data, seen.expected.uploadId, name);
    }
  });

  it('Kafka: the value is the event, header content-type application/cloudevents+json', () => {
    for (const name of events) {
      const record = seen.kafka.get(name);
      assert.ok(record, name);
      assert.equal(record.headers['content-type'], 'application/cloudevents+json; charset=UTF-8');
      assert.equal(record.key, seen.expected.uploadId);
      const event = JSON.parse(record.value) as Record<string, unknown>;
      const { data, datacontenttype: _type, ...attributes } = event;
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(attributes.id, record.headers['event-id']);
      assert.deepEqual(event, seen.http.get(name)?.payload);
      assert.equal(
        Object.keys(record.headers).filter((header) => header.startsWith('ce_')).length,
        0,
        'no binary-mode headers',
      );
      checkData(data, seen.expected.uploadId, name);
    }
  });
});

describe('CloudEvents binary mode over HTTP, AMQP and Kafka', () => {
  // A `%` in the source shows the HTTP binding's percent-encoding on the wire.
  const source = 'urn:wharf:caf%C3%A9-uploads';
  let seen: Seen;
  before(async () => {
    seen = await deliverOneUpload(
      receiver,
      peer,
      ['--hooks-cloudevents-mode', 'binary', '--hooks-cloudevents-source', source],
      source,
    );
  });

  it('HTTP: the body is data, Content-Type application/json, attributes in percent-encoded ce-* headers', () => {
    for (const name of events) {
      const hook = seen.http.get(name);
      assert.ok(hook, name);
      assert.equal(hook.headers['content-type'], 'application/json');
      assert.equal(
        hook.headers['ce-datacontenttype'],
        undefined,
        'Content-Type says it; ce-datacontenttype MUST NOT',
      );
      assert.equal(hook.headers['ce-source'], 'urn:wharf:caf%25C3%25A9-uploads', 'a % is sent as %25');
      const attributes: Record<string, string> = {};
      for (const [header, value] of Object.entries(hook.headers)) {
        if (header.startsWith('ce-')) attributes[header.slice(3)] = percentDecodeHeaderValue(String(value));
      }
      assert.deepEqual(Object.keys(attributes).sort(), [
        'id',
        'source',
        'specversion',
        'subject',
        'time',
        'type',
        ...(name.startsWith('post-') ? ['uploadsequence'] : []),
      ]);
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(attributes.id, hook.headers['idempotency-key']);
      checkData(hook.payload, seen.expected.uploadId, name);
    }
  });

  it('AMQP: the body is data, content-type application/json, attributes in cloudEvents_* headers', () => {
    for (const name of events) {
      const message = seen.amqp.get(name);
      assert.ok(message, name);
      assert.equal(message.properties.contentType, 'application/json');
      const attributes: Record<string, unknown> = {};
      for (const [header, value] of Object.entries(message.properties.headers ?? {})) {
        if (header === 'upload-sequence') continue;
        assert.match(header, /^cloudEvents_/);
        attributes[header.slice('cloudEvents_'.length)] = value;
      }
      assert.equal(attributes.datacontenttype, undefined);
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(attributes.id, message.properties.messageId);
      assert.equal(attributes.id, seen.http.get(name)?.headers['ce-id']);
      checkData(JSON.parse(message.content.toString('utf8')), seen.expected.uploadId, name);
    }
  });

  it('Kafka: the value is data, header content-type application/json, attributes in ce_* headers', () => {
    for (const name of events) {
      const record = seen.kafka.get(name);
      assert.ok(record, name);
      assert.equal(record.headers['content-type'], 'application/json');
      const attributes: Record<string, string> = {};
      for (const [header, value] of Object.entries(record.headers)) {
        if (header.startsWith('ce_')) attributes[header.slice(3)] = value;
      }
      assert.deepEqual(Object.keys(attributes).sort(), [
        'id',
        'source',
        'specversion',
        'subject',
        'time',
        'type',
        ...(name.startsWith('post-') ? ['uploadsequence'] : []),
      ]);
      assert.equal(checkAttributes(attributes, seen.expected), name);
      assert.equal(attributes.id, record.headers['event-id']);
      assert.equal(attributes.id, seen.http.get(name)?.headers['ce-id']);
      checkData(JSON.parse(record.value), seen.expected.uploadId, name);
    }
  });
});

describe('CloudEvents options', () => {
  it('refuses a source that is not a URI-reference (exit code 2)', async () => {
    const failed = await promisify(execFile)(
      process.execPath,
      [wharfBin, '--hooks-format', 'cloudevents', '--hooks-cloudevents-source', 'not a uri'],
      { cwd: scratchCwd },
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed?.code, 2);
    assert.match(
      failed?.stderr ?? '',
      /--hooks-cloudevents-source: expected an absolute URI or an absolute path/,
    );
  });
});
