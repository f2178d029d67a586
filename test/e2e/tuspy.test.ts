import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { downloadSha256, MiB, writeRandomFile } from '../support/bytes.ts';
import { cuttingProxy } from '../support/cutting-proxy.ts';
import { send, tus as tusHeaders } from '../support/http.ts';
import { accessLog, repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

// The venv comes from scripts/services/python-clients.sh (run by .ci/run), with tuspy pinned there.
const python = process.env.WHARF_TEST_PYTHON ?? path.join(repoRoot, '.cache/venv/bin/python');
const program = path.join(import.meta.dirname, 'clients/tuspy_upload.py');
const run = promisify(execFile);

let wharf: WharfProcess;
let workDir: string;

before(async () => {
  wharf = await startWharf();
  workDir = await mkdtemp(path.join(tmpdir(), 'wharf-tuspy-'));
});
after(async () => {
  await wharf.stop();
  await rm(workDir, { recursive: true, force: true });
});

/** Runs the tuspy program with `args` and returns the JSON it printed. */
async function tuspy(...args: (string | number)[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(python, [program, ...args.map(String)], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function randomFile(name: string, size: number): Promise<{ file: string; sha256: string }> {
  const file = path.join(workDir, name);
  return { file, sha256: await writeRandomFile(file, size) };
}

describe('tuspy (Python) against the real server', () => {
  it('uploads 12 MiB in 5 MiB chunks with metadata and downloads the same bytes', async () => {
    const { file, sha256 } = await randomFile('chunks.bin', 12 * MiB + 7);
    const result = await tuspy(
      'upload',
      wharf.endpoint,
      file,
      5 * MiB,
      '--meta',
      'filename=zażółć.bin',
      'filetype=application/octet-stream',
    );
    const url = String(result.url);
    assert.equal(result.offset, 12 * MiB + 7);
    assert.equal(await downloadSha256(url), sha256);
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-offset'], String(12 * MiB + 7));
    const pairs = String(head.headers['upload-metadata']).split(',');
    assert.ok(pairs.includes(`filename ${Buffer.from('zażółć.bin').toString('base64')}`), pairs.join());
    const patches = (await accessLog(wharf)).filter(
      (line) => line.method === 'PATCH' && line.url === new URL(url).pathname,
    );
    assert.deepEqual(
      patches.map((line) => line.status),
      [204, 204, 204],
      'three PATCHes of 5, 5 and 2 MiB',
    );
  });

  it('resumes a stopped upload from the offset the server reports, with a new Uploader', async () => {
    const { file, sha256 } = await randomFile('resume.bin', 12 * MiB);
    const started = await tuspy('start', wharf.endpoint, file, 5 * MiB);
    const url = String(started.url);
    assert.equal(started.offset, 5 * MiB);
    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-offset'], String(5 * MiB));
    assert.equal(head.headers['upload-length'], String(12 * MiB));

    const resumed = await tuspy('resume', url, file, 5 * MiB);
    assert.equal(resumed.resumedFrom, 5 * MiB);
    assert.equal(resumed.offset, 12 * MiB);
    assert.equal(await downloadSha256(url), sha256);
  });

  it('retries after the connection is cut mid-chunk and finishes from what the server kept', async () => {
    const { file, sha256 } = await randomFile('cut.bin', 12 * MiB);
    // tuspy opens a connection per request, so the cut lands 4 MiB into the first 5 MiB PATCH.
    const proxy = await cuttingProxy(wharf.port, 4 * MiB);
    try {
      const result = await tuspy('retry', `http://127.0.0.1:${proxy.port}/files/`, file, 5 * MiB);
      assert.equal(proxy.cuts(), 1, 'the proxy cut one connection');
      assert.equal(result.offset, 12 * MiB);
      const url = String(result.url).replace(`127.0.0.1:${proxy.port}`, `127.0.0.1:${wharf.port}`);
      assert.equal(await downloadSha256(url), sha256);
      // tuspy asked the server where to go on (HEAD) once, and went on from there rather than from zero. Some of
      // the bytes in flight at the cut are lost (the HEAD takes the lock from the cut PATCH), so the offset is
      // somewhere in the first chunk.
      const resumedFrom = result.resumedFrom as number[];
      assert.equal(resumedFrom.length, 1);
      assert.ok(resumedFrom[0]! > 0 && resumedFrom[0]! <= 4 * MiB, `resumed from ${resumedFrom[0]}`);
    } finally {
      proxy.server.close();
    }
  });

  it('sends an Upload-Checksum (sha1) with every chunk, and the server verifies it', async () => {
    const { file, sha256 } = await randomFile('checksum.bin', 11 * MiB);
    const result = await tuspy('upload', wharf.endpoint, file, 5 * MiB, '--checksum');
    assert.equal(await downloadSha256(String(result.url)), sha256);
  });

  it('uploads with the asyncio uploader (aiohttp)', async () => {
    const { file, sha256 } = await randomFile('async.bin', 6 * MiB + 1);
    const result = await tuspy('upload', wharf.endpoint, file, 5 * MiB, '--async');
    assert.equal(result.offset, 6 * MiB + 1);
    assert.equal(await downloadSha256(String(result.url)), sha256);
  });
});
