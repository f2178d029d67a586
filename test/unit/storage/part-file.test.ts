/**
 * A part file's size counts every byte written, also while close() is flushing them. The S3 store reads the
 * size of the tail it is saving while it closes: a size of 0 there made it also put an empty end marker at
 * the same key, and when S3 completed that PUT last, the tail's bytes were gone ("part 2 is missing").
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PartFile } from '../../../src/storage/part-file.ts';

describe('PartFile', () => {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'wharf-part-file-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('keeps its size while close() writes the pending bytes, and after', async () => {
    const part = await PartFile.create(folder);
    await part.write(Buffer.from('abc'));
    assert.equal(part.size, 3);
    const closing = part.close();
    assert.equal(part.size, 3, 'size while closing');
    await closing;
    assert.equal(part.size, 3, 'size once closed');
    assert.deepEqual(await readFile(part.path), Buffer.from('abc'));
    await part.remove();
  });
});
