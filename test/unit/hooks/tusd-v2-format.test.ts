import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { uploadEventNames } from '../../../src/hooks/events.ts';
import { formatPayload, isHookFormatName } from '../../../src/hooks/formats/index.ts';
import { hookSchemaErrors } from '../../support/hook-payload-validator.ts';
import { sampleEvent } from './fixtures.ts';

function parse(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>;
}

const patch = sampleEvent('post-receive', {
  upload: { ...sampleEvent().upload, offset: 100, path: '/data/3cd911fe' },
  request: {
    uri: '/files/3cd911fe/',
    requestUri: '/files/3cd911fe',
    method: 'PATCH',
    remoteAddr: '127.0.0.10',
    peer: '127.0.0.1:53122',
    headers: {
      host: ['wharf.localhost:8080'],
      'upload-offset': ['0'],
      'x-request-id': ['a', 'b'],
      'transfer-encoding': ['chunked'],
      'tus-resumable': ['1.0.0'],
    },
  },
});

describe('--hooks-format tusd-v2 sends tusd 2 hook requests', () => {
  test('is a format name', () => {
    assert.equal(isHookFormatName('tusd-v2'), true);
  });

  test('a PATCH: Type and Event envelope, Go header names, peer host:port, the URI as received', () => {
    assert.deepEqual(parse(formatPayload('tusd-v2', patch)), {
      Type: 'post-receive',
      Event: {
        Upload: {
          ID: '3cd911fe-eba0-499a-b220-b1d1b947b80f',
          Size: 220,
          SizeIsDeferred: false,
          Offset: 100,
          MetaData: { filename: 'shrek2.mkv' },
          IsPartial: false,
          IsFinal: false,
          PartialUploads: null,
          Storage: { Type: 'filestore', Path: '/data/3cd911fe' },
        },
        HTTPRequest: {
          Method: 'PATCH',
          URI: '/files/3cd911fe',
          RemoteAddr: '127.0.0.1:53122',
          Header: {
            Host: ['wharf.localhost:8080'],
            'Tus-Resumable': ['1.0.0'],
            'Upload-Offset': ['0'],
            'X-Request-Id': ['a', 'b'],
          },
        },
      },
    });
  });

  test('pre-create has no ID and no Storage yet, as in tusd; a deferred size is 0', () => {
    const event = sampleEvent('pre-create', {
      upload: { ...sampleEvent().upload, length: null, deferredSize: true },
    });
    const upload = (parse(formatPayload('tusd-v2', event)).Event as Record<string, Record<string, unknown>>)
      .Upload;
    assert.equal(upload?.ID, '');
    assert.equal(upload?.Storage, null);
    assert.equal(upload?.Size, 0);
    assert.equal(upload?.SizeIsDeferred, true);
  });

  test('every event validates against tusd 2 HookRequest schema (all fields, nothing else)', () => {
    for (const name of uploadEventNames) {
      for (const event of [
        sampleEvent(name),
        sampleEvent(name, { ...patch, name }),
        sampleEvent(name, { request: { ...sampleEvent().request, remoteAddr: null } }),
      ]) {
        assert.deepEqual(hookSchemaErrors('tusd-v2', parse(formatPayload('tusd-v2', event))), [], name);
      }
    }
  });

  test('the tusd format keeps the 1.x shape (no Type, no Event)', () => {
    const old = parse(formatPayload('tusd', patch));
    assert.equal(old.Type, undefined);
    assert.ok(old.Upload);
    assert.ok(old.HTTPRequest);
  });
});
