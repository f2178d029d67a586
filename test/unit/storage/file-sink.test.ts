import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { FileDataStore } from '../../../src/storage/file.ts';
import { WriteBudget, writeStreamAt } from '../../../src/storage/file-sink.ts';

const KiB = 1024;
let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'wharf-file-sink-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A file store in its own folder, holding up to `idleFiles` upload files open between appends. */
async function filesIn(folder: string, idleFiles = 0): Promise<FileDataStore> {
  const store = new FileDataStore({
    directory: path.join(root, folder),
    dirStructure: '',
    fsync: false,
    env: {},
    idleFiles,
  });
  await store.prepare();
  return store;
}

/** `bytes` in chunks of `chunk`, noting the budget's holding before each chunk is handed over. */
function chunked(bytes: Buffer, chunk: number, budget: WriteBudget, peaks: number[]): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += chunk) {
        peaks.push(budget.held);
        yield bytes.subarray(at, at + chunk);
      }
    })(),
    { objectMode: false },
  );
}

test('streams share the budget: every byte lands in its file, and beyond the budget each holds its floor and a chunk at most', async () => {
  const budget = new WriteBudget(64 * KiB, 64 * KiB, 16 * KiB);
  const peaks: number[] = [];
  const streams = 8;
  const bodies = Array.from({ length: streams }, () => randomBytes(512 * KiB));
  const results = await Promise.all(
    bodies.map(async (body, index) => {
      const file = path.join(root, `budget-${index}`);
      await writeFile(file, 'head');
      const handle = await open(file, 'r+');
      try {
        return await writeStreamAt(handle, 4, chunked(body, 16 * KiB, budget, peaks), {
          budget,
          fsync: false,
        });
      } finally {
        await handle.close();
      }
    }),
  );
  for (const [index, body] of bodies.entries()) {
    assert.deepEqual(results[index], { bytesWritten: body.length });
    assert.deepEqual(
      await readFile(path.join(root, `budget-${index}`)),
      Buffer.concat([Buffer.from('head'), body]),
    );
  }
  assert.ok(
    Math.max(...peaks) <= 64 * KiB + streams * (16 * KiB + 16 * KiB),
    `held at most ${Math.max(...peaks)} bytes`,
  );
  assert.equal(budget.held, 0, 'every byte held is given back');
});

test('a source that fails: what arrived before is written and counted, and the failure is reported', async () => {
  const budget = new WriteBudget(1024 * KiB, 1024 * KiB, 64 * KiB);
  const first = randomBytes(100 * KiB);
  const source = Readable.from(
    (async function* () {
      yield first;
      throw new Error('client went away');
    })(),
  );
  const file = path.join(root, 'failing');
  await writeFile(file, '');
  const handle = await open(file, 'r+');
  const result = await writeStreamAt(handle, 0, source, { budget, fsync: false });
  await handle.close();
  assert.equal(result.bytesWritten, first.length);
  assert.match(String(result.error), /client went away/);
  assert.deepEqual(await readFile(file), first);
  assert.equal(budget.held, 0);
});

test('a file held open between appends is let go on removal: an append after it fails instead of writing nowhere', async () => {
  const store = await filesIn('store', 64);
  const location = await store.create({ id: 'held-open', createdAt: Date.now() });
  assert.deepEqual(await store.append(location, 0, Readable.from([Buffer.from('abc')])), { bytesWritten: 3 });
  assert.deepEqual(await store.append(location, 3, Readable.from([Buffer.from('def')])), { bytesWritten: 3 });
  assert.equal(await readFile(store.describe(location), 'utf8'), 'abcdef');
  await store.remove(location);
  const late = await store.append(location, 6, Readable.from([Buffer.from('ghi')]));
  assert.equal(late.bytesWritten, 0);
  assert.equal((late.error as NodeJS.ErrnoException).code, 'ENOENT');
});

test('more uploads than files held open: each one still gets all its bytes', async () => {
  const store = await filesIn('many', 64);
  const locations: string[] = [];
  for (let index = 0; index < 150; index++) {
    locations.push(await store.create({ id: `many-${index}`, createdAt: Date.now() }));
  }
  for (const [index, location] of locations.entries()) {
    await store.append(location, 0, Readable.from([Buffer.from(`first ${index};`)]));
  }
  for (const [index, location] of locations.entries()) {
    const offset = Buffer.byteLength(`first ${index};`);
    await store.append(location, offset, Readable.from([Buffer.from(`second ${index}`)]));
  }
  for (const [index, location] of locations.entries()) {
    assert.equal(await readFile(store.describe(location), 'utf8'), `first ${index};second ${index}`);
  }
});

/** This process's descriptors open on `file` (Linux). */
async function descriptorsOn(file: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === file) count += 1;
  }
  return count;
}

test('two appends overlapping on one upload (a PATCH taking over from a stalled one) leave one descriptor open', async () => {
  const store = await filesIn('overlap', 64);
  const location = await store.create({ id: 'overlap', createdAt: Date.now() });
  const file = store.describe(location);
  const stalled = new PassThrough();
  const first = store.append(location, 0, stalled);
  stalled.write('abc');
  const second = store.append(location, 3, Readable.from([Buffer.from('def')]));
  assert.deepEqual(await second, { bytesWritten: 3 });
  stalled.end();
  assert.deepEqual(await first, { bytesWritten: 3 });
  assert.equal(await readFile(file, 'utf8'), 'abcdef');
  assert.equal(await descriptorsOn(file), 1);
  await store.remove(location);
  assert.equal(await descriptorsOn(file), 0);
});

test('by default (another process may remove the files) no upload file stays open after its request', async () => {
  const store = await filesIn('closed');
  const location = await store.create({ id: 'closed', createdAt: Date.now() });
  assert.equal(await descriptorsOn(store.describe(location)), 0);
  assert.deepEqual(await store.append(location, 0, Readable.from([Buffer.from('abc')])), { bytesWritten: 3 });
  assert.equal(await descriptorsOn(store.describe(location)), 0);
});
