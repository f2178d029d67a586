import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { InfoConflictError, type InfoStore } from '../../src/info/info-store.ts';
import type { UploadRecord } from '../../src/info/upload-record.ts';
import { uploadRecord } from '../support/upload-record.ts';

export interface InfoStoreUnderTest {
  readonly store: InfoStore;
  /** Closes connections and removes what the store created. */
  close(): Promise<void>;
}

export function sampleRecord(overrides: Partial<UploadRecord> = {}): UploadRecord {
  const id = overrides.id ?? randomUUID();
  return uploadRecord({
    id,
    length: 1024,
    path: `uploads/${id}`,
    createdAt: 1_700_000_000_123,
    metadataHeader: 'filename Y2Fmw6kg4piVLnR4dA==,empty',
    metadata: { filename: 'caf\u00e9 \u2615.txt', empty: '' },
    ...overrides,
  });
}

/**
 * What every InfoStore guarantees: records round-trip exactly, creation refuses an existing id, every write
 * is compare-and-set on the version (so of two writers holding the same version exactly one wins), removal
 * is final and harmless when repeated, and list() sees every record.
 */
export function describeInfoStore(name: string, open: () => Promise<InfoStoreUnderTest>): void {
  describe(`${name} info store contract`, () => {
    let subject: InfoStoreUnderTest;
    let store: InfoStore;
    before(async () => {
      subject = await open();
      store = subject.store;
      await store.prepare();
      // prepare() runs on every start: a second call must be harmless.
      await store.prepare();
    });
    after(async () => {
      await subject.close();
    });

    test('an unknown id reads as undefined', async () => {
      assert.equal(await store.get(randomUUID()), undefined);
    });

    test('a created record reads back field for field, at version 1', async () => {
      const record = sampleRecord({ length: null, parts: ['a', 'b'], pendingFinals: ['c'], expiresAt: 42 });
      await store.put(record, null);
      assert.equal(record.version, 1);
      assert.deepEqual(await store.get(record.id), { ...record, version: 1 });
    });

    test('creation fails when the id exists, and the stored record is untouched', async () => {
      const record = sampleRecord();
      await store.put(record, null);
      const impostor = sampleRecord({ id: record.id, offset: 99 });
      await assert.rejects(store.put(impostor, null), InfoConflictError);
      assert.equal((await store.get(record.id))?.offset, 0);
    });

    test('an update with the current version succeeds and increments it', async () => {
      const record = sampleRecord();
      await store.put(record, null);
      record.offset = 512;
      await store.put(record, 1);
      assert.equal(record.version, 2);
      const stored = await store.get(record.id);
      assert.equal(stored?.offset, 512);
      assert.equal(stored?.version, 2);
    });

    test('an update with a stale version fails and leaves the newer record', async () => {
      const record = sampleRecord();
      await store.put(record, null);
      const stale = { ...record };
      record.offset = 100;
      await store.put(record, 1);
      stale.offset = 200;
      await assert.rejects(store.put(stale, 1), InfoConflictError);
      assert.equal((await store.get(record.id))?.offset, 100);
    });

    test('an update of a missing record fails', async () => {
      await assert.rejects(store.put(sampleRecord(), 3), InfoConflictError);
    });

    test('of concurrent writers holding the same version, exactly one wins', async () => {
      const record = sampleRecord();
      await store.put(record, null);
      const writers = Array.from({ length: 8 }, (_, index) => ({ ...record, offset: index + 1 }));
      const results = await Promise.allSettled(writers.map((writer) => store.put(writer, 1)));
      const won = results.filter((result) => result.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const result of results) {
        if (result.status === 'rejected') assert.ok(result.reason instanceof InfoConflictError);
      }
      const winner = writers[results.indexOf(won[0]!)]!;
      const stored = await store.get(record.id);
      assert.equal(stored?.offset, winner.offset);
      assert.equal(stored?.version, 2);
    });

    test('removal is final and harmless when repeated or unknown', async () => {
      const record = sampleRecord();
      await store.put(record, null);
      await store.remove(record.id);
      assert.equal(await store.get(record.id), undefined);
      await store.remove(record.id);
      await store.remove(randomUUID());
      // The id can be created again after removal.
      await store.put(sampleRecord({ id: record.id }), null);
      assert.equal((await store.get(record.id))?.version, 1);
    });

    test('list() yields every stored record', async () => {
      const records = [sampleRecord(), sampleRecord(), sampleRecord()];
      for (const record of records) await store.put(record, null);
      await store.remove(records[2]!.id);
      const seen = new Map<string, UploadRecord>();
      for await (const record of store.list()) seen.set(record.id, record);
      assert.deepEqual(seen.get(records[0]!.id), records[0]);
      assert.deepEqual(seen.get(records[1]!.id), records[1]);
      assert.equal(seen.has(records[2]!.id), false);
    });

    test('ids that could escape a key or a path are refused', async () => {
      await assert.rejects(store.get('../etc/passwd'));
      await assert.rejects(store.put(sampleRecord({ id: 'a/b' }), null));
    });
  });
}
