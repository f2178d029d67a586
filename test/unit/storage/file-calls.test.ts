import assert from 'node:assert/strict';
import fs from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { FileDataStore } from '../../../src/storage/file.ts';

/**
 * What an upload costs the file system in file storage (each call is a round trip through libuv's thread pool,
 * which a small upload pays more for than for its bytes), and that the calls saved give up no stored-bytes
 * guarantee (docs/storage.md, "Stored bytes never exceed the record").
 */
let root: string;
let store: FileDataStore;
/** fstat calls (the kept files' OpenFile.size uses fs.fstat), and writev calls (file-sink.ts writes with fs.writev). */
const calls = { stat: 0, writev: 0 };
let restore: () => void;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'wharf-file-calls-'));
  // The store keeps files open between requests, as a lone Wharf process does (uploads/compose.ts).
  store = new FileDataStore({ directory: root, dirStructure: '', fsync: false, env: {}, idleFiles: 64 });
  await store.prepare();
  const realFstat = fs.fstat;
  fs.fstat = ((...args: Parameters<typeof fs.fstat>) => {
    calls.stat++;
    return (realFstat as (...a: unknown[]) => void)(...args);
  }) as typeof fs.fstat;
  const realWritev = fs.writev;
  fs.writev = ((...args: Parameters<typeof fs.writev>) => {
    calls.writev++;
    return (realWritev as (...a: unknown[]) => void)(...args);
  }) as typeof fs.writev;
  syncBuiltinESMExports();
  restore = () => {
    fs.fstat = realFstat;
    fs.writev = realWritev;
    syncBuiltinESMExports();
  };
});

after(async () => {
  restore();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** A body that arrives as these pieces, all in one turn of the event loop (the socket reads of one poll). */
function arriving(...pieces: string[]): PassThrough {
  const body = new PassThrough();
  for (const piece of pieces) body.write(piece);
  body.end();
  return body;
}

function counted(): { stat: number; writev: number } {
  const now = { ...calls };
  calls.stat = 0;
  calls.writev = 0;
  return now;
}

test('a small upload (created, one body, finished) measures its file no time, and its body of two reads is one write', async () => {
  const location = await store.create({ id: 'small-one', createdAt: Date.now() });
  counted();
  // 64 KiB arrives as two socket reads: the first one also held the request's headers.
  const first = 'a'.repeat(65_317);
  const second = 'b'.repeat(219);
  const result = await store.append(location, 0, arriving(first, second));
  assert.deepEqual(result, { bytesWritten: 65_536 });
  await store.finish(location, 65_536);
  assert.deepEqual(counted(), { stat: 0, writev: 1 });
  assert.equal(await readFile(store.describe(location), 'utf8'), first + second);
});

test('a resumed upload is measured, so bytes stored past its offset are still cut (positive control)', async () => {
  const location = await store.create({ id: 'resumed', createdAt: Date.now() });
  assert.equal((await store.append(location, 0, arriving('hello '))).bytesWritten, 6);
  // What a PATCH whose record write failed, or whose process was killed, leaves past the recorded offset.
  await appendFile(store.describe(location), 'forged bytes');
  counted();
  assert.equal((await store.append(location, 6, arriving('world!'))).bytesWritten, 6);
  await store.finish(location, 12);
  assert.equal(counted().stat, 1);
  assert.equal(await readFile(store.describe(location), 'utf8'), 'hello world!');
});

test('an empty body at the offset, then finishing there, cuts what was stored past it', async () => {
  const location = await store.create({ id: 'deferred', createdAt: Date.now() });
  assert.equal((await store.append(location, 0, arriving('hello '))).bytesWritten, 6);
  await appendFile(store.describe(location), 'forged bytes');
  assert.equal((await store.append(location, 6, arriving())).bytesWritten, 0);
  await store.finish(location, 6);
  assert.equal((await stat(store.describe(location))).size, 6);
});

test('a chunk cut away through the kept file (a checksum mismatch) leaves the finish exactly its length', async () => {
  const location = await store.create({ id: 'discarded', createdAt: Date.now() });
  assert.equal((await store.append(location, 0, arriving('hello '))).bytesWritten, 6);
  assert.equal((await store.append(location, 6, arriving('wrong chunk'))).bytesWritten, 11);
  await store.truncate(location, 6);
  assert.equal((await stat(store.describe(location))).size, 6);
  assert.equal((await store.append(location, 6, arriving('world!'))).bytesWritten, 6);
  await store.finish(location, 12);
  assert.equal(await readFile(store.describe(location), 'utf8'), 'hello world!');
  // Cut through the kept file, finished at once: the finish knows the size the cut left.
  await store.truncate(location, 5);
  await store.finish(location, 5);
  assert.equal(await readFile(store.describe(location), 'utf8'), 'hello');
});

test('a concatenated upload written through its path: a later finish still cuts it to its length', async () => {
  const part = await store.create({ id: 'part', createdAt: Date.now() });
  assert.equal((await store.append(part, 0, arriving('hello world!'))).bytesWritten, 12);
  const final = await store.create({ id: 'final', createdAt: Date.now() });
  await store.concatenate(final, [{ location: part, length: 12 }]);
  await store.finish(final, 5);
  assert.equal(await readFile(store.describe(final), 'utf8'), 'hello');
});
