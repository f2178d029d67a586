/**
 * tus-js-client 4.3.1 speaking the IETF draft (`protocol: 'ietf-draft-03'` sends interop version 5,
 * `'ietf-draft-05'` interop version 6) against the real `wharf` process: upload, interruption, resumption,
 * download by SHA-256.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { downloadSha256, MiB, writeRandomFile } from '../support/bytes.ts';
import { cuttingProxy } from '../support/cutting-proxy.ts';
import { send } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

let wharf: WharfProcess;
let workDir: string;

before(async () => {
  wharf = await startWharf();
  workDir = await mkdtemp(path.join(tmpdir(), 'wharf-ietf-tusjs-'));
});
after(async () => {
  await wharf.stop();
  await rm(workDir, { recursive: true, force: true });
});

/** 4.3.1 reads `protocol` at run time; its type declarations do not list it yet. */
type DraftUploadOptions = tus.UploadOptions & { readonly protocol: 'ietf-draft-03' | 'ietf-draft-05' };

function upload(input: tus.Upload['file'], options: DraftUploadOptions): Promise<string> {
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

/** The access-log lines of requests to one upload. */
function requestsTo(url: string): Record<string, unknown>[] {
  const id = url.split('/').pop();
  return wharf.logs.filter((line) => line.msg === 'access' && String(line.url).includes(String(id)));
}

const protocols = [
  { protocol: 'ietf-draft-03', interop: '5' },
  { protocol: 'ietf-draft-05', interop: '6' },
] as const;

describe('tus-js-client with its IETF draft protocol option', () => {
  for (const { protocol, interop } of protocols) {
    it(`${protocol} (interop ${interop}): uploads 6 MiB in 2 MiB appends; the download has the same SHA-256`, async () => {
      const file = path.join(workDir, `${protocol}.bin`);
      const sha256 = await writeRandomFile(file, 6 * MiB + 7);
      const url = await upload(createReadStream(file), {
        endpoint: wharf.endpoint,
        uploadSize: 6 * MiB + 7,
        chunkSize: 2 * MiB,
        protocol,
      });
      assert.equal(await downloadSha256(url), sha256);
      // It spoke the draft, not tus: the upload's HEAD in the draft says complete.
      const head = await send('HEAD', url, { headers: { 'Upload-Draft-Interop-Version': interop } });
      assert.equal(head.status, 204);
      assert.equal(head.headers['upload-complete'], '?1');
      assert.equal(head.headers['tus-resumable'], undefined);
      const patches = requestsTo(url).filter((line) => line.method === 'PATCH');
      assert.equal(patches.length, 4, 'four appends of at most 2 MiB');
    });

    it(`${protocol} (interop ${interop}): sends the first part with the creation (uploadDataDuringCreation)`, async () => {
      const file = path.join(workDir, `${protocol}-creation.bin`);
      const sha256 = await writeRandomFile(file, 3 * MiB + 1);
      const url = await upload(createReadStream(file), {
        endpoint: wharf.endpoint,
        uploadSize: 3 * MiB + 1,
        chunkSize: 2 * MiB,
        uploadDataDuringCreation: true,
        protocol,
      });
      assert.equal(await downloadSha256(url), sha256);
      // 2 MiB went with the creation, so the remaining 1 MiB + 1 took one append.
      assert.equal(
        requestsTo(url).filter((line) => line.method === 'PATCH').length,
        1,
        'one append after it',
      );
    });

    it(`${protocol} (interop ${interop}): resumes after the connection is cut in the middle of an append`, async () => {
      const file = path.join(workDir, `${protocol}-cut.bin`);
      const size = 24 * MiB;
      const sha256 = await writeRandomFile(file, size);
      const proxy = await cuttingProxy(wharf.port, 12 * MiB);
      try {
        const url = await upload(createReadStream(file), {
          endpoint: `http://127.0.0.1:${proxy.port}/files/`,
          uploadSize: size,
          chunkSize: 16 * MiB,
          protocol,
        });
        assert.equal(proxy.cuts(), 1, 'the proxy cut one connection');
        const direct = url.replace(`127.0.0.1:${proxy.port}`, `127.0.0.1:${wharf.port}`);
        assert.equal(await downloadSha256(direct), sha256);
        assert.ok(
          requestsTo(direct).some((line) => line.method === 'HEAD'),
          'the client asked for the offset to resume from',
        );
        assert.equal((await stat(path.join(wharf.dataDir, String(direct.split('/').pop())))).size, size);
        // It resumed from what the server kept: starting over would send all 24 MiB again after the cut.
        assert.ok(
          proxy.forwardedAfterCut() < size,
          `forwarded ${proxy.forwardedAfterCut()} bytes after the cut`,
        );
      } finally {
        proxy.server.close();
      }
    });
  }
});
