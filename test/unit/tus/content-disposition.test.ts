import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentDisposition } from '../../../src/tus/methods/get.ts';

test("filename* holds only RFC 8187 attr-chars: ' ( ) * are percent-encoded, as are spaces and non-ASCII", () => {
  assert.equal(
    contentDisposition('attachment', "it's (final)*ü.txt"),
    `attachment; filename="it's (final)*_.txt"; filename*=UTF-8''it%27s%20%28final%29%2A%C3%BC.txt`,
  );
  // Positive control: a name of attr-chars only is left as it is.
  assert.equal(
    contentDisposition('inline', 'a-b_c.txt'),
    `inline; filename="a-b_c.txt"; filename*=UTF-8''a-b_c.txt`,
  );
});

test('a lone surrogate in the name (only a hook can set one) becomes U+FFFD instead of failing the download', () => {
  assert.throws(() => encodeURIComponent('a\uD800b'), URIError, 'what the header was built with before');
  assert.equal(
    contentDisposition('attachment', 'a\uD800b.txt'),
    `attachment; filename="a_b.txt"; filename*=UTF-8''a%EF%BF%BDb.txt`,
  );
});
