import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { UploadEvent } from '../../../src/hooks/events.ts';
import { formatPayload, rustusHookFormatNames } from '../../../src/hooks/formats/index.ts';
import { hookSchemaErrors } from '../../support/hook-payload-validator.ts';
import { sampleEvent } from './fixtures.ts';

type Json = Record<string, unknown>;

function payload(format: (typeof rustusHookFormatNames)[number], event: UploadEvent): Json {
  return JSON.parse(formatPayload(format, event)) as Json;
}

function object(value: unknown): Json {
  assert.equal(typeof value, 'object');
  assert.notEqual(value, null);
  return value as Json;
}

const multiValued = sampleEvent('post-receive', {
  request: {
    uri: '/files/3cd911fe-eba0-499a-b220-b1d1b947b80f/',
    method: 'PATCH',
    remoteAddr: '::1',
    headers: {
      'x-forwarded-for': ['10.0.0.1', '10.0.0.2'],
      authorization: ['Bearer secret'],
      'x-unicode': ['café ☕ 😀'],
      'x-latin1-bytes': ['\u00e9\u00ff'],
    },
  },
});

const finalUpload = sampleEvent('post-finish', {
  upload: {
    ...sampleEvent().upload,
    id: 'final',
    offset: 30,
    length: 30,
    path: '/data/final',
    isFinal: true,
    parts: ['part-a', 'part-b'],
    createdAt: 1658671969.987,
  },
});

describe('payload formats validate against the seed schemas', () => {
  for (const format of rustusHookFormatNames) {
    for (const [label, event] of [
      ['a pre-create', sampleEvent()],
      ['a PATCH with repeated and non-ASCII headers', multiValued],
      ['a final upload with parts and a path', finalUpload],
      [
        'an unknown client address',
        sampleEvent('post-create', { request: { ...sampleEvent().request, remoteAddr: null } }),
      ],
    ] as const) {
      if (format === 'tusd' && event.request.remoteAddr === null) continue; // tusd's schema requires RemoteAddr
      test(`${format}: ${label}`, () => {
        assert.deepEqual(hookSchemaErrors(format, payload(format, event)), []);
      });
    }
  }

  test('a deferred length is null, which is the one thing the seed schemas (length: int, required) reject', () => {
    const deferred = sampleEvent('post-create', {
      upload: { ...sampleEvent().upload, length: null, deferredSize: true },
    });
    for (const format of ['default', 'v2'] as const) {
      const errors = hookSchemaErrors(format, payload(format, deferred));
      assert.deepEqual(
        errors.map((error) => error.instancePath),
        ['/upload/length'],
      );
    }
    assert.deepEqual(
      hookSchemaErrors('tusd', payload('tusd', deferred)).map((error) => error.instancePath),
      ['/Upload/Size'],
    );
  });
});

describe('default and v2 field for field', () => {
  test('default carries request.URI, v2 request.uri, otherwise identical', () => {
    const event = sampleEvent();
    const defaultRequest = object(payload('default', event).request);
    const v2Request = object(payload('v2', event).request);
    assert.equal(defaultRequest.URI, '/files/');
    assert.equal('uri' in defaultRequest, false);
    assert.equal(v2Request.uri, '/files/');
    assert.equal('URI' in v2Request, false);
    const { URI: _uri, ...defaultRest } = defaultRequest;
    const { uri: _v2uri, ...v2Rest } = v2Request;
    assert.deepEqual(defaultRest, v2Rest);
    assert.deepEqual(payload('default', event).upload, payload('v2', event).upload);
  });

  test('the seed example, exactly', () => {
    assert.deepEqual(payload('v2', sampleEvent()), {
      upload: {
        id: '3cd911fe-eba0-499a-b220-b1d1b947b80f',
        offset: 0,
        length: 220,
        path: null,
        created_at: 1658671969,
        deferred_size: false,
        is_partial: false,
        is_final: false,
        parts: null,
        storage: 'file_storage',
        metadata: { filename: 'shrek2.mkv' },
      },
      request: {
        uri: '/files/',
        method: 'POST',
        remote_addr: '127.0.0.1',
        headers: {
          host: 'rustus.localhost',
          'upload-length': '220',
          'user-agent': 'curl/7.84.0',
          accept: '*/*',
          'upload-metadata': 'filename c2hyZWsyLm1rdg==',
          'tus-resumable': '1.0.0',
        },
      },
    });
  });

  test('headers are a flat map keeping the last value of each header, non-ASCII values intact', () => {
    const headers = object(object(payload('default', multiValued).request).headers);
    assert.deepEqual(headers, {
      authorization: 'Bearer secret',
      'x-forwarded-for': '10.0.0.2',
      'x-latin1-bytes': '\u00e9\u00ff',
      'x-unicode': 'café ☕ 😀',
    });
  });

  test('created_at is integer seconds; parts, path and remote_addr keep their types', () => {
    const upload = object(payload('default', finalUpload).upload);
    assert.equal(upload.created_at, 1658671969);
    assert.ok(Number.isInteger(upload.created_at));
    assert.deepEqual(upload.parts, ['part-a', 'part-b']);
    assert.equal(upload.path, '/data/final');
    assert.equal(upload.is_final, true);
    const request = object(
      payload(
        'default',
        sampleEvent('post-create', { request: { ...sampleEvent().request, remoteAddr: null } }),
      ).request,
    );
    assert.equal(request.remote_addr, null);
  });

  test('keys are emitted in sorted order, as rustus (serde_json without preserve_order) sends them', () => {
    const text = formatPayload('default', multiValued);
    assert.ok(text.startsWith('{"request":{"URI":'));
    const upload = object(JSON.parse(text).upload);
    assert.deepEqual(Object.keys(upload), [
      'created_at',
      'deferred_size',
      'id',
      'is_final',
      'is_partial',
      'length',
      'metadata',
      'offset',
      'parts',
      'path',
      'storage',
    ]);
    assert.deepEqual(Object.keys(object(object(JSON.parse(text).request).headers)), [
      'authorization',
      'x-forwarded-for',
      'x-latin1-bytes',
      'x-unicode',
    ]);
  });
});

describe('tusd field for field', () => {
  test('the seed example shape, with every header value in a list', () => {
    assert.deepEqual(payload('tusd', sampleEvent()), {
      Upload: {
        ID: '3cd911fe-eba0-499a-b220-b1d1b947b80f',
        Offset: 0,
        Size: 220,
        IsFinal: false,
        IsPartial: false,
        PartialUploads: null,
        SizeIsDeferred: false,
        MetaData: { filename: 'shrek2.mkv' },
        Storage: { Type: 'file_storage', Path: null },
      },
      HTTPRequest: {
        URI: '/files/',
        Method: 'POST',
        RemoteAddr: '127.0.0.1',
        Header: {
          host: ['rustus.localhost'],
          'upload-length': ['220'],
          'user-agent': ['curl/7.84.0'],
          accept: ['*/*'],
          'upload-metadata': ['filename c2hyZWsyLm1rdg=='],
          'tus-resumable': ['1.0.0'],
        },
      },
    });
  });

  test('Header keeps every value in order; PartialUploads, Storage.Path and Size follow the upload', () => {
    const request = object(payload('tusd', multiValued).HTTPRequest);
    assert.deepEqual(object(request.Header)['x-forwarded-for'], ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(object(request.Header)['x-unicode'], ['café ☕ 😀']);
    const upload = object(payload('tusd', finalUpload).Upload);
    assert.deepEqual(upload.PartialUploads, ['part-a', 'part-b']);
    assert.deepEqual(upload.Storage, { Path: '/data/final', Type: 'file_storage' });
    assert.equal(upload.Size, 30);
  });

  test('SizeIsDeferred is derived from the unknown length, as rustus does', () => {
    const deferred = sampleEvent('post-create', {
      upload: { ...sampleEvent().upload, length: null, deferredSize: true },
    });
    const upload = object(payload('tusd', deferred).Upload);
    assert.equal(upload.Size, null);
    assert.equal(upload.SizeIsDeferred, true);
    const declaredLater = sampleEvent('post-receive', {
      upload: { ...sampleEvent().upload, length: 220, deferredSize: true },
    });
    assert.equal(object(payload('tusd', declaredLater).Upload).SizeIsDeferred, false);
    assert.equal(object(payload('default', declaredLater).upload).deferred_size, true);
  });
});

test('a metadata or header key named __proto__ stays a plain key', () => {
  const event = sampleEvent('post-create', {
    upload: {
      ...sampleEvent().upload,
      metadata: JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>,
    },
  });
  const metadata = object(object(payload('default', event).upload).metadata);
  assert.deepEqual(Object.keys(metadata), ['__proto__', 'a']);
});
