/**
 * A removed record stays removed for the readers that were reading it while it was removed. A HEAD reads the
 * record without the upload's lock; when that read began while a termination (a DELETE, a hook's StopUpload)
 * was removing the record, the record it read must not go back into the cache, or every later request of this
 * process finds the terminated upload again (HEAD 200 for good, while the other instances answer 404).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileInfoStore } from '../../../src/info/file.ts';
import { uploadRecord } from '../../support/upload-record.ts';

test('a get running while the record is removed does not bring it back (cached records)', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-remove-race-'));
  const store = new FileInfoStore(directory, { fsync: false, cachedRecords: 100 });
  try {
    await store.prepare();
    const ids = Array.from({ length: 20 }, () => randomUUID());
    for (const id of ids) {
      // Created, then appended once: the store keeps the record file open, so removing it closes that first.
      await store.put(uploadRecord({ id, length: 10, offset: 0, createdAt: 1 }), null);
      await store.put(uploadRecord({ id, length: 10, offset: 5, createdAt: 1, version: 1 }), 1);
    }
    const readDuringRemoval: (number | undefined)[] = [];
    for (const id of ids) {
      const removing = store.remove(id);
      // The read begins while the removal is under way (the record file is still there).
      const reading = store.get(id);
      await removing;
      readDuringRemoval.push((await reading)?.offset);
    }
    // Positive control: the reads did find the record (the file still existed when they began)...
    assert.ok(
      readDuringRemoval.some((offset) => offset === 5),
      `the reads began before the files were gone: ${JSON.stringify(readDuringRemoval)}`,
    );
    for (const id of ids) {
      // ...and the record files are gone, yet the store must not answer with what those reads saw.
      await assert.rejects(access(path.join(directory, `${id}.info`)), { code: 'ENOENT' });
      assert.equal(await store.get(id), undefined, `record ${id} came back after its removal`);
    }
  } finally {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  }
});
