import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
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

describe('httpResponse from pre-terminate and pre-finish answers reaches the client', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-answer-responses-'));
    // One file hook for every event; it answers according to the event and the upload's `answer` metadata.
    const hook = path.join(scratch, 'answer.js');
    await writeFile(
      hook,
      `#!${process.execPath}
const event = process.argv[2];
const { upload } = JSON.parse(process.argv[3]);
const mode = upload.metadata.answer ?? '';
if (event === 'pre-terminate') {
  const headers = { 'X-Archived-As': 'cold/' + upload.id };
  console.log(JSON.stringify({ httpResponse: mode === 'body' ? { headers, body: 'moved to cold storage' } : { headers } }));
} else if (event === 'pre-finish') {
  const headers = { 'X-Scan': 'clean', 'Upload-Offset': '999' };
  console.log(JSON.stringify({ httpResponse: mode === 'body' ? { headers, body: '{"scan":"clean"}', status: 299 } : { headers } }));
}
`,
    );
    await chmod(hook, 0o755);
    wharf = await startWharf({ args: ['--hooks-file', hook, '--hooks', 'pre-terminate,pre-finish'] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('pre-terminate headers are added to the DELETE answer, which stays 204 without a body', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const id = url.split('/').pop() ?? '';
    const deleted = await send('DELETE', url, { headers: tus });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.headers['x-archived-as'], `cold/${id}`);
    assert.equal(deleted.text, '');
    assert.equal((await send('HEAD', url, { headers: tus })).status, 404);
  });

  it('a pre-terminate body turns the DELETE answer into 200 with that body', async () => {
    const url = await createUpload(wharf.endpoint, {
      'Upload-Length': 3,
      'Upload-Metadata': metadata({ answer: 'body' }),
    });
    const deleted = await send('DELETE', url, { headers: tus });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.text, 'moved to cold storage');
    assert.equal(deleted.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(deleted.headers['tus-resumable'], '1.0.0');
    assert.equal((await send('HEAD', url, { headers: tus })).status, 404);
  });

  it('pre-finish headers are added to the final PATCH answer; protocol headers stay Wharf’s', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 6 });
    const first = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'abc',
    });
    assert.equal(first.status, 204);
    assert.equal(first.headers['x-scan'], undefined, 'not the last byte: no pre-finish');
    const last = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 3 },
      body: 'def',
    });
    assert.equal(last.status, 204);
    assert.equal(last.headers['x-scan'], 'clean');
    assert.equal(last.headers['upload-offset'], '6');
    assert.equal(last.text, '');
  });

  it('a pre-finish body is the final PATCH’s body (200), and so on a POST whose body completes the upload', async () => {
    const url = await createUpload(wharf.endpoint, {
      'Upload-Length': 3,
      'Upload-Metadata': metadata({ answer: 'body' }),
    });
    const last = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'xyz',
    });
    // The status stays Wharf's: an added body turns 204 into 200, never into the hook's 299.
    assert.equal(last.status, 200);
    assert.equal(last.text, '{"scan":"clean"}');
    assert.equal(last.headers['x-scan'], 'clean');
    assert.equal(last.headers['upload-offset'], '3');
    assert.equal((await stat(path.join(wharf.dataDir, url.split('/').pop() ?? ''))).size, 3);

    const created = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        ...octets,
        'Upload-Length': 2,
        'Upload-Metadata': metadata({ answer: 'body' }),
      },
      body: 'ok',
    });
    assert.equal(created.status, 201);
    assert.equal(created.text, '{"scan":"clean"}');
    assert.equal(created.headers['x-scan'], 'clean');
    assert.equal(created.headers['upload-offset'], '2');
  });
});

describe('a non-critical pre-terminate or pre-finish hook that fails: "completed with warnings"', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-answer-warnings-'));
    await writeFile(path.join(scratch, 'flaky.sh'), '#!/bin/sh\necho "index offline" >&2\nexit 3\n');
    await chmod(path.join(scratch, 'flaky.sh'), 0o755);
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  indexer:
    transport: file
    command: ./flaky.sh
    critical: false
endpoints:
  - path: /files
    hooks:
      - { hook: indexer, events: [pre-terminate, pre-finish] }
`,
    );
    wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('the final PATCH and the DELETE succeed and say which hook failed', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 2 });
    const last = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'ok' });
    assert.equal(last.status, 204);
    assert.equal(last.headers['wharf-hooks'], 'completed with warnings; failed=indexer');
    const deleted = await send('DELETE', url, { headers: tus });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.headers['wharf-hooks'], 'completed with warnings; failed=indexer');
    assert.equal((await send('HEAD', url, { headers: tus })).status, 404);
  });
});
