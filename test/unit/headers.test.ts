import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WharfError } from '../../src/errors.ts';
import {
  parseUploadChecksum,
  parseUploadConcat,
  parseUploadLength,
  parseUploadMetadata,
  parseUploadOffset,
} from '../../src/tus/headers.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof WharfError) return error.code;
    throw error;
  }
  return 'none';
};

describe('tus header codecs', () => {
  it('parses Upload-Offset and Upload-Length as plain non-negative integers', () => {
    assert.equal(parseUploadOffset('0'), 0);
    assert.equal(parseUploadOffset('1234567890123'), 1234567890123);
    for (const bad of [undefined, '', '-1', '+1', '1.0', '0x10', '1e3', '99999999999999999']) {
      assert.equal(
        code(() => parseUploadOffset(bad)),
        'ERR_INVALID_OFFSET',
        String(bad),
      );
    }
    assert.equal(parseUploadLength(undefined), undefined);
    assert.equal(
      code(() => parseUploadLength('abc')),
      'ERR_INVALID_UPLOAD_LENGTH',
    );
  });

  it('decodes metadata, keeps the raw header, accepts key-only pairs', () => {
    const parsed = parseUploadMetadata(
      'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential, sun c8WCb8WEY2U=',
    );
    assert.deepEqual(
      { ...parsed?.values },
      {
        filename: 'world_domination_plan.pdf',
        is_confidential: '',
        sun: 'słońce',
      },
    );
    assert.equal(
      parsed?.raw,
      'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential, sun c8WCb8WEY2U=',
    );
    assert.equal(
      code(() => parseUploadMetadata('a YQ=,b')),
      'ERR_INVALID_METADATA',
    );
    assert.equal(
      code(() => parseUploadMetadata('a YQ==,a YQ==')),
      'ERR_INVALID_METADATA',
    );
    assert.equal(
      code(() => parseUploadMetadata('__proto__ YQ==,__proto__ YQ==')),
      'ERR_INVALID_METADATA',
    );
    assert.equal(
      code(() => parseUploadMetadata(',')),
      'ERR_INVALID_METADATA',
    );
    for (const key of ['a\tb', 'caf\u00e9', '\u0444']) {
      assert.equal(
        code(() => parseUploadMetadata(`${key} YQ==`)),
        'ERR_INVALID_METADATA_KEY',
      );
    }
    const odd = parseUploadMetadata('__proto__ YQ==,constructor Yg==,~!#$%&*+-./:;<=>?@[]^_`{|} Yw==');
    assert.equal(Object.getPrototypeOf(odd?.values), null);
    assert.deepEqual(Object.entries(odd?.values ?? {}), [
      ['__proto__', 'a'],
      ['constructor', 'b'],
      ['~!#$%&*+-./:;<=>?@[]^_`{|}', 'c'],
    ]);
  });

  it('parses Upload-Concat partial and final lists', () => {
    assert.deepEqual(parseUploadConcat('partial'), { kind: 'partial', header: 'partial' });
    assert.deepEqual(parseUploadConcat('final;/files/a http://x/files/b'), {
      kind: 'final',
      header: 'final;/files/a http://x/files/b',
      urls: ['/files/a', 'http://x/files/b'],
    });
    assert.equal(
      code(() => parseUploadConcat('final;')),
      'ERR_INVALID_CONCAT',
    );
    assert.equal(
      code(() => parseUploadConcat('partial;x')),
      'ERR_INVALID_CONCAT',
    );
  });

  it('parses Upload-Checksum; a digest of the wrong length is kept (it fails to match: 460)', () => {
    const parsed = parseUploadChecksum('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=');
    assert.equal(parsed?.algorithm, 'sha1');
    assert.equal(parsed?.digest.length, 20);
    assert.equal(
      code(() => parseUploadChecksum('crc32 AAAA')),
      'ERR_UNSUPPORTED_CHECKSUM_ALGORITHM',
    );
    assert.equal(parseUploadChecksum('sha1 AAAA')?.digest.length, 3);
    assert.equal(
      code(() => parseUploadChecksum('sha1 AAA')),
      'ERR_INVALID_CHECKSUM_HEADER',
    );
    assert.equal(
      code(() => parseUploadChecksum('sha1')),
      'ERR_INVALID_CHECKSUM_HEADER',
    );
  });
});
