import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { isCloudEventSource } from '../../../src/hooks/formats/cloudevents.ts';
import { formatEvent } from '../../../src/hooks/formats/index.ts';
import {
  amqpCloudEventProperties,
  cloudEventEnvironment,
  httpCloudEventHeaders,
  kafkaCloudEventHeaders,
  percentDecodeHeaderValue,
  percentEncodeHeaderValue,
} from '../../../src/hooks/transports/cloudevents-bindings.ts';
import { verifyWebhook } from '../../../src/hooks/transports/webhook-signature.ts';
import { captureLogger, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

const eventId = '0b6f6c1e-58d6-4c3e-9d0e-2f1a7d0c9a11';
const event = sampleEvent('post-finish', {
  endpoint: '/files',
  request: { ...sampleEvent().request, origin: 'https://files.example.com' },
});

describe('HTTP binding percent-encoding', () => {
  test('printable ASCII stays, space, quote, percent and non-ASCII become UTF-8 %xy', () => {
    assert.equal(percentEncodeHeaderValue('io.wharf.upload.post-finish'), 'io.wharf.upload.post-finish');
    assert.equal(percentEncodeHeaderValue('https://h/files/?a=b&c'), 'https://h/files/?a=b&c');
    assert.equal(percentEncodeHeaderValue('a b"c%d'), 'a%20b%22c%25d');
    assert.equal(percentEncodeHeaderValue('café ☕ 😀'), 'caf%C3%A9%20%E2%98%95%20%F0%9F%98%80');
    assert.equal(percentEncodeHeaderValue('tab\there\u007f'), 'tab%09here%7F');
  });

  test('decoding gives back the value', () => {
    for (const value of ['a b"c%d', 'café ☕ 😀', 'plain', '%41']) {
      assert.equal(percentDecodeHeaderValue(percentEncodeHeaderValue(value)), value);
    }
  });
});

describe('the cloudevents format', () => {
  test('structured: the whole event as JSON with data = the upload and the request', () => {
    const formatted = formatEvent('cloudevents', event, { eventId });
    assert.deepEqual(formatted.cloudEvent, { mode: 'structured' });
    const body = JSON.parse(formatted.payload) as Record<string, unknown>;
    const { time, data, ...attributes } = body;
    assert.deepEqual(attributes, {
      specversion: '1.0',
      id: eventId,
      source: 'https://files.example.com/files/',
      type: 'io.wharf.upload.post-finish',
      subject: event.upload.id,
      datacontenttype: 'application/json',
    });
    assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.deepEqual(Object.keys(data as object), ['request', 'upload']);
    assert.equal((data as { upload: { id: string } }).upload.id, event.upload.id);
    assert.equal((data as { request: { uri: string } }).request.uri, '/files/');
  });

  test('binary: data is the body, attributes (without datacontenttype) go to the envelope', () => {
    const formatted = formatEvent(
      'cloudevents',
      event,
      { eventId, cloudEvents: { mode: 'binary', source: 'urn:wharf:test' } },
      { hook: { name: 'notify' } },
    );
    const data = JSON.parse(formatted.payload) as Record<string, unknown>;
    assert.deepEqual(Object.keys(data), ['request', 'upload', 'hook']);
    assert.equal(formatted.cloudEvent?.mode, 'binary');
    const attributes = formatted.cloudEvent?.mode === 'binary' ? formatted.cloudEvent.attributes : {};
    assert.deepEqual(Object.keys(attributes).sort(), [
      'id',
      'source',
      'specversion',
      'subject',
      'time',
      'type',
    ]);
    assert.equal(attributes.source, 'urn:wharf:test');
  });

  test('without a request origin the source is the endpoint path', () => {
    const swept = sampleEvent('post-terminate', { endpoint: '/files' });
    const body = JSON.parse(formatEvent('cloudevents', swept, { eventId }).payload) as { source: string };
    assert.equal(body.source, '/files/');
  });

  test('other formats are unchanged; extra fields go at the top', () => {
    const formatted = formatEvent('v2', event, { eventId }, { hook: { name: 'x' } });
    assert.equal(formatted.cloudEvent, undefined);
    assert.deepEqual(Object.keys(JSON.parse(formatted.payload) as object), ['request', 'upload', 'hook']);
  });

  test('sources: absolute URIs and paths', () => {
    for (const good of [
      'https://files.example.com/files/',
      'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
      '/files',
    ])
      assert.ok(isCloudEventSource(good), good);
    for (const bad of ['', 'files', 'https://a b/', 'relative/path'])
      assert.ok(!isCloudEventSource(bad), bad);
  });
});

describe('bindings', () => {
  const binary = {
    mode: 'binary' as const,
    attributes: { specversion: '1.0', id: 'e1', source: 'https://h/files/', type: 't', subject: 'u 1' },
  };

  test('HTTP', () => {
    assert.deepEqual(httpCloudEventHeaders({ mode: 'structured' }), {
      'Content-Type': 'application/cloudevents+json; charset=UTF-8',
    });
    assert.deepEqual(httpCloudEventHeaders(binary), {
      'Content-Type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': 'e1',
      'ce-source': 'https://h/files/',
      'ce-type': 't',
      'ce-subject': 'u%201',
    });
  });

  test('AMQP', () => {
    assert.deepEqual(amqpCloudEventProperties({ mode: 'structured' }), {
      contentType: 'application/cloudevents+json',
      headers: {},
    });
    assert.deepEqual(amqpCloudEventProperties(binary), {
      contentType: 'application/json',
      headers: {
        cloudEvents_specversion: '1.0',
        cloudEvents_id: 'e1',
        cloudEvents_source: 'https://h/files/',
        cloudEvents_type: 't',
        cloudEvents_subject: 'u 1',
      },
    });
  });

  test('Kafka', () => {
    assert.deepEqual(kafkaCloudEventHeaders({ mode: 'structured' }), {
      'content-type': 'application/cloudevents+json; charset=UTF-8',
    });
    assert.deepEqual(kafkaCloudEventHeaders(binary), {
      'content-type': 'application/json',
      ce_specversion: '1.0',
      ce_id: 'e1',
      ce_source: 'https://h/files/',
      ce_type: 't',
      ce_subject: 'u 1',
    });
  });

  test('executables get binary attributes as CE_* variables', () => {
    assert.deepEqual(cloudEventEnvironment({ mode: 'structured' }), {});
    assert.equal(cloudEventEnvironment(binary).CE_SUBJECT, 'u 1');
  });
});

describe('the engine with cloudevents', () => {
  test('a named http hook in binary mode: ce-* headers, data with its hook section, signed', async (t) => {
    const server = await startHookServer(t);
    const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    const engine = createHookEngine(
      hooksConfig({ cloudEvents: { mode: 'binary' } }),
      captureLogger().logger,
      {
        pipeline: {
          hooks: [
            {
              name: 'notify',
              transport: 'http',
              url: server.url,
              secrets: [secret],
              format: 'cloudevents',
              retries: 0,
              runOn: 'success',
              args: { channel: 'uploads' },
            },
          ],
          bindings: [{ hook: 'notify', endpoint: '/files', events: ['post-finish'], args: {} }],
        },
      },
    );
    t.after(() => engine.close());
    engine.emit(event);
    const request = await server.nthRequest(1);
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['ce-type'], 'io.wharf.upload.post-finish');
    assert.equal(request.headers['ce-source'], 'https://files.example.com/files/');
    assert.equal(request.headers['ce-subject'], event.upload.id);
    assert.equal(request.headers['ce-id'], request.headers['idempotency-key']);
    const data = verifyWebhook<{ hook: { name: string; args: unknown } }>({
      payload: request.body,
      headers: request.headers,
      secrets: secret,
    });
    assert.deepEqual(data.hook.args, { channel: 'uploads' });
    assert.equal(data.hook.name, 'notify');
  });
});
