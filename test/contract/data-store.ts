import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { canConcatenate, canFinish, type DataStore } from '../../src/storage/data-store.ts';

const KiB = 1024;
/** The pieces a body arrives in (see {@link body}); a unit of size is a whole number of them. */
const delivery = 64 * KiB;

/** A second instance of the same store, sharing its backing storage, built per test. */
export interface StoresUnderTest {
  readonly store: DataStore;
  /** Another instance over the same storage (another Wharf process). */
  readonly twin: DataStore;
}

export type MakeStores = () => Promise<StoresUnderTest>;

/** A body of `bytes`, delivered in pieces of 64 KiB like a socket; with `failAfter`, it errors after that many. */
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
      const piece = bytes.subarray(sent, Math.min(limit, sent + delivery));
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

export interface ContractOptions {
  /**
   * The store's unit of size, a whole number of 64 KiB (the pieces a body arrives in). Every size in the
   * contract is in units and they straddle 5 units: build the store with parts, pieces or blocks of 5 units
   * (or 4, as Azure's), so each test crosses them at the same places whatever the unit. A store with a real
   * smallest part (S3's 5 MiB) takes 1 MiB; the others take the smallest unit their own smallest part allows,
   * with the bytes to send, store and compare shrinking with it.
   */
  readonly unit: number;
}

/**
 * What every DataStore does, whatever holds the bytes: appends at an offset across any chunk sizes, keeps
 * the bytes of a body that failed half-way, undoes a discarded chunk, lets another instance continue,
 * serves ranges, concatenates, removes. Sizes are in `unit`s and straddle 5 of them.
 */
export function describeDataStore(name: string, makeStores: MakeStores, { unit }: ContractOptions): void {
  // Whole deliveries line up with units as they did with MiB, and a cut 12345 bytes into a unit stays inside it.
  if (unit < delivery || unit % delivery !== 0)
    throw new Error(`the unit of size (${unit}) is not a whole number of ${delivery} bytes`);
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
      const sizes = [unit, 4 * unit + 1, 5 * unit, 3 * unit - 1, 7];
      const data = randomBytes(sizes.reduce((sum, size) => sum + size, 0));
      const location = await store.create(placement());
      const length = await appendAll(store, location, data, sizes);
      await finish(store, location, length);
      assert.ok((await collect(await store.read(location))).equals(data));
      const range = { start: 5 * unit - 3, end: 10 * unit + 2 };
      assert.ok(
        (await collect(await store.read(location, range))).equals(data.subarray(range.start, range.end + 1)),
      );
      await store.remove(location);
    });

    test('keeps every byte of a body that was interrupted (ended early), and continues from there', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(13 * unit);
      const location = await store.create(placement());
      const cut = 7 * unit + 12345;
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
      const data = randomBytes(13 * unit);
      const location = await store.create(placement());
      const cut = 7 * unit + 12345;
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
      const data = randomBytes(12 * unit);
      const location = await store.create(placement());
      await appendAll(store, location, data, [3 * unit]);
      for (const rejected of [randomBytes(6 * unit), randomBytes(unit)]) {
        const result = await store.append(location, 3 * unit, body(rejected));
        assert.equal(result.bytesWritten, rejected.length);
        await store.truncate(location, 3 * unit);
      }
      const result = await store.append(location, 3 * unit, body(data.subarray(3 * unit)));
      assert.equal(result.bytesWritten, 9 * unit);
      await finish(store, location, data.length);
      assert.ok((await collect(await store.read(location))).equals(data));
      await store.remove(location);
    });

    test('an append at an offset discards whatever was stored past it', async (t) => {
      const { store, twin } = await storesForThisTest(t);
      const first = randomBytes(7 * unit);
      const second = randomBytes(unit + 3);
      const location = await store.create(placement());
      await appendAll(store, location, first, [first.length]);
      // The record said 3 units (the rest was stored before a crash or a failed record write): the next
      // append, from either instance, starts there and nothing past it survives.
      const result = await twin.append(location, 3 * unit, body(second));
      assert.equal(result.error, undefined);
      assert.equal(result.bytesWritten, second.length);
      const length = 3 * unit + second.length;
      await finish(store, location, length);
      const stored = await collect(await store.read(location));
      assert.equal(stored.length, length);
      assert.ok(stored.equals(Buffer.concat([first.subarray(0, 3 * unit), second])));
      await store.remove(location);
    });

    test('an empty append at an offset, then finishing there, leaves exactly that many bytes', async (t) => {
      const { store } = await storesForThisTest(t);
      const data = randomBytes(6 * unit + 5);
      const location = await store.create(placement());
      await appendAll(store, location, data, [data.length]);
      // A deferred-length upload finished with Upload-Length at its recorded offset, bytes stored past it.
      const length = 2 * unit + 1;
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
      const data = randomBytes(3 * unit + 7);
      const location = await store.create(placement());
      await appendAll(store, location, data, [data.length]);
      const length = 3 * unit;
      await finish(store, location, length);
      const stored = await collect(await store.read(location));
      assert.equal(stored.length, length);
      assert.ok(stored.equals(data.subarray(0, length)));
      await store.remove(location);
    });

    test('instances take turns on one upload, each continuing where the other stopped', async (t) => {
      const { store, twin } = await storesForThisTest(t);
      const data = randomBytes(11 * unit + 5);
      const location = await store.create(placement());
      const turns: [DataStore, number][] = [
        [store, 6 * unit + 1],
        [twin, 2 * unit],
        [store, unit],
        [twin, 2 * unit + 4],
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
      const pieces = [randomBytes(2 * unit), randomBytes(5 * unit + 3), randomBytes(0), randomBytes(9)];
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
      const data = randomBytes(6 * unit);
      const unfinished = await store.create(placement());
      await appendAll(store, unfinished, data, [6 * unit]);
      const finished = await store.create(placement());
      await appendAll(store, finished, data, [6 * unit]);
      await finish(store, finished, data.length);
      for (const location of [unfinished, finished]) {
        await store.remove(location);
        await store.remove(location);
        await assert.rejects(async () => collect(await store.read(location)));
      }
    });
  });
}
