import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { azureMaxBlockSize, blockSizeAt } from '../../../src/storage/azure.ts';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

/** How many blocks an upload of `total` bytes takes when each block has the size the rule gives at its start. */
function blocksFor(total: number, configured: number): { count: number; largest: number } {
  let start = 0;
  let count = 0;
  let largest = 0;
  while (start < total) {
    const size = blockSizeAt(start, configured);
    largest = Math.max(largest, size);
    start += size;
    count++;
  }
  return { count, largest };
}

describe('azure block size growth', () => {
  it('starts at the configured size and keeps it for the first 1000 blocks', () => {
    assert.equal(blockSizeAt(0, 8 * MiB), 8 * MiB);
    assert.equal(blockSizeAt(999 * 8 * MiB, 8 * MiB), 8 * MiB);
    assert.equal(blockSizeAt(1000 * 8 * MiB, 8 * MiB), 16 * MiB);
  });

  it('fits a 150 TiB upload within 50 000 blocks of at most 4000 MiB, from the smallest block size', () => {
    for (const configured of [MiB, 8 * MiB, 100 * MiB]) {
      const { count, largest } = blocksFor(150 * TiB, configured);
      assert.ok(count <= 50_000, `${count} blocks with ${configured / MiB} MiB blocks`);
      assert.equal(largest, azureMaxBlockSize);
    }
  });
});
