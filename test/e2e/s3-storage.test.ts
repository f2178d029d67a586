import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  headOffset,
  idOf,
  offsetAfterDrop,
  patch,
  patchThenDrop,
  sendChunks,
  sha256,
  uploadWithTusJs,
} from '../support/chunked-upload.ts';
import { createUpload, send, tus as tusHeaders } from '../support/http.ts';
import {
  listKeys,
  objectMetadata,
  objectSha256,
  pendingMultipartUploads,
  removeObjects,
  s3Args,
  s3SecretKey,
  s3Unavailable,
} from '../support/s3.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const MiB = 1024 * 1024;
const unavailable = await s3Unavailable();

// The tests use uploads (and extra processes) of their own: they run at once, their S3 calls overlapping.
describe('s3 storage against a real S3 server', { skip: unavailable, concurrency: true }, () => {
  let wharf: WharfProcess;
  /**
   * A second process on the same bucket, folder and info folder, with --s3-headers: one test continues there an
   * upload the first process started, another checks the headers it sends. Each uses an upload of its own.
   */
  let other: WharfProcess;
  let folder: string;

  before(async () => {
    // 5 MiB parts, so "exactly 5 MiB" chunks fill exactly one part.
    const setup = s3Args('s3', ['--s3-part-size', '5MiB', '--allow-empty']);
    folder = setup.folder;
    wharf = await startWharf({ args: setup.args });
    const second = s3Args('s3', [
      '--s3-part-size',
      '5MiB',
      '--s3-headers',
      '{"x-amz-meta-uploaded-by":"wharf-test"}',
      '--dir-structure',
      folder,
    ]);
    other = await startWharf({ args: second.args, dataDir: wharf.dataDir });
  });
  after(async () => {
    await other?.stop();
    await wharf?.stop();
    await removeObjects(`${folder}/`);
  });

  it('stores chunks below 5 MiB, exactly 5 MiB and a tiny tail, and serves the object with Range', async () => {
    const sizes = [1 * MiB, 3 * MiB, 5 * MiB, 1 * MiB, 5 * MiB, 2 * MiB + 17, 100];
    const total = sizes.reduce((sum, size) => sum + size, 0);
    const data = randomBytes(total);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': total });
    const key = `${folder}/${idOf(url)}`;

    const before = await sendChunks(url, data, sizes.slice(0, 3));
    // Mid-way: two parts' worth sent, nothing visible at the key yet, one multipart upload pending.
    assert.equal(await headOffset(url), before);
    assert.deepEqual(await listKeys(key), []);
    assert.deepEqual(await pendingMultipartUploads(key), [key]);

    await sendChunks(url, data, sizes.slice(3), before);
    assert.equal(await headOffset(url), total);
    const stored = await objectSha256(key);
    assert.equal(stored.size, total);
    assert.equal(stored.sha256, sha256(data));
    assert.deepEqual(await pendingMultipartUploads(key), []);
    assert.deepEqual(await listKeys(`.wharf-tails/${key}/`), [], 'no temporary tail objects left');

    const whole = await send('GET', url);
    assert.equal(whole.status, 200);
    assert.equal(sha256(whole.body), sha256(data));
    const start = 5 * MiB - 10;
    const end = 10 * MiB + 9;
    const ranged = await send('GET', url, { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], `bytes ${start}-${end}/${total}`);
    assert.ok(ranged.body.equals(data.subarray(start, end + 1)));
    const suffix = await send('GET', url, { headers: { Range: 'bytes=-100' } });
    assert.equal(suffix.status, 206);
    assert.ok(suffix.body.equals(data.subarray(total - 100)));
  });

  it('keeps the bytes of a PATCH whose connection dropped, and the client resumes from there', async () => {
    // One whole 5 MiB part and a tail sent before the drop: what must be kept crosses a part boundary.
    const data = randomBytes(8 * MiB);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': data.length });
    const key = `${folder}/${idOf(url)}`;
    const sent = 6 * MiB + 777;
    // The client goes away mid-body, after its bytes reached the server's socket.
    await patchThenDrop(url, data, sent);
    const offset = await offsetAfterDrop(url);
    assert.ok(offset >= MiB && offset <= sent, `offset ${offset} after ${sent} bytes sent`);
    await sendChunks(url, data, [data.length - offset], offset);
    assert.equal((await objectSha256(key)).sha256, sha256(data));
  });

  it('discards a chunk whose checksum does not match, even one that crossed a part boundary', async () => {
    const total = 12 * MiB;
    const data = randomBytes(total);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': total });
    const key = `${folder}/${idOf(url)}`;
    await sendChunks(url, data, [3 * MiB]);

    const chunk = data.subarray(3 * MiB, 9 * MiB);
    const wrong = createHash('sha256').update('not these bytes').digest('base64');
    const refused = await patch(url, 3 * MiB, chunk, { 'Upload-Checksum': `sha256 ${wrong}` });
    assert.equal(refused.status, 460);
    assert.equal(await headOffset(url), 3 * MiB);

    // The same bytes, this time with a different prefix: what was refused must not leak into the object.
    const other = randomBytes(6 * MiB);
    const refusedAgain = await patch(url, 3 * MiB, other, { 'Upload-Checksum': `sha256 ${wrong}` });
    assert.equal(refusedAgain.status, 460);

    const right = createHash('sha256').update(chunk).digest('base64');
    const accepted = await patch(url, 3 * MiB, chunk, { 'Upload-Checksum': `sha256 ${right}` });
    assert.equal(accepted.status, 204);
    assert.equal(accepted.offset, String(9 * MiB));
    await sendChunks(url, data, [3 * MiB], 9 * MiB);
    const stored = await objectSha256(key);
    assert.equal(stored.sha256, sha256(data));
    assert.deepEqual(await pendingMultipartUploads(key), []);
  });

  it('terminates unfinished and finished uploads, leaving no object and no pending multipart upload', async () => {
    const total = 20 * MiB;
    // The bytes sent: 12 MiB and 3 of the unfinished upload (its declared length stays 20 MiB), 6 MiB of the other.
    const data = randomBytes(12 * MiB + 3);
    const unfinished = await createUpload(wharf.endpoint, { 'Upload-Length': total });
    const unfinishedKey = `${folder}/${idOf(unfinished)}`;
    await sendChunks(unfinished, data, [7 * MiB, 5 * MiB + 3]);
    assert.deepEqual(await pendingMultipartUploads(unfinishedKey), [unfinishedKey]);
    assert.notDeepEqual(await listKeys(`.wharf-tails/${unfinishedKey}/`), []);

    const finished = await createUpload(wharf.endpoint, { 'Upload-Length': 6 * MiB });
    const finishedKey = `${folder}/${idOf(finished)}`;
    await sendChunks(finished, data, [6 * MiB]);
    assert.deepEqual(await listKeys(finishedKey), [finishedKey]);

    for (const url of [unfinished, finished]) {
      const reply = await send('DELETE', url, { headers: tusHeaders });
      assert.equal(reply.status, 204);
      assert.equal((await send('HEAD', url, { headers: tusHeaders })).status, 404);
    }
    for (const key of [unfinishedKey, finishedKey]) {
      assert.deepEqual(await listKeys(key), []);
      assert.deepEqual(await listKeys(`.wharf-tails/${key}/`), []);
      assert.deepEqual(await pendingMultipartUploads(key), []);
    }
  });

  it('concatenates partial uploads of every size into one object', async () => {
    const pieces = [randomBytes(1 * MiB + 5), randomBytes(6 * MiB), randomBytes(17), randomBytes(11 * MiB)];
    const partUrls: string[] = [];
    for (const piece of pieces) {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': piece.length,
        'Upload-Concat': 'partial',
      });
      await sendChunks(url, piece, [piece.length]);
      partUrls.push(url);
    }
    const final = await createUpload(wharf.endpoint, {
      'Upload-Concat': `final;${partUrls.map((url) => new URL(url).pathname).join(' ')}`,
    });
    const expected = Buffer.concat(pieces);
    assert.equal(await headOffset(final), expected.length);
    const key = `${folder}/${idOf(final)}`;
    const stored = await objectSha256(key);
    assert.equal(stored.size, expected.length);
    assert.equal(stored.sha256, sha256(expected));
    assert.deepEqual(await pendingMultipartUploads(key), []);
    const download = await send('GET', final);
    assert.equal(sha256(download.body), sha256(expected));
  });

  it('finishes a deferred-length upload when the last PATCH declares the length', async () => {
    const data = randomBytes(7 * MiB + 3);
    const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': 1 });
    const key = `${folder}/${idOf(url)}`;
    await sendChunks(url, data, [6 * MiB]);
    const last = await patch(url, 6 * MiB, data.subarray(6 * MiB), { 'Upload-Length': String(data.length) });
    assert.equal(last.status, 204);
    assert.equal(last.offset, String(data.length));
    assert.equal((await objectSha256(key)).sha256, sha256(data));
  });

  it('stores an empty upload as an empty object', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 0 });
    const key = `${folder}/${idOf(url)}`;
    assert.deepEqual(await objectSha256(key), { sha256: sha256(Buffer.alloc(0)), size: 0 });
  });

  it('receives a tus-js-client upload in 6 MiB chunks over several 5 MiB parts and a tail', async () => {
    // 16 MiB and 7 bytes: three chunks, each crossing a part boundary, the last ending in a tail.
    const data = randomBytes(16 * MiB + 7);
    const url = await uploadWithTusJs(wharf.endpoint, data);
    const key = `${folder}/${idOf(url)}`;
    const stored = await objectSha256(key);
    assert.equal(stored.size, data.length);
    assert.equal(stored.sha256, sha256(data));
    assert.deepEqual(await pendingMultipartUploads(key), []);
  });

  it('lets a second Wharf process continue an upload the first one started', async () => {
    // Same bucket and folder, same info folder: the second process has nothing of the first in memory.
    const total = 13 * MiB + 7;
    const data = randomBytes(total);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': total });
    const key = `${folder}/${idOf(url)}`;
    const half = await sendChunks(url, data, [3 * MiB, 4 * MiB]);
    const elsewhere = new URL(new URL(url).pathname, other.origin).toString();
    assert.equal(await headOffset(elsewhere), half);
    await sendChunks(elsewhere, data, [total - half], half);
    const stored = await objectSha256(key);
    assert.equal(stored.sha256, sha256(data));
  });

  it('sends --s3-headers with every request (here: metadata the finished object keeps)', async () => {
    const data = randomBytes(9 * MiB);
    const url = await createUpload(other.endpoint, { 'Upload-Length': data.length });
    await sendChunks(url, data, [2 * MiB, 7 * MiB]);
    const key = `${folder}/${idOf(url)}`;
    assert.equal((await objectSha256(key)).sha256, sha256(data));
    assert.equal((await objectMetadata(key))['uploaded-by'], 'wharf-test');
  });

  it('never logs the S3 secret key', () => {
    assert.ok(wharf.logs.length > 0);
    assert.ok(!JSON.stringify(wharf.logs).includes(s3SecretKey));
  });

  it('refuses to start when the bucket does not exist, saying why', async () => {
    const setup = s3Args('s3', ['--s3-bucket', 'wharf-no-such-bucket']);
    await assert.rejects(
      startWharf({ args: setup.args }),
      /exited with 1 before listening: .*S3 bucket "wharf-no-such-bucket" cannot be used: it does not exist/s,
    );
  });
});

describe('hybrid-s3 storage against a real S3 server', { skip: unavailable, concurrency: true }, () => {
  let wharf: WharfProcess;
  let folder: string;

  before(async () => {
    const setup = s3Args('hybrid-s3');
    folder = setup.folder;
    wharf = await startWharf({ args: setup.args });
  });
  after(async () => {
    await wharf?.stop();
    await removeObjects(`${folder}/`);
  });

  it('keeps chunks on disk and sends the finished file to the bucket', async () => {
    // Above the 8 MiB default part size: the finished file goes to the bucket in two parts.
    const total = 9 * MiB + 3;
    const data = randomBytes(total);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': total });
    const id = idOf(url);
    const key = `${folder}/${id}`;
    await sendChunks(url, data, [2 * MiB, 5 * MiB]);
    assert.deepEqual(await listKeys(key), [], 'nothing in the bucket before the upload finishes');
    assert.ok((await readdir(`${wharf.dataDir}/${folder}`)).includes(id), 'chunks are on local disk');

    await sendChunks(url, data, [total - 7 * MiB], 7 * MiB);
    const stored = await objectSha256(key);
    assert.equal(stored.size, total);
    assert.equal(stored.sha256, sha256(data));
    assert.ok(!(await readdir(`${wharf.dataDir}/${folder}`)).includes(id), 'the local copy is removed');
    assert.deepEqual(await pendingMultipartUploads(key), []);

    const ranged = await send('GET', url, { headers: { Range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(data.subarray(100, 200)));

    assert.equal((await send('DELETE', url, { headers: tusHeaders })).status, 204);
    assert.deepEqual(await listKeys(key), []);
  });

  it('stores an empty upload as an empty object', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 0 });
    const key = `${folder}/${idOf(url)}`;
    assert.deepEqual(await objectSha256(key), { sha256: sha256(Buffer.alloc(0)), size: 0 });
  });
});
