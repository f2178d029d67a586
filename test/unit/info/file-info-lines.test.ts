import assert from 'node:assert/strict';
import fs from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileInfoStore } from '../../../src/info/file.ts';
import { InfoConflictError } from '../../../src/info/info-store.ts';
import type { UploadRecord } from '../../../src/info/upload-record.ts';
import { uploadRecord } from '../../support/upload-record.ts';

const id = '0b0e3a53-5a59-4a9e-9d3c-5a1e64f0c0aa';

function recordOf(offset: number): UploadRecord {
  return uploadRecord({ id, offset, createdAt: 1 });
}

async function withStore(
  cachedRecords: number,
  body: (store: FileInfoStore, file: string) => Promise<void>,
): Promise<void> {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-lines-'));
  try {
    const store = new FileInfoStore(directory, { fsync: false, cachedRecords });
    await store.prepare();
    try {
      await body(store, path.join(directory, `${id}.info`));
    } finally {
      await store.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
}

for (const cachedRecords of [0, 10]) {
  test(`each version is one appended line and the last one is the record (cache ${cachedRecords})`, async () => {
    await withStore(cachedRecords, async (store, file) => {
      const record = recordOf(0);
      await store.put(record, null);
      record.offset = 100;
      await store.put(record, 1);
      record.offset = 300;
      await store.put(record, 2);
      assert.deepEqual(
        (await lines(file)).map((line) => (JSON.parse(line) as UploadRecord).offset),
        [0, 100, 300],
      );
      assert.equal((await store.get(id))?.offset, 300);
      assert.equal((await store.get(id))?.version, 3);
      await assert.rejects(store.put(record, 2), InfoConflictError);
      await assert.rejects(store.put(recordOf(0), null), InfoConflictError);
    });
  });

  test(`the file is rewritten with the latest version after 64 (cache ${cachedRecords})`, async () => {
    await withStore(cachedRecords, async (store, file) => {
      const record = recordOf(0);
      await store.put(record, null);
      for (let version = 1; version <= 70; version++) {
        record.offset = version;
        await store.put(record, version);
      }
      const kept = await lines(file);
      assert.ok(kept.length < 64, `${kept.length} lines kept`);
      assert.equal((JSON.parse(kept.at(-1) ?? '') as UploadRecord).offset, 70);
      assert.equal((await store.get(id))?.version, 71);
    });
  });
}

test('more records than files held open, and a record removed while held open: every version lands in its file', async () => {
  await withStore(10_000, async (store, file) => {
    const directory = path.dirname(file);
    const ids = Array.from(
      { length: 100 },
      (_, index) => `0b0e3a53-5a59-4a9e-9d3c-${String(index).padStart(12, '0')}`,
    );
    const records = ids.map((recordId) => ({ ...recordOf(0), id: recordId, path: recordId }));
    for (const record of records) await store.put(record, null);
    for (const record of records) {
      record.offset = 500;
      await store.put(record, 1);
    }
    await store.remove(ids[99] ?? '');
    await store.put({ ...recordOf(7), id: ids[99] ?? '' }, null);
    // A second store reads the files themselves, not the first one's memory.
    const reader = new FileInfoStore(directory, { fsync: false, cachedRecords: 0 });
    for (const recordId of ids.slice(0, 99)) {
      const found = await reader.get(recordId);
      assert.deepEqual([found?.offset, found?.version], [500, 2], recordId);
      assert.equal((await lines(path.join(directory, `${recordId}.info`))).length, 2);
    }
    const again = await reader.get(ids[99] ?? '');
    assert.deepEqual([again?.offset, again?.version], [7, 1]);
  });
});

test('a line torn by a crash is skipped: the record is the version before it, and the next write replaces the file', async () => {
  await withStore(0, async (store, file) => {
    const record = recordOf(0);
    await store.put(record, null);
    record.offset = 100;
    await store.put(record, 1);
    await appendFile(file, '{"id":"torn","offset":5');
    assert.equal((await store.get(id))?.offset, 100);
    record.offset = 200;
    await store.put(record, 2);
    assert.deepEqual(
      (await lines(file)).map((line) => (JSON.parse(line) as UploadRecord).offset),
      [200],
    );
  });
});

test('a record in the one-document format (no newline) is read, and rewritten as lines on its next version', async () => {
  await withStore(0, async (store, file) => {
    await writeFile(file, JSON.stringify({ ...recordOf(40), version: 7 }));
    assert.equal((await store.get(id))?.offset, 40);
    const record = recordOf(50);
    await store.put(record, 7);
    assert.equal(await readFile(file, 'utf8'), `${JSON.stringify({ ...recordOf(50), version: 8 })}\n`);
  });
});

test('a record file holding only a torn line counts as absent and can be created', async () => {
  await withStore(0, async (store, file) => {
    await writeFile(file, '{"id":"to');
    assert.equal(await store.get(id), undefined);
    await store.put(recordOf(0), null);
    assert.equal((await store.get(id))?.version, 1);
    assert.equal((await lines(file)).length, 1);
  });
});

test('a version whose append failed part-way (a full disk) leaves no torn line that the next version joins', async (t) => {
  await withStore(10, async (store, file) => {
    const record = recordOf(0);
    await store.put(record, null);
    record.offset = 100;
    await store.put(record, 1);
    // The disk takes half of the next line, then is full (a fake of fs.write inside this unit test).
    const original = fs.write;
    let calls = 0;
    const halfThenFull = (...args: unknown[]): void => {
      const callback = args[args.length - 1] as (error: Error | null, written: number) => void;
      calls += 1;
      if (calls === 1) {
        const [fd, buffer, offset, length, position] = args as [number, Buffer, number, number, null];
        original(fd, buffer, offset, Math.floor(length / 2), position, callback);
        return;
      }
      const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      setImmediate(() => callback(full, 0));
    };
    fs.write = halfThenFull as typeof fs.write;
    syncBuiltinESMExports();
    const restore = (): void => {
      fs.write = original;
      syncBuiltinESMExports();
    };
    t.after(restore);
    record.offset = 200;
    await assert.rejects(store.put(record, 2), /ENOSPC/);
    assert.equal(calls, 2, 'half the line was written, then the disk was full');
    restore();
    // Space again: the client's next chunk records offset 300 over version 2, still the record.
    record.offset = 300;
    await store.put(record, 2);
    assert.equal((await store.get(id))?.offset, 300);
    // Read back from the file alone (a restart): version 3 at offset 300, not version 2 before a joined line.
    const fresh = new FileInfoStore(path.dirname(file), { fsync: false, cachedRecords: 0 });
    const found = await fresh.get(id);
    await fresh.close();
    assert.deepEqual([found?.version, found?.offset], [3, 300], await readFile(file, 'utf8'));
  });
});
