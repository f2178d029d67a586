import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** "key value" pairs in Upload-Metadata form. */
function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'wharf-answers-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

describe('hooks that answer (executable stdout)', () => {
  let wharf: WharfProcess;
  before(async () => {
    const hooksDir = path.join(scratch, 'dir');
    await mkdir(hooksDir);
    // A node script as a dir hook: answers from the upload's metadata.
    const hook = path.join(hooksDir, 'pre-create');
    await writeFile(
      hook,
      `#!${process.execPath}
const { upload } = JSON.parse(process.argv[2]);
const meta = upload.metadata;
if (meta.plan === 'free') {
  console.log(JSON.stringify({ reject: true, httpResponse: { status: 403, body: 'quota exceeded for plan free', headers: { 'X-Quota': 'exhausted' } } }));
} else if (meta.wanted) {
  console.log(JSON.stringify({
    changeUpload: { id: meta.wanted, metadata: { filename: meta.filename.toUpperCase(), owner: 'hook' } },
    httpResponse: { headers: { 'X-Chosen-By': 'hook' } },
  }));
} else if (meta.broken) {
  console.log(JSON.stringify({ changeUpload: { id: '../escape' } }));
} else {
  console.log('not json: go on');
}
`,
    );
    await chmod(hook, 0o755);
    wharf = await startWharf({ args: ['--hooks-dir', hooksDir, '--hooks', 'pre-create'] });
  });
  after(() => wharf.stop());

  it('refuses with the hook’s own status, body and headers', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ plan: 'free' }) },
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.text, 'quota exceeded for plan free');
    assert.equal(reply.headers['x-quota'], 'exhausted');
  });

  it('changeUpload chooses the id and rewrites the metadata; httpResponse adds a header', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        'Upload-Length': 5,
        'Upload-Metadata': metadata({ wanted: 'invoice-2026-001', filename: 'a.pdf' }),
      },
    });
    assert.equal(reply.status, 201, reply.text);
    assert.equal(reply.headers['x-chosen-by'], 'hook');
    const location = String(reply.headers.location);
    assert.ok(location.endsWith('/files/invoice-2026-001'), location);
    const head = await send('HEAD', location, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-metadata'], metadata({ filename: 'A.PDF', owner: 'hook' }));
    const patch = await send('PATCH', location, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'hello',
    });
    assert.equal(patch.status, 204);
    assert.equal(await readFile(path.join(wharf.dataDir, 'invoice-2026-001'), 'utf8'), 'hello');

    const again = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        'Upload-Length': 5,
        'Upload-Metadata': metadata({ wanted: 'invoice-2026-001', filename: 'b' }),
      },
    });
    assert.equal(again.status, 409, 'an id already in use is refused');
  });

  it('an id that is not safe is refused before touching storage', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ broken: 'yes' }) },
    });
    assert.equal(reply.status, 502);
    assert.match(reply.text, /invalid upload id/);
  });

  it('a non-JSON answer means go on (rustus-compatible)', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    assert.match(url, /\/files\/[0-9a-f-]{36}$/);
  });
});

describe('hooks that answer (HTTP 2xx body)', () => {
  let wharf: WharfProcess;
  let receiver: Server;
  before(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('Content-Type', 'application/json');
        if (req.headers['hook-name'] === 'pre-terminate') {
          res.end(JSON.stringify({ reject: true, httpResponse: { body: 'kept by policy' } }));
        } else {
          res.end(JSON.stringify({ httpResponse: { body: 'welcome', headers: { 'X-Tenant': 'acme' } } }));
        }
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    wharf = await startWharf({ args: ['--hooks-http-urls', url, '--hooks', 'pre-create,pre-terminate'] });
  });
  after(async () => {
    await wharf.stop();
    await new Promise((resolve) => receiver.close(resolve));
  });

  it('adds headers and a body to the normal creation answer', async () => {
    const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers['x-tenant'], 'acme');
    assert.equal(reply.text, 'welcome');
    assert.ok(typeof reply.headers.location === 'string');
  });

  it('a reject without a status answers 400 with the hook’s body', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const reply = await send('DELETE', url, { headers: tus });
    assert.equal(reply.status, 400);
    assert.equal(reply.text, 'kept by policy');
    assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
  });
});
