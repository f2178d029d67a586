/**
 * A tail object shorter than the bytes recorded in it, with no part past it (seen once under load: an empty
 * tail where an append had stored 3 bytes), is reported as what it is, not as a rebuild that then fails on a
 * part that was never sent; and the error changes nothing stored: the upload finishes once the tail is back.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3DataStore } from '../../../src/storage/s3.ts';
import {
  s3Connection as connection,
  pendingMultipartUploads,
  removeObjects,
  s3,
  s3Bucket,
  s3Unavailable,
} from '../../support/s3.ts';

const MiB = 1024 * 1024;
const tuning = { partSize: 5 * MiB, partConcurrency: 2, concatConcurrency: 2, bufferDir: undefined };

describe('S3 store: a tail shorter than the bytes recorded in it', { skip: await s3Unavailable() }, () => {
  const folder = `short-tail-${randomUUID()}`;
  after(async () => {
    await removeObjects(`${folder}/`);
    await removeObjects(`.wharf-tails/${folder}/`);
  });

  it('finishing says the tail lost bytes and no part holds them, and loses nothing stored', async () => {
    const store = new S3DataStore({ connection, ...tuning, dirStructure: folder, env: {} });
    await store.prepare();
    const key = await store.create({ id: randomUUID(), createdAt: Date.now() });
    const data = randomBytes(5 * MiB + 3);
    const result = await store.append(key, 0, Readable.from([data]));
    assert.deepEqual(result, { bytesWritten: data.length });
    // Part 1 holds the first 5 MiB; the tail at 5 MiB should hold 3 bytes: it is emptied, as was seen.
    const tail = `.wharf-tails/${key}/${5 * MiB}`;
    const put = (body: Buffer) =>
      s3.send(new PutObjectCommand({ Bucket: s3Bucket, Key: tail, Body: body, ContentLength: body.length }));
    await put(Buffer.alloc(0));

    await assert.rejects(store.finish(key, data.length), (error: Error) => {
      assert.match(
        error.message,
        /tail at 5242880 holds 0 bytes where 3 were stored, and no part holds the rest/,
      );
      return true;
    });
    // Nothing was laid out again: the multipart upload with part 1 is still there, no object at the key.
    assert.deepEqual(await pendingMultipartUploads(key), [key]);
    assert.equal(await store.isFinished(key, data.length), false);

    // Positive control: with its 3 bytes back, the same upload finishes with every byte.
    await put(data.subarray(5 * MiB));
    await store.finish(key, data.length);
    const object = await s3.send(new GetObjectCommand({ Bucket: s3Bucket, Key: key }));
    const got = Buffer.from(
      await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    assert.ok(got.equals(data), 'the finished object holds exactly the bytes appended');
    await store.remove(key);
  });
});
