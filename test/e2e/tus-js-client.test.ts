import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { downloadSha256, MiB, writeRandomFile } from '../support/bytes.ts';
import { cuttingProxy } from '../support/cutting-proxy.ts';
import { send, tus as tusHeaders } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * The unit of size of the tests that need several chunks, not many bytes: a quarter MiB (a chunk of 8 units is
 * 2 MiB), for a quarter of the bytes to make, send, store and hash. The cut-and-resume test stays in MiB: the
 * bytes in flight when the connection is cut (in the socket buffers between the proxy and the server) are lost,
 * they do not shrink with a unit, and what it checks is that the server kept bytes from before the cut.
 */
const unit = MiB / 4;

let wharf: WharfProcess;
let workDir: string;

before(async () => {
  wharf = await startWharf();
  workDir = await mkdtemp(path.join(tmpdir(), 'wharf-tusjs-'));
});
after(async () => {
  await wharf.stop();
  await rm(workDir, { recursive: true, force: true });
});

/** Writes `size` random bytes to a file in the work folder and returns its path and SHA-256. */
async function randomFile(name: string, size: number): Promise<{ file: string; sha256: string }> {
  const file = path.join(workDir, name);
  return { file, sha256: await writeRandomFile(file, size) };
}

function upload(input: tus.Upload['file'], options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const task = new tus.Upload(input, {
      retryDelays: [0, 100, 200, 500],
      ...options,
      onSuccess: () => resolve(task.url ?? ''),
      onError: reject,
    });
    task.start();
  });
}

// The tests at once: each has uploads of its own on the shared server.
describe('tus-js-client against the real server', { concurrency: true }, () => {
  it('uploads 40 units and 5 bytes in chunks of 8 units (a short last one) and downloads the same bytes', async () => {
    const size = 40 * unit + 5;
    const { file, sha256 } = await randomFile('big.bin', size);
    const url = await upload(createReadStream(file), {
      endpoint: wharf.endpoint,
      uploadSize: size,
      chunkSize: 8 * unit,
      metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
    });
    assert.equal(await downloadSha256(url), sha256);
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-offset'], String(size));
  });

  it('resumes after the connection is cut in the middle of a chunk', async () => {
    const { file, sha256 } = await randomFile('cut.bin', 24 * MiB);
    const proxy = await cuttingProxy(wharf.port, 12 * MiB);
    try {
      const progress: number[] = [];
      const url = await upload(createReadStream(file), {
        endpoint: `http://127.0.0.1:${proxy.port}/files/`,
        uploadSize: 24 * MiB,
        chunkSize: 16 * MiB,
        onProgress: (sent) => progress.push(sent),
      });
      assert.equal(proxy.cuts(), 1, 'the proxy cut one connection');
      const direct = url.replace(`127.0.0.1:${proxy.port}`, `127.0.0.1:${wharf.port}`);
      assert.equal(await downloadSha256(direct), sha256);
      const id = url.split('/').pop();
      const requests = wharf.logs.filter(
        (line) => line.msg === 'access' && String(line.url).includes(String(id)),
      );
      assert.ok(
        requests.some((line) => line.method === 'HEAD'),
        'the client asked where to resume',
      );
      const creations = wharf.logs.filter(
        (line) => line.msg === 'access' && line.method === 'POST' && line.status === 201,
      );
      assert.ok(creations.length >= 1);
      assert.equal((await stat(path.join(wharf.dataDir, String(id)))).size, 24 * MiB);
      // It resumed from what the server kept, not from zero: a restart would send all 24 MiB again after the cut.
      // (How much the server kept varies: bytes in flight when the connection is cut are lost.)
      assert.ok(
        proxy.forwardedAfterCut() < 24 * MiB,
        `forwarded ${proxy.forwardedAfterCut()} bytes after the cut`,
      );
    } finally {
      proxy.server.close();
    }
  });

  it('uploads in 4 parallel parts through concatenation', async () => {
    const { file, sha256 } = await randomFile('parallel.bin', 20 * unit + 3);
    // tus-js-client refuses `uploadSize` with parallel uploads, so it gets a Buffer whose size it knows.
    const url = await upload(await readFile(file), {
      endpoint: wharf.endpoint,
      chunkSize: 4 * unit,
      parallelUploads: 4,
    });
    assert.equal(await downloadSha256(url), sha256);
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.match(String(head.headers['upload-concat']), /^final;/);
    assert.equal(head.headers['upload-length'], String(20 * unit + 3));
  });

  it('sends the first chunk with the creation request (uploadDataDuringCreation)', async () => {
    const { file, sha256 } = await randomFile('creation.bin', 5 * unit + 17);
    const url = await upload(createReadStream(file), {
      endpoint: wharf.endpoint,
      uploadSize: 5 * unit + 17,
      chunkSize: 2 * unit,
      uploadDataDuringCreation: true,
    });
    assert.equal(await downloadSha256(url), sha256);
  });

  it('uploads a stream of unknown length (uploadLengthDeferred)', async () => {
    const { file, sha256 } = await randomFile('deferred.bin', 9 * unit + 5);
    // tus-js-client 4.3.1 stalls when a stream's last 'readable' comes before its end inside a chunk
    // (tus/tus-js-client#779), so the stream is made of two large pieces rather than a file stream.
    const bytes = await readFile(file);
    const url = await upload(Readable.from([bytes.subarray(0, 5 * unit), bytes.subarray(5 * unit)]), {
      endpoint: wharf.endpoint,
      uploadLengthDeferred: true,
      chunkSize: 4 * unit,
    });
    assert.equal(await downloadSha256(url), sha256);
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-length'], String(9 * unit + 5));
  });

  it('keeps non-ASCII metadata byte for byte and names the download after it', async () => {
    const url = await upload(Buffer.from('słońce'), {
      endpoint: wharf.endpoint,
      metadata: { filename: 'słońce.txt', filetype: 'text/plain' },
    });
    const head = await send('HEAD', url, { headers: tusHeaders });
    const pairs = String(head.headers['upload-metadata']).split(',');
    assert.ok(pairs.includes(`filename ${Buffer.from('słońce.txt').toString('base64')}`));
    const download = await send('GET', url);
    assert.equal(download.text, 'słońce');
    assert.match(String(download.headers['content-disposition']), /filename\*=UTF-8''s%C5%82o%C5%84ce\.txt/);
  });
});
