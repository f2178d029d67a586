/**
 * Issue 17, point 1 for the S3 stores: bytes a previous attempt stored past the recorded offset (a process
 * killed mid-PATCH, on another instance) never reach the finished object, which is exactly the bytes recorded.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FileDataStore } from '../../../src/storage/file.ts';
import { HybridS3DataStore } from '../../../src/storage/hybrid-s3.ts';
import { S3DataStore } from '../../../src/storage/s3.ts';
import {
  s3Connection as connection,
  listKeys,
  objectSha256,
  removeObjects,
  s3Unavailable,
} from '../../support/s3.ts';

const MiB = 1024 * 1024;
const tuning = { partSize: 5 * MiB, partConcurrency: 2, concatConcurrency: 2, bufferDir: undefined };
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('S3 stores: what a cut attempt stored past the recorded offset', {
  skip: await s3Unavailable(),
}, () => {
  const folder = `leftovers-${randomUUID()}`;
  let root: string;
  const s3Store = async (): Promise<S3DataStore> => {
    const store = new S3DataStore({ connection, ...tuning, dirStructure: folder, env: {} });
    await store.prepare();
    return store;
  };
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'wharf-leftovers-'));
  });
  after(async () => {
    await removeObjects(`${folder}/`);
    await removeObjects(`.wharf-tails/${folder}/`);
    await rm(root, { recursive: true, force: true });
  });

  async function appendAll(
    store: S3DataStore | HybridS3DataStore,
    key: string,
    offset: number,
    bytes: Buffer,
  ) {
    const result = await store.append(key, offset, Readable.from([bytes]));
    assert.equal(result.error, undefined);
    assert.equal(result.bytesWritten, bytes.length);
  }

  it('s3: a part and a tail another instance stored past the offset are not in the finished object', async () => {
    const [first, other] = [await s3Store(), await s3Store()];
    const key = await first.create({ id: randomUUID(), createdAt: Date.now() });
    const recorded = randomBytes(1 * MiB);
    await appendAll(first, key, 0, recorded);
    // The cut attempt, on another instance: a whole part and a tail past the recorded offset; never recorded.
    await appendAll(other, key, recorded.length, randomBytes(6 * MiB));
    // The retry on the first instance (its kept tail ends at the recorded offset) sends other bytes.
    const rest = randomBytes(700 * 1024);
    await appendAll(first, key, recorded.length, rest);
    const length = recorded.length + rest.length;
    // The stored bytes end where the retry ended (what a record rebuilt from its copy resumes from).
    assert.equal((await first.stored(key)).length, length);
    await first.finish(key, length);
    assert.deepEqual(await objectSha256(key), {
      sha256: sha256(Buffer.concat([recorded, rest])),
      size: length,
    });
    assert.deepEqual(await listKeys(`.wharf-tails/${key}/`), []);
  });

  it('s3: a deferred length finished at the recorded offset drops what was stored past it', async () => {
    const [first, other] = [await s3Store(), await s3Store()];
    const key = await first.create({ id: randomUUID(), createdAt: Date.now() });
    const recorded = randomBytes(5 * MiB + 100 * 1024);
    await appendAll(first, key, 0, recorded);
    await appendAll(other, key, recorded.length, randomBytes(5 * MiB));
    // Upload-Length equal to the offset, with an empty body, on a third instance.
    const third = await s3Store();
    await appendAll(third, key, recorded.length, Buffer.alloc(0));
    await third.finish(key, recorded.length);
    assert.deepEqual(await objectSha256(key), { sha256: sha256(recorded), size: recorded.length });
  });

  it('s3: a discarded chunk is cut back, so the stored bytes end at the offset again', async () => {
    const store = await s3Store();
    const key = await store.create({ id: randomUUID(), createdAt: Date.now() });
    const recorded = randomBytes(5 * MiB + 200 * 1024);
    await appendAll(store, key, 0, recorded);
    // A chunk within the part (its tail rewritten longer), then one across a part boundary.
    for (const discarded of [1 * MiB, 6 * MiB]) {
      await appendAll(store, key, recorded.length, randomBytes(discarded));
      assert.equal((await store.stored(key)).length, recorded.length + discarded);
      await store.truncate(key, recorded.length);
      // What a record rebuilt from its copy would resume from.
      assert.equal((await store.stored(key)).length, recorded.length);
    }
    await store.finish(key, recorded.length);
    assert.deepEqual(await objectSha256(key), { sha256: sha256(recorded), size: recorded.length });
  });

  it('hybrid-s3: bytes past the offset in the local file are not sent to the bucket', async () => {
    const hybrid = new HybridS3DataStore({
      connection,
      ...tuning,
      local: new FileDataStore({ directory: root, dirStructure: folder, fsync: false, env: {} }),
      dirStructure: folder,
    });
    await hybrid.prepare();
    const key = await hybrid.create({ id: randomUUID(), createdAt: Date.now() });
    const recorded = randomBytes(2 * MiB);
    await appendAll(hybrid, key, 0, recorded);
    await appendAll(hybrid, key, recorded.length, randomBytes(1 * MiB));
    await hybrid.finish(key, recorded.length);
    assert.deepEqual(await objectSha256(key), { sha256: sha256(recorded), size: recorded.length });
    await hybrid.close();
  });
});
