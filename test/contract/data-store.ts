import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { canConcatenate, canFinish, type DataStore } from '../../src/storage/data-store.ts';

const MiB = 1024 * 1024;

/** A second instance of the same store, sharing its backing storage, built per test. */
export interface StoresUnderTest {
  readonly store: DataStore;
  /** Another instance over the same storage (another Wharf process). */
  readonly twin: DataStore;
}

export type MakeStores = () => Promise<StoresUnderTest>;

/** A body of `bytes`, delivered in 64 KiB pieces like a socket; with `failAfter`, it errors after that many. */
function body(bytes: Buffer, failAfter?: number): Readable {
  const limit = failAfter ?? bytes.length;
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= limit) {
        if (failAfter !== undefined) this.destroy(new Error('client went away'));
        else this.push(null);
        return;
      }
      const piece = bytes.subarray(sent, Math.min(limit, sent + 64 * 1024));
      sent += piece.length;
      this.push(piece);
    },
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function appendAll(store: DataStore, location: string, data: Buffer, sizes: readonly number[]) {
  let offset = 0;
  for (const size of sizes) {
    const result = await store.append(location, offset, body(data.subarray(offset, offset + size)));
    assert.equal(result.error, undefined);
    assert.equal(result.bytesWritten, size);
    offset += size;
  }
  return offset;
}

async function finish(store: DataStore, location: string, length: number): Promise<void> {
  if (canFinish(store)) await store.finish(location, length);
}

let serial = 0;
function placement() {
  return { id: `contract-${process.pid}-${++serial}-${Date.now()}`, createdAt: Date.now() };
}

/**
 * What every DataStore does, whatever holds the bytes: appends at an offset across any chunk sizes, keeps
 * the bytes of a body that failed half-way, undoes a discarded chunk, lets another instance continue,
 * serves ranges, concatenates, removes. Sizes straddle 5 MiB, S3's smallest part.
 */
export function describeDataStore(name: string, makeStores: MakeStores): void {
  // Three tests at a time (each has uploads and stores of its own): the S3, GCS and Azure calls overlap, and the
  // buffers of at most three tests are held at once.
  describe(`${name} data store contract`, { concurrency: 3 }, () => {
    // Each test's stores are closed after it, as a server closes its store at shutdown (open files included).
    const storesForThisTest = async (t: TestContext): Promise<StoresUnderTest> => {
      const stores = await makeStores();
      t.after(async () => {
        await stores.store.close?.();
        await stores.twin.close?.();
      });
      return stores;
    };
    test('appends chunks of any size and reads them back whole and by range', async (t) => {
      const { store } = await storesForThisTest(t);
      const sizes = [MiB, 4 * MiB + 1, 5 * MiB, 3 * MiB - 1, 7];
      const data = randomBytes(sizes.reduce((sum, size) => sum + size, 0));
      const location = await store.create(placement());
      const length = await appendAll(store, location, data, sizes);
      await finish(store, location, length);
      assert.ok((await collect(await store.read(location))).equals(data));
      const range = { start: 5 * MiB - 3, end: 10 * MiB + 2 };
      assert.ok(
        (await collect(await store.read(location, range))).equals(data.subarray(range.start, range.end + 1)),
      );
      await store.remove(location);
    });

    test('keeps every byte of a body that was interrupted (ended early), and continues from there', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(13 * MiB);
      const location = await store.create(placement());
      const cut = 7 * MiB + 12345;
      const first = await store.append(location, 0, body(data.subarray(0, cut)));
      assert.equal(first.bytesWritten, cut);
      const rest = await store.append(location, cut, body(data.subarray(cut)));
      assert.equal(rest.bytesWritten, data.length - cut);
      await finish(store, location, data.length);
      assert.ok((await collect(await store.read(location))).equals(data));
      await store.remove(location);
    });

    test('reports a body that failed, with the bytes it kept, and continues from those', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(13 * MiB);
      const location = await store.create(placement());
      const cut = 7 * MiB + 12345;
      const first = await store.append(location, 0, body(data, cut));
      assert.equal((first.error as Error | undefined)?.message, 'client went away');
      assert.ok(first.bytesWritten <= cut);
      const kept = first.bytesWritten;
      const rest = await store.append(location, kept, body(data.subarray(kept)));
      assert.equal(rest.bytesWritten, data.length - kept);
      await finish(store, location, data.length);
      assert.ok((await collect(await store.read(location))).equals(data));
      await store.remove(location);
    });

    test('cut back to where an append started, the store continues as if it never happened', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(12 * MiB);
      const location = await store.create(placement());
      await appendAll(store, location, data, [3 * MiB]);
      for (const rejected of [randomBytes(6 * MiB), randomBytes(MiB)]) {
        const result = await store.append(location, 3 * MiB, body(rejected));
        assert.equal(result.bytesWritten, rejected.length);
        await store.truncate(location, 3 * MiB);
      }
      const result = await store.append(location, 3 * MiB, body(data.subarray(3 * MiB)));
      assert.equal(result.bytesWritten, 9 * MiB);
      await finish(store, location, data.length);
      assert.ok((await collect(await store.read(location))).equals(data));
      await store.remove(location);
    });

    test('an append at an offset discards whatever was stored past it', async (t) => {
      const { store, twin } = await storesForThisTest(t);
      const first = randomBytes(7 * MiB);
      const second = randomBytes(MiB + 3);
      const location = await store.create(placement());
      await appendAll(store, location, first, [first.length]);
      // The record said 3 MiB (the rest was stored before a crash or a failed record write): the next
      // append, from either instance, starts there and nothing past it survives.
      const result = await twin.append(location, 3 * MiB, body(second));
      assert.equal(result.error, undefined);
      assert.equal(result.bytesWritten, second.length);
      const length = 3 * MiB + second.length;
      await finish(store, location, length);
      const stored = await collect(await store.read(location));
      assert.equal(stored.length, length);
      assert.ok(stored.equals(Buffer.concat([first.subarray(0, 3 * MiB), second])));
      await store.remove(location);
    });

    test('an empty append at an offset, then finishing there, leaves exactly that many bytes', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(6 * MiB + 5);
      const location = await store.create(placement());
      await appendAll(store, location, data, [data.length]);
      // A deferred-length upload finished with Upload-Length at its recorded offset, bytes stored past it.
      const length = 2 * MiB + 1;
      const result = await store.append(location, length, body(Buffer.alloc(0)));
      assert.equal(result.error, undefined);
      assert.equal(result.bytesWritten, 0);
      await finish(store, location, length);
      const stored = await collect(await store.read(location));
      assert.equal(stored.length, length);
      assert.ok(stored.equals(data.subarray(0, length)));
      await store.remove(location);
    });

    test('a finished upload holds exactly its length, whatever was stored past it', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(3 * MiB + 7);
      const location = await store.create(placement());
      await appendAll(store, location, data, [data.length]);
      const length = 3 * MiB;
      await finish(store, location, length);
      const stored = await collect(await store.read(location));
      assert.equal(stored.length, length);
      assert.ok(stored.equals(data.subarray(0, length)));
      await store.remove(location);
    });

    test('instances take turns on one upload, each continuing where the other stopped', async (t) => {
      const { store, twin } = await storesForThisTest(t);
      const data = randomBytes(11 * MiB + 5);
      const location = await store.create(placement());
      const turns: [DataStore, number][] = [
        [store, 6 * MiB + 1],
        [twin, 2 * MiB],
        [store, MiB],
        [twin, 2 * MiB + 4],
      ];
      let offset = 0;
      for (const [instance, size] of turns) {
        const result = await instance.append(location, offset, body(data.subarray(offset, offset + size)));
        assert.equal(result.bytesWritten, size);
        offset += size;
      }
      assert.equal(offset, data.length);
      await finish(twin, location, data.length);
      assert.ok((await collect(await store.read(location))).equals(data));
      await twin.remove(location);
    });

    test('concatenates finished uploads in order', async (t) => {
      const { store } = await storesForThisTest(t);
      assert.ok(canConcatenate(store));
      const pieces = [randomBytes(2 * MiB), randomBytes(5 * MiB + 3), randomBytes(0), randomBytes(9)];
      const sources: { location: string; length: number }[] = [];
      for (const piece of pieces) {
        const location = await store.create(placement());
        await appendAll(store, location, piece, piece.length > 0 ? [piece.length] : []);
        await finish(store, location, piece.length);
        sources.push({ location, length: piece.length });
      }
      const target = await store.create(placement());
      await store.concatenate(target, sources);
      assert.ok((await collect(await store.read(target))).equals(Buffer.concat(pieces)));
      for (const location of [target, ...sources.map((source) => source.location)])
        await store.remove(location);
    });

    test('removes an upload, finished or not; removing twice is not an error', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(6 * MiB);
      const unfinished = await store.create(placement());
      await appendAll(store, unfinished, data, [6 * MiB]);
      const finished = await store.create(placement());
      await appendAll(store, finished, data, [6 * MiB]);
      await finish(store, finished, data.length);
      for (const location of [unfinished, finished]) {
        await store.remove(location);
        await store.remove(location);
        await assert.rejects(async () => collect(await store.read(location)));
      }
    });
  });
}
