import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
} from '@aws-sdk/client-s3';
import { AzureDataStore } from '../../../src/storage/azure.ts';
import { AzureContainer } from '../../../src/storage/azure-container.ts';
import type { DataStore } from '../../../src/storage/data-store.ts';
import { FileDataStore } from '../../../src/storage/file.ts';
import { GcsDataStore } from '../../../src/storage/gcs.ts';
import { GcsBucket } from '../../../src/storage/gcs-bucket.ts';
import { HybridS3DataStore } from '../../../src/storage/hybrid-s3.ts';
import { S3DataStore } from '../../../src/storage/s3.ts';
import { S3Bucket } from '../../../src/storage/s3-bucket.ts';
import { describeDataStore } from '../../contract/data-store.ts';
import {
  azureAccount,
  azureContainerName,
  azureKey,
  azureUnavailable,
  azureUrl,
} from '../../support/azure.ts';
import { gcsBucket, gcsUnavailable, gcsUrl } from '../../support/gcs.ts';
import { s3Connection as connection, listKeys, s3, s3Bucket, s3Unavailable } from '../../support/s3.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/**
 * Each store's unit of size for the contract (its sizes straddle 5 units), the smallest its own smallest part
 * allows. S3 (and hybrid-s3) keep 1 MiB: 5 MiB is the smallest part S3 takes. GCS pieces of 5 units = 320 KiB
 * are above the 256 KiB --gcs-part-size takes, and Azure blocks of 4 units are the 1 MiB --azure-block-size takes
 * (4 units as with MiB). A file has no parts, but gathers a body into writes of up to 1 MiB: with a quarter MiB,
 * the contract's appends of 4 units and more still span more than one write.
 */
const units = { s3: MiB, file: 256 * KiB, gcs: 64 * KiB, azure: 256 * KiB };
let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'wharf-stores-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function files(folder: string): FileDataStore {
  return new FileDataStore({
    directory: path.join(root, folder),
    dirStructure: '',
    fsync: false,
    env: {},
    idleFiles: 64,
  });
}

/**
 * Runs the data store contract on two instances of a store on the same backend, as two Wharf processes would
 * have them.
 */
function describeTwinStores(name: string, unit: number, build: () => DataStore): void {
  describeDataStore(
    name,
    async () => {
      const make = async () => {
        const store = build();
        await store.prepare();
        return store;
      };
      return { store: await make(), twin: await make() };
    },
    { unit },
  );
}

function gcsTestBucket(): GcsBucket {
  return new GcsBucket({ bucket: gcsBucket, endpoint: gcsUrl, projectId: 'wharf', keyFile: undefined });
}

const tuning = { partSize: 5 * MiB, partConcurrency: 2, concatConcurrency: 4, bufferDir: undefined };
/** Looks at the multipart uploads directly, not through the store. */
const s3Parts = await S3Bucket.connect(connection);
after(() => s3Parts.close());

const s3Down = await s3Unavailable();
const gcsDown = await gcsUnavailable();
const azureDown = await azureUnavailable();

// Every store at once (each test has uploads of its own); see the contract for how many of a store's tests.
describe('data stores', { concurrency: true }, () => {
  describeDataStore(
    'file',
    async () => {
      const store = files('file');
      await store.prepare();
      return { store, twin: files('file') };
    },
    { unit: units.file },
  );

  if (s3Down === undefined) {
    describeTwinStores(
      's3',
      units.s3,
      () => new S3DataStore({ connection, ...tuning, dirStructure: 'contract', env: {} }),
    );

    describeTwinStores(
      'hybrid-s3',
      units.s3,
      () => new HybridS3DataStore({ connection, ...tuning, local: files('hybrid') }),
    );
  }

  if (gcsDown === undefined) {
    const prefix = `contract-${process.pid}-${Date.now()}/`;
    describeTwinStores(
      'gcs',
      units.gcs,
      () =>
        new GcsDataStore({
          bucket: gcsTestBucket(),
          prefix,
          pieceSize: 5 * units.gcs,
          pieceConcurrency: 2,
          bufferDir: undefined,
          dirStructure: 'contract',
          env: {},
        }),
    );
  }

  if (azureDown === undefined) {
    const prefix = `contract-${process.pid}-${Date.now()}/`;
    describeTwinStores('azure', units.azure, () => {
      const container = new AzureContainer({
        container: azureContainerName,
        endpoint: azureUrl,
        account: azureAccount,
        key: azureKey,
        sas: undefined,
        connectionString: undefined,
      });
      return new AzureDataStore({
        container,
        prefix,
        blockSize: 4 * units.azure,
        blockConcurrency: 2,
        bufferDir: undefined,
        dirStructure: 'contract',
        env: {},
      });
    });
  }

  describe('gcs data store', { skip: gcsDown }, () => {
    it('composes more pieces than one compose request takes (32), in order', async () => {
      const bucket = gcsTestBucket();
      const store = new GcsDataStore({
        bucket,
        prefix: `compose-${process.pid}-${Date.now()}/`,
        pieceSize: 4 * KiB,
        pieceConcurrency: 4,
        bufferDir: undefined,
        dirStructure: '',
        env: {},
      });
      await store.prepare();
      // 70 pieces of 4 KiB and a short one: three compose requests, then one more of their results. What it takes
      // is the number of pieces, not their size (GCS has no smallest object).
      const data = randomBytes(70 * 4 * KiB + 5);
      const location = await store.create({ id: `many-${Date.now()}`, createdAt: Date.now() });
      const result = await store.append(location, 0, Readable.from([data]));
      assert.equal(result.error, undefined);
      assert.equal(result.bytesWritten, data.length);
      await store.finish(location, data.length);
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(location)) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(data));
      assert.deepEqual(await bucket.list(`${store.describe('.wharf-pieces')}`), [], 'no piece left');
      await store.remove(location);
    });
  });

  describe('s3 data store', { skip: s3Down }, () => {
    it('grows the part size as the upload grows (here every 2 parts), across instances, on a real S3 server', async () => {
      const make = async () => {
        const store = new S3DataStore({
          connection,
          ...tuning,
          partsPerSize: 2,
          dirStructure: 'contract',
          env: {},
        });
        await store.prepare();
        return store;
      };
      const [one, other] = [await make(), await make()];
      // Parts of 5, 5, 10, 10 and 20 MiB, then a tail: 53 MiB in uneven PATCHes that straddle the boundaries.
      const data = randomBytes(53 * MiB + 9);
      const location = await one.create({ id: `growth-${process.pid}-${Date.now()}`, createdAt: Date.now() });
      const cuts = [0, 7 * MiB, 21 * MiB + 3, 33 * MiB, data.length];
      for (let index = 1; index < cuts.length; index++) {
        const store = index % 2 === 1 ? one : other;
        const [from, to] = [cuts[index - 1] ?? 0, cuts[index] ?? 0];
        const result = await store.append(location, from, Readable.from([data.subarray(from, to)]));
        assert.equal(result.error, undefined);
        assert.equal(result.bytesWritten, to - from);
      }
      const [uploadId] = await s3Parts.multipartUploads(location);
      assert.ok(uploadId, 'a multipart upload is pending');
      const sizes = (await s3Parts.parts(location, uploadId)).map((part) => part.size / MiB);
      assert.deepEqual(sizes, [5, 5, 10, 10, 20]);
      await other.finish(location, data.length);
      const chunks: Buffer[] = [];
      for await (const chunk of await one.read(location)) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(data));
      await one.remove(location);
    });

    it('continues an upload after --s3-part-size changed, before and after the first part', async () => {
      const make = async (partSize: number) => {
        const store = new S3DataStore({ connection, ...tuning, partSize, dirStructure: 'contract', env: {} });
        await store.prepare();
        return store;
      };
      const large = await make(10 * MiB);
      const small = await make(5 * MiB);
      const data = randomBytes(23 * MiB + 1);
      const location = await large.create({
        id: `part-size-${process.pid}-${Date.now()}`,
        createdAt: Date.now(),
      });
      // 7 MiB: all in the tail; the smaller size must not look for a part that was never sent.
      const steps: [S3DataStore, number, number][] = [
        [large, 0, 7 * MiB],
        [small, 7 * MiB, 14 * MiB],
        [large, 14 * MiB, data.length],
      ];
      for (const [store, from, to] of steps) {
        const result = await store.append(location, from, Readable.from([data.subarray(from, to)]));
        assert.equal(result.error, undefined);
        assert.equal(result.bytesWritten, to - from);
      }
      await large.finish(location, data.length);
      const chunks: Buffer[] = [];
      for await (const chunk of await small.read(location)) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(data));
      await small.remove(location);
    });

    /** An upload of `data` sent in one append (parts and a tail), on a fresh store. */
    async function stored(data: Buffer): Promise<{ store: S3DataStore; location: string }> {
      const store = new S3DataStore({ connection, ...tuning, dirStructure: 'rebuild', env: {} });
      await store.prepare();
      const location = await store.create({
        id: `rebuild-${process.pid}-${randomBytes(6).toString('hex')}`,
        createdAt: 0,
      });
      const result = await store.append(location, 0, Readable.from([data]));
      assert.equal(result.error, undefined);
      return { store, location };
    }

    async function collect(source: AsyncIterable<unknown>): Promise<Buffer> {
      const chunks: Buffer[] = [];
      for await (const chunk of source) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }

    it('finishes below parts already uploaded with exactly the bytes below the length', async () => {
      const data = randomBytes(12 * MiB + 5);
      const { store, location } = await stored(data);
      // Parts 1 and 2 are in S3, the tail at 10 MiB; the record said 7 MiB + 3 (inside part 2).
      const length = 7 * MiB + 3;
      await store.finish(location, length);
      assert.ok((await collect(await store.read(location))).equals(data.subarray(0, length)));
      assert.deepEqual(await listKeys(`.wharf-tails/${location}/`), []);
      await store.remove(location);
    });

    it('cuts back below parts already uploaded to exactly the bytes below the offset', async () => {
      const data = randomBytes(11 * MiB + 9);
      const { store, location } = await stored(data);
      const length = 6 * MiB + 1;
      await store.truncate(location, length);
      assert.equal((await store.stored(location)).length, length);
      await store.finish(location, length);
      assert.ok((await collect(await store.read(location))).equals(data.subarray(0, length)));
      await store.remove(location);
    });

    it('continues after a rebuild was cut once the old parts became an object', async () => {
      const data = randomBytes(12 * MiB + 5);
      const { store, location } = await stored(data);
      // What a rebuild killed after its second step leaves: a new multipart upload, then the old one
      // completed into an object under the upload's key.
      const [old] =
        (
          await s3.send(new ListMultipartUploadsCommand({ Bucket: s3Bucket, Prefix: location }))
        ).Uploads?.filter((upload) => upload.Key === location) ?? [];
      assert.ok(old?.UploadId);
      await s3.send(new CreateMultipartUploadCommand({ Bucket: s3Bucket, Key: location }));
      const parts = await s3.send(
        new ListPartsCommand({ Bucket: s3Bucket, Key: location, UploadId: old.UploadId }),
      );
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: s3Bucket,
          Key: location,
          UploadId: old.UploadId,
          MultipartUpload: {
            Parts: (parts.Parts ?? []).map((part) => ({ PartNumber: part.PartNumber, ETag: part.ETag })),
          },
        }),
      );
      // An object as long as the upload, beside a multipart upload, is not a finished upload.
      assert.equal(await store.isFinished(location, 10 * MiB), false);
      const offset = 7 * MiB + 3;
      const more = randomBytes(4 * MiB);
      const result = await store.append(location, offset, Readable.from([more]));
      assert.equal(result.error, undefined);
      assert.equal(result.bytesWritten, more.length);
      await store.finish(location, offset + more.length);
      const expected = Buffer.concat([data.subarray(0, offset), more]);
      assert.ok((await collect(await store.read(location))).equals(expected));
      assert.equal(await store.isFinished(location, expected.length), true);
      await store.remove(location);
    });
  });
});
