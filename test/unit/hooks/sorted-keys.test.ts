import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareCodePoints, sortedEntries } from '../../../src/hooks/formats/sorted.ts';

/** The order of UTF-8 bytes, the order rustus's serde_json map gives its keys. */
function byUtf8Bytes(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

test('keys sort by their UTF-8 bytes, astral characters after U+E000–U+FFFF included', () => {
  const keys = [
    'upload-length',
    'Upload-Length',
    'upload',
    'x',
    'X-Custom',
    '',
    'a\u00e9',
    'a\uffff',
    'a\ue000',
    'a\u{1f600}',
    'a\u{10000}',
    'a\u{1f600}b',
    '\u{1f600}',
    '\uff01',
    'z',
    'tus-resumable',
    'a',
  ];
  const expected = [...keys].sort(byUtf8Bytes);
  assert.deepEqual([...keys].sort(compareCodePoints), expected);
  for (const left of keys) {
    for (const right of keys) {
      assert.equal(
        Math.sign(compareCodePoints(left, right)),
        Math.sign(byUtf8Bytes(left, right)),
        `${left} / ${right}`,
      );
    }
  }
  assert.deepEqual(
    sortedEntries({ b: 1, '\u{1f600}': 2, '\uffff': 3, a: 4 }).map(([key]) => key),
    ['a', 'b', '\uffff', '\u{1f600}'],
  );
});
