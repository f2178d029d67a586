import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareCodePoints,
  sortedEntries,
  sortedKeys,
  sortedRecord,
} from '../../../src/hooks/formats/sorted.ts';

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

test('a small map and a large one (past the insertion sort) both come out in UTF-8 byte order, values kept', () => {
  const pool = ['x-b', 'X-A', 'a\u{1f600}', 'a\uffff', '__proto__', '10', '2', 'host', 'tus-resumable', 'a'];
  for (const size of [0, 1, 2, 7, 24, 25, 60]) {
    const record: Record<string, string> = Object.create(null);
    for (let index = 0; index < size; index += 1) {
      const key = `${pool[index % pool.length]}${index >= pool.length ? `-${index}` : ''}`;
      record[key] = `value of ${key}`;
    }
    const expected = Object.keys(record).sort(byUtf8Bytes);
    assert.deepEqual(sortedKeys(record), expected, `size ${size}`);
    const sorted = sortedRecord(record, (value) => (value.endsWith('-3') ? undefined : value.toUpperCase()));
    // An object lists integer-like keys first whatever order they were set in (JSON.stringify too, as before).
    const integerLike = (key: string): boolean => /^(0|[1-9][0-9]*)$/.test(key);
    assert.deepEqual(
      Object.keys(sorted).filter((key) => !integerLike(key)),
      expected.filter((key) => !key.endsWith('-3') && !integerLike(key)),
      `size ${size}`,
    );
    for (const key of Object.keys(sorted)) assert.equal(sorted[key], record[key]?.toUpperCase());
  }
});
