import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
}

async function waitForLine(file: string, wanted: string): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const seen = await lines(file);
    if (seen.includes(wanted)) return seen;
    if (Date.now() > deadline) throw new Error(`"${wanted}" never appeared in ${file}: ${seen.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('pre-finish: a blocking event after the last byte', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let log: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-pre-finish-'));
    const hooksDir = path.join(scratch, 'hooks');
    await mkdir(hooksDir);
    log = path.join(scratch, 'calls.log');
    // A "virus scanner": refuses uploads whose bytes contain EICAR, with its own answer.
    await writeFile(
      path.join(hooksDir, 'pre-finish'),
      `#!${process.execPath}
const fs = require('node:fs');
const { upload } = JSON.parse(process.argv[2]);
fs.appendFileSync(${JSON.stringify(log)}, 'pre-finish ' + upload.id + ' ' + upload.offset + '\\n');
if (fs.readFileSync(upload.path, 'utf8').includes('EICAR')) {
  console.log(JSON.stringify({ reject: true, httpResponse: { status: 422, body: 'infected: EICAR test file', headers: { 'X-Scan': 'infected' } } }));
}
`,
    );
    await writeFile(
      path.join(hooksDir, 'post-finish'),
      `#!/bin/sh\nprintf 'post-finish %s\\n' "$WHARF_UPLOAD_ID" >> '${log}'\n`,
    );
    await chmod(path.join(hooksDir, 'pre-finish'), 0o755);
    await chmod(path.join(hooksDir, 'post-finish'), 0o755);
    wharf = await startWharf({
      args: ['--hooks-dir', hooksDir, '--hooks', 'pre-finish,post-finish', '--hooks-post-concurrency', '1'],
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a refusal answers the final PATCH with the hook’s response, keeps the bytes and marks the upload failed', async () => {
    const url = await createUpload(wharf.endpoint, {
      'Upload-Length': 10,
      'Upload-Metadata': metadata({ filename: 'scan.txt' }),
    });
    const id = url.split('/').pop() ?? '';
    const first = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'EICA',
    });
    assert.equal(first.status, 204, 'not the last byte: no pre-finish');
    const last = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 4 },
      body: 'R-TEST',
    });
    assert.equal(last.status, 422);
    assert.equal(last.text, 'infected: EICAR test file');
    assert.equal(last.headers['x-scan'], 'infected');

    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '10');
    assert.equal(head.headers['upload-failed'], 'infected: EICAR test file');
    // The record file holds one JSON line per version; the last one is the record.
    const versions = (await readFile(path.join(wharf.dataDir, `${id}.info`), 'utf8')).trim().split('\n');
    const info = JSON.parse(versions.at(-1) ?? '') as { failure: string };
    assert.equal(info.failure, 'infected: EICAR test file');
    assert.equal(await readFile(path.join(wharf.dataDir, id), 'utf8'), 'EICAR-TEST');
    const retried = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 10 },
      body: '',
    });
    assert.equal(retried.status, 409, 'a retried final PATCH does not report success');
    assert.match(retried.text, /ERR_UPLOAD_FAILED/);
    assert.equal((await send('GET', url)).status, 409, 'a refused upload is not served');

    // A clean upload finishes normally; post hooks run one at a time in order, so once its post-finish
    // is logged, a post-finish of the refused upload would have been logged before it.
    const clean = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    const cleanId = clean.split('/').pop() ?? '';
    const done = await send('PATCH', clean, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'clean',
    });
    assert.equal(done.status, 204);
    assert.equal((await send('HEAD', clean, { headers: tus })).headers['upload-failed'], undefined);
    const seen = await waitForLine(log, `post-finish ${cleanId}`);
    assert.deepEqual(seen, [`pre-finish ${id} 10`, `pre-finish ${cleanId} 5`, `post-finish ${cleanId}`]);
  });
});
