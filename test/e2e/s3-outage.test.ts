import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackendProxy, startBackendProxy } from '../support/backend-proxy.ts';
import { createUpload, octets, send, tus as tusHeaders } from '../support/http.ts';
import { s3Args, s3SecretKey, s3Unavailable, s3Url } from '../support/s3.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const MiB = 1024 * 1024;

/** Sends `first`, waits until it is written, calls `between`, then sends `rest`; resolves with the status or the error. */
function patchWithPause(
  url: string,
  offset: number,
  first: Buffer,
  rest: Buffer,
  between: () => Promise<void>,
): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'PATCH',
      headers: {
        ...tusHeaders,
        ...octets,
        'Upload-Offset': offset,
        'Content-Length': first.length + rest.length,
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error) => resolve(error));
    req.write(first, () => {
      between().then(
        () => req.end(rest),
        (error: unknown) => req.destroy(error as Error),
      );
    });
  });
}

describe('s3 storage when S3 goes away mid-upload', { skip: await s3Unavailable() }, () => {
  // S3 goes away behind a proxy of this test's own, so the server the other suites share keeps running.
  let proxy: BackendProxy;
  let wharf: WharfProcess;

  before(async () => {
    proxy = await startBackendProxy(Number(new URL(s3Url).port));
    const setup = s3Args('s3', ['--s3-url', `http://127.0.0.1:${proxy.port}`, '--s3-part-size', '5MiB']);
    wharf = await startWharf({ args: setup.args });
  });
  after(async () => {
    await wharf?.stop();
    await proxy?.close();
  });

  it('keeps what was stored before the outage and resumes once S3 is back', async () => {
    const data = randomBytes(40 * MiB);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': data.length });
    const first = await send('PATCH', url, {
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0 },
      body: data.subarray(0, 12 * MiB),
    });
    assert.equal(first.status, 204);

    const outcome = await patchWithPause(
      url,
      12 * MiB,
      data.subarray(12 * MiB, 23 * MiB),
      data.subarray(23 * MiB, 32 * MiB),
      async () => {
        proxy.cut();
      },
    );
    assert.notEqual(outcome, 204, 'a PATCH whose bytes could not be stored is not acknowledged');

    // The record survived (it is not in S3) and says how far the stored bytes go.
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.status, 200);
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset >= 12 * MiB && offset <= 32 * MiB, `offset ${offset}`);
    // /health says which backend is down, and readiness fails until it is back.
    const down = await send('GET', `${wharf.origin}/health`);
    assert.equal(down.status, 503);
    assert.equal(JSON.parse(down.text).backends.s3.status, 'down');

    proxy.restore();
    const up = await send('GET', `${wharf.origin}/health`);
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.text), { status: 'ok', backends: { s3: { status: 'ok' } } });
    const rest = await send('PATCH', url, {
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': offset },
      body: data.subarray(offset),
    });
    assert.equal(rest.status, 204, rest.text);
    const download = await send('GET', url);
    assert.equal(download.status, 200);
    assert.equal(
      createHash('sha256').update(download.body).digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
    // The failure was logged, without the secret key.
    const logged = JSON.stringify(wharf.logs);
    assert.match(logged, /"level":50/);
    assert.ok(!logged.includes(s3SecretKey));
  });

  it('a HEAD that asks for the lock while a PATCH still waits on S3, before its body is read, is not lost', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
    // What may be the last chunk first looks in S3 for a sealed object (a cut finish), holding the lock: S3 hangs.
    proxy.hang();
    const patching = request(url, {
      method: 'PATCH',
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0, 'Content-Length': 10 },
    });
    const patched = new Promise<number | Error>((resolve) => {
      patching.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      patching.on('error', (error) => resolve(error));
    });
    patching.write('01234');
    await sleep(500);
    // The client reconnects and asks where to resume; then S3 answers the look, and the body is read.
    const head = send('HEAD', url, { headers: tusHeaders });
    await sleep(300);
    proxy.restore();
    // The PATCH's client sends nothing more: the body gives way once quiet (its 5 bytes kept), as it would
    // have, had the HEAD come once the body was being read. Lost, the request left the HEAD waiting for the lock.
    const answer = await head;
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['upload-offset'], '5');
    assert.equal(await patched, 400);
    patching.destroy();
  });

  it('a deferred length declared at the offset is recorded only once the object is sealed', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': '1' });
    const patch = (headers: Record<string, string | number>, body: string) =>
      send('PATCH', url, { headers: { ...tusHeaders, ...octets, ...headers }, body });
    assert.equal((await patch({ 'Upload-Offset': 0 }, 'hello')).status, 204);
    // tus-js-client's last request for a stream: an empty PATCH declaring the length it reached. S3 refuses the
    // completion of the multipart upload (the seal).
    proxy.dropOn('CompleteMultipartUpload');
    let declared: Awaited<ReturnType<typeof patch>>;
    try {
      declared = await patch({ 'Upload-Offset': 5, 'Upload-Length': 5 }, '');
    } finally {
      proxy.restore();
    }
    assert.equal(declared.status, 500, declared.text);
    // Not complete: the record must not say so before the object exists, or nothing would ever seal it.
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-defer-length'], '1');
    assert.equal(head.headers['upload-offset'], '5');
    // The client's retry seals it, and the upload downloads.
    assert.equal((await patch({ 'Upload-Offset': 5, 'Upload-Length': 5 }, '')).status, 204);
    const download = await send('GET', url);
    assert.equal(download.status, 200, download.text);
    assert.equal(download.text, 'hello');
  });
});
