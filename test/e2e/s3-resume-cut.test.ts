/**
 * Issue 17, point 1 (S3): a PATCH killed after it sent a multipart part past the recorded offset leaves bytes
 * in the bucket that the record does not count. The client resumes at HEAD's offset on a new process; the
 * finished object must be exactly the uploaded bytes, with nothing of the cut PATCH's surplus.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import { downloadSha256, MiB } from '../support/bytes.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import {
  listKeys,
  pendingMultipartUploads,
  removeObjects,
  s3,
  s3Args,
  s3Bucket,
  s3Unavailable,
} from '../support/s3.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** Numbers of the parts uploaded so far to the key's multipart uploads. */
async function uploadedParts(key: string): Promise<number[]> {
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: s3Bucket, Prefix: key }));
  const numbers: number[] = [];
  for (const upload of uploads.Uploads ?? []) {
    if (upload.Key !== key) continue;
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: s3Bucket, Key: key, UploadId: upload.UploadId }),
    );
    for (const part of parts.Parts ?? []) if (part.PartNumber !== undefined) numbers.push(part.PartNumber);
  }
  return numbers;
}

describe('s3: resuming after a PATCH killed once it stored a part past the record', {
  skip: await s3Unavailable(),
}, () => {
  const setup = s3Args('s3', ['--s3-part-size', '5MiB']);
  const instances: WharfProcess[] = [];
  let dataDir: string | undefined;

  after(async () => {
    for (const wharf of instances) await wharf.stop('SIGKILL');
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    await removeObjects(`${setup.folder}/`);
    await removeObjects(`.wharf-tails/${setup.folder}/`);
  });

  it('finishes with exactly the uploaded bytes (sha256 of GET)', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'wharf-s3-resume-cut-'));
    dataDir = folder;
    const content = randomBytes(13 * MiB + 17);
    const start = async () => {
      const wharf = await startWharf({ dataDir: folder, args: [...setup.args, '--lock-ttl', '1'] });
      instances.push(wharf);
      return wharf;
    };
    const first = await start();
    const url = await createUpload(first.endpoint, { 'Upload-Length': content.length });
    const key = `${setup.folder}/${url.slice(url.lastIndexOf('/') + 1)}`;
    // Recorded: 3 MiB, in the tail of part 1.
    const recorded = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: content.subarray(0, 3 * MiB),
    });
    assert.equal(recorded.status, 204);

    // The next PATCH sends 8 MiB more (parts 1 and 2 complete, with different bytes than will be resent) and
    // stays open; the process is killed once both parts are in the bucket, so the record still says 3 MiB.
    const surplus = randomBytes(8 * MiB);
    const cut = request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...tus, ...octets, 'Upload-Offset': 3 * MiB, 'Content-Length': content.length - 3 * MiB },
    });
    cut.on('error', () => undefined);
    cut.write(surplus);
    for (const deadline = Date.now() + 30_000; (await uploadedParts(key)).length < 2; await sleep(50)) {
      if (Date.now() > deadline) throw new Error('the cut PATCH never stored its parts');
    }
    await first.stop('SIGKILL');
    cut.destroy();

    const second = await start();
    const resumeUrl = new URL(new URL(url).pathname, second.origin).toString();
    let head = await send('HEAD', resumeUrl, { headers: tus });
    // The killed instance's lock frees itself (--lock-ttl 1).
    for (
      const deadline = Date.now() + 10_000;
      head.status === 423 && Date.now() < deadline;
      await sleep(100)
    ) {
      head = await send('HEAD', resumeUrl, { headers: tus });
    }
    assert.equal(head.status, 200);
    const offset = Number(head.headers['upload-offset']);
    assert.equal(offset, 3 * MiB, 'the cut PATCH was never recorded');
    let reply = await send('PATCH', resumeUrl, {
      headers: { ...tus, ...octets, 'Upload-Offset': offset },
      body: content.subarray(offset),
    });
    for (
      const deadline = Date.now() + 10_000;
      reply.status === 423 && Date.now() < deadline;
      await sleep(100)
    ) {
      reply = await send('PATCH', resumeUrl, {
        headers: { ...tus, ...octets, 'Upload-Offset': offset },
        body: content.subarray(offset),
      });
    }
    assert.equal(reply.status, 204, reply.text);
    assert.equal(reply.headers['upload-offset'], String(content.length));
    assert.equal(await downloadSha256(resumeUrl), createHash('sha256').update(content).digest('hex'));
    assert.deepEqual(await listKeys(`.wharf-tails/${key}/`), []);
    assert.deepEqual(await pendingMultipartUploads(key), []);
  });
});
