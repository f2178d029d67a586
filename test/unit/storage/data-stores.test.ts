import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AzureDataStore } from '../../../src/storage/azure.ts';
import { AzureContainer } from '../../../src/storage/azure-container.ts';
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
import { s3Bucket, s3Unavailable, s3Url } from '../../support/s3.ts';

const MiB = 1024 * 1024;
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

describeDataStore('file', async () => {
  const store = files('file');
  await store.prepare();
  return { store, twin: files('file') };
});

const connection = {
  endpoint: s3Url,
  bucket: s3Bucket,
  region: 'us-east-1',
  credentials: {
    accessKeyId: process.env.WHARF_TEST_S3_ACCESS_KEY ?? 'wharf-test',
    secretAccessKey: process.env.WHARF_TEST_S3_SECRET_KEY ?? 'wharf-test-secret',
  },
  profile: undefined,
  forcePathStyle: true,
  headers: {},
};
const tuning = { partSize: 5 * MiB, partConcurrency: 2, concatConcurrency: 4, bufferDir: undefined };
/** Looks at the multipart uploads directly, not through the store. */
const s3Parts = await S3Bucket.connect(connection);
after(() => s3Parts.close());

if ((await s3Unavailable()) === undefined) {
  describeDataStore('s3', async () => {
    const make = async () => {
      const store = new S3DataStore({ connection, ...tuning, dirStructure: 'contract', env: {} });
      await store.prepare();
      return store;
    };
    return { store: await make(), twin: await make() };
  });

  describeDataStore('hybrid-s3', async () => {
    const make = async () => {
      const store = new HybridS3DataStore({ connection, ...tuning, local: files('hybrid') });
      await store.prepare();
      return store;
    };
    return { store: await make(), twin: await make() };
  });
}

if ((await gcsUnavailable()) === undefined) {
  const prefix = `contract-${process.pid}-${Date.now()}/`;
  describeDataStore('gcs', async () => {
    const make = async () => {
      const bucket = new GcsBucket({
        bucket: gcsBucket,
        endpoint: gcsUrl,
        projectId: 'wharf',
        keyFile: undefined,
      });
      const store = new GcsDataStore({
        bucket,
        prefix,
        pieceSize: 5 * MiB,
        pieceConcurrency: 2,
        bufferDir: undefined,
        dirStructure: 'contract',
        env: {},
      });
      await store.prepare();
      return store;
    };
    return { store: await make(), twin: await make() };
  });
}

if ((await azureUnavailable()) === undefined) {
  const prefix = `contract-${process.pid}-${Date.now()}/`;
  describeDataStore('azure', async () => {
    const make = async () => {
      const container = new AzureContainer({
        container: azureContainerName,
        endpoint: azureUrl,
        account: azureAccount,
        key: azureKey,
        sas: undefined,
        connectionString: undefined,
      });
      const store = new AzureDataStore({
        container,
        prefix,
        blockSize: 4 * MiB,
        blockConcurrency: 2,
        bufferDir: undefined,
        dirStructure: 'contract',
        env: {},
      });
      await store.prepare();
      return store;
    };
    return { store: await make(), twin: await make() };
  });
}

describe('gcs data store', { skip: await gcsUnavailable() }, () => {
  it('composes more pieces than one compose request takes (32), in order', async () => {
    const bucket = new GcsBucket({
      bucket: gcsBucket,
      endpoint: gcsUrl,
      projectId: 'wharf',
      keyFile: undefined,
    });
    const store = new GcsDataStore({
      bucket,
      prefix: `compose-${process.pid}-${Date.now()}/`,
      pieceSize: 64 * 1024,
      pieceConcurrency: 4,
      bufferDir: undefined,
      dirStructure: '',
      env: {},
    });
    await store.prepare();
    // 70 pieces of 64 KiB and a short one: three compose requests, then one more of their results.
    const data = randomBytes(70 * 64 * 1024 + 5);
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

describe('s3 data store', { skip: await s3Unavailable() }, () => {
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
});
