import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PartLayout, s3MaxObjectSize, s3MaxPartSize, s3MaxParts } from '../../../src/storage/part-size.ts';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

describe('S3 part size growth', () => {
  it('fits a 5 TiB upload in 10 000 parts of at most 5 GiB, from the smallest and the default part size', () => {
    for (const first of [5 * MiB, 8 * MiB, 64 * MiB, 5 * 1024 * MiB]) {
      const layout = new PartLayout(first);
      const last = layout.partAt(s3MaxObjectSize - 1);
      assert.ok(last.number <= s3MaxParts, `${last.number} parts with ${first / MiB} MiB first parts`);
      for (let number = 1; number <= last.number; number++) assert.ok(layout.sizeOf(number) <= s3MaxPartSize);
      assert.ok(last.start + last.size >= s3MaxObjectSize);
    }
  });

  it('keeps the first part size for the first 900 parts, as uploads did before, then doubles', () => {
    const layout = new PartLayout(8 * MiB);
    assert.equal(layout.sizeOf(1), 8 * MiB);
    assert.equal(layout.sizeOf(900), 8 * MiB);
    assert.equal(layout.sizeOf(901), 16 * MiB);
    assert.equal(layout.startOf(901), 900 * 8 * MiB);
    assert.deepEqual(layout.partAt(900 * 8 * MiB + 16 * MiB), {
      number: 902,
      start: 900 * 8 * MiB + 16 * MiB,
      size: 16 * MiB,
    });
    // Several TiB of deferred-length upload: still within the part count.
    assert.ok(layout.partAt(3 * TiB).number < s3MaxParts);
  });

  it('places every offset in the part that starts at or before it and ends after it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 64 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (firstMiB, where) => {
          const layout = new PartLayout(firstMiB * MiB);
          const offset = Math.floor(where * (s3MaxObjectSize - 1));
          const part = layout.partAt(offset);
          assert.equal(part.start, layout.startOf(part.number));
          assert.equal(part.size, layout.sizeOf(part.number));
          assert.ok(part.start <= offset && offset < part.start + part.size);
        },
      ),
    );
  });
});
