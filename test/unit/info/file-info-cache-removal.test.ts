import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileInfoStore } from '../../../src/info/file.ts';
import { uploadRecord } from '../../support/upload-record.ts';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * A HEAD reads its record before taking the upload's lock, so a read may overlap a removal (a DELETE, a hook
 * module's uploads.delete, the expiry sweep). The cache must not keep what such a read saw: the removed upload
 * would answer 200 again while its file is gone (and a listing, reading the folder, never shows it again).
 */
describe('file info store with cached records: a read overlapping a removal', () => {
  let directory: string;
  let store: FileInfoStore;
  before(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-'));
    store = new FileInfoStore(directory, { fsync: false, cachedRecords: 100 });
    await store.prepare();
  });
  after(async () => {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('does not bring the removed record back', async () => {
    const rounds = 20;
    let readDuringRemoval = 0;
    for (let round = 0; round < rounds; round++) {
      const id = randomUUID();
      await store.put(uploadRecord({ id }), null);
      const removing = store.remove(id);
      // Started once the removal has dropped the cached copy, while its file is still being deleted.
      await new Promise((resolve) => setImmediate(resolve));
      if ((await store.get(id)) !== undefined) readDuringRemoval++;
      await removing;
      assert.equal(await exists(path.join(directory, `${id}.info`)), false);
      assert.equal(await store.get(id), undefined, `round ${round}: the removed record is still served`);
    }
    // Positive control: the reads did overlap the removals (they found the file not yet deleted).
    assert.ok(readDuringRemoval > 0, 'no read overlapped a removal; the test proves nothing');
    const names = [];
    for await (const listed of store.list()) names.push(listed.id);
    assert.deepEqual(names, []);
  });
});
