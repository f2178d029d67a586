import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { octets, send, tus } from '../support/http.ts';
import { scratchCwd, startWharf, type WharfProcess, wharfBin } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

interface Call {
  readonly name: string;
  readonly event: string;
  readonly endpoint: string;
  readonly args: Record<string, unknown>;
  readonly id: string;
  readonly tag: string | undefined;
}

async function calls(log: string): Promise<Call[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Call);
}

async function waitForCall(log: string, match: (call: Call) => boolean): Promise<Call> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = (await calls(log)).find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('the expected hook call never came');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('named hooks bound to two endpoints, with `when` conditions', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let log: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-endpoints-'));
    log = path.join(scratch, 'calls.log');
    await writeFile(
      path.join(scratch, 'record.js'),
      `#!${process.execPath}
const fs = require('node:fs');
const payload = JSON.parse(process.argv[3]);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({
  name: process.env.WHARF_HOOK_NAME, event: process.argv[2], endpoint: process.env.WHARF_ENDPOINT,
  args: JSON.parse(process.env.WHARF_HOOK_ARGS), id: payload.upload.id, tag: payload.upload.metadata.tag,
}) + '\\n');
if (process.env.WHARF_HOOK_NAME === 'gate' && payload.upload.metadata.filetype === 'image/bmp') {
  console.log(JSON.stringify({ reject: true, httpResponse: { status: 415, body: 'bitmaps are not accepted' } }));
}
`,
    );
    await chmod(path.join(scratch, 'record.js'), 0o755);
    await mkdir(path.join(scratch, 'guard'));
    await writeFile(
      path.join(scratch, 'guard', 'pre-terminate'),
      "#!/bin/sh\necho 'images are kept' >&2\nexit 1\n",
    );
    await chmod(path.join(scratch, 'guard', 'pre-terminate'), 0o755);
    // A hook module bound by a named hook: it runs only where bound, with the binding's args in context.args.
    await mkdir(path.join(scratch, 'modules', 'watermark'), { recursive: true });
    await writeFile(
      path.join(scratch, 'modules', 'watermark', 'index.mjs'),
      `export default ({ filter }) => {
  filter('pre-create', (upload, meta, context) => {
    upload.metadata.watermark = context.args.text + '@' + context.args.opacity;
    return upload;
  });
};
`,
    );
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  gate:
    transport: file
    command: ./record.js
    args: { policy: images-only }
  tagger:
    transport: file
    command: ./record.js
  guard:
    transport: dir
    directory: ./guard
  watermark:
    transport: module
    module: watermark
    args: { opacity: "0.5" }
endpoints:
  - path: /files
    hooks:
      - { hook: tagger, events: [post-finish], args: { bucket: docs } }
  - path: /images
    maxFileSize: 1000
    hooks:
      - hook: gate
        events: [pre-create]
        args: { maxWidth: 4096 }
        when: { metadata.filetype: "image/*" }
      - { hook: tagger, events: [post-finish], args: { bucket: images } }
      - { hook: watermark, events: [pre-create], args: { text: acme } }
      - { hook: guard, events: [pre-terminate] }
`,
    );
    wharf = await startWharf({
      args: [
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--hooks-modules-dir',
        path.join(scratch, 'modules'),
      ],
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const images = () => `${wharf.origin}/images/`;

  async function create(endpoint: string, values: Record<string, string>, length = 3) {
    return send('POST', endpoint, {
      headers: { ...tus, 'Upload-Length': length, 'Upload-Metadata': metadata(values) },
    });
  }

  it('the /images binding runs when its condition holds, with both argument sets', async () => {
    const reply = await create(images(), { filetype: 'image/png', tag: 'png' });
    assert.equal(reply.status, 201, reply.text);
    assert.match(String(reply.headers.location), /\/images\/[0-9a-f-]{36}$/);
    const gate = (await calls(log)).find((call) => call.tag === 'png');
    assert.deepEqual(
      gate && { name: gate.name, event: gate.event, endpoint: gate.endpoint, args: gate.args },
      {
        name: 'gate',
        event: 'pre-create',
        endpoint: '/images',
        args: { policy: 'images-only', maxWidth: 4096 },
      },
    );
  });

  it('`when` selects: a text file skips the gate; the gate can refuse a bitmap', async () => {
    const text = await create(images(), { filetype: 'text/plain', tag: 'text' });
    assert.equal(text.status, 201);
    assert.deepEqual(
      (await calls(log)).filter((call) => call.tag === 'text'),
      [],
    );
    const bitmap = await create(images(), { filetype: 'image/bmp', tag: 'bmp' });
    assert.equal(bitmap.status, 415);
    assert.equal(bitmap.text, 'bitmaps are not accepted');
  });

  it('a module bound by a named hook runs only on its endpoint, with both argument sets', async () => {
    const image = await create(images(), { filetype: 'image/png', tag: 'wm' });
    const imageHead = await send('HEAD', new URL(String(image.headers.location), wharf.origin).toString(), {
      headers: tus,
    });
    assert.equal(
      imageHead.headers['upload-metadata'],
      metadata({ filetype: 'image/png', tag: 'wm', watermark: 'acme@0.5' }),
    );
    const doc = await create(wharf.endpoint, { filetype: 'image/png', tag: 'wm' });
    const docHead = await send('HEAD', new URL(String(doc.headers.location), wharf.origin).toString(), {
      headers: tus,
    });
    assert.equal(docHead.headers['upload-metadata'], metadata({ filetype: 'image/png', tag: 'wm' }));
  });

  it('a dir named hook guards deletions on /images only; `wharf hooks check` lists the bindings', async () => {
    const image = await create(images(), { tag: 'keep' });
    const imageUrl = new URL(String(image.headers.location), wharf.origin).toString();
    const refused = await send('DELETE', imageUrl, { headers: tus });
    assert.equal(refused.status, 400);
    assert.equal(refused.text, 'Hook "guard" failed with exit code 1');
    const doc = await create(wharf.endpoint, { tag: 'gone' });
    const docUrl = new URL(String(doc.headers.location), wharf.origin).toString();
    assert.equal((await send('DELETE', docUrl, { headers: tus })).status, 204);

    const check = spawnSync(
      process.execPath,
      [
        wharfBin,
        'hooks',
        'check',
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--hooks-modules-dir',
        path.join(scratch, 'modules'),
      ],
      { cwd: scratchCwd, encoding: 'utf8' },
    );
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /pre-create: hook:gate@\/images, hook:watermark@\/images/);
    assert.match(check.stdout, /pre-terminate: hook:guard@\/images/);
    assert.match(check.stdout, /post-finish: hook:tagger@\/files, hook:tagger@\/images/);
  });

  it('each endpoint has its own bindings, store and limits', async () => {
    const doc = await create(wharf.endpoint, { filetype: 'image/png', tag: 'doc' });
    assert.equal(doc.status, 201);
    assert.deepEqual(
      (await calls(log)).filter((call) => call.tag === 'doc'),
      [],
      '/files has no gate',
    );
    const docUrl = new URL(String(doc.headers.location), wharf.origin).toString();
    const docPatch = await send('PATCH', docUrl, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'doc',
    });
    assert.equal(docPatch.status, 204);
    const docTag = await waitForCall(log, (call) => call.tag === 'doc' && call.name === 'tagger');
    assert.deepEqual([docTag.endpoint, docTag.args], ['/files', { bucket: 'docs' }]);

    const image = await create(images(), { filetype: 'image/jpeg', tag: 'jpeg' });
    const imageUrl = new URL(String(image.headers.location), wharf.origin).toString();
    const id = imageUrl.split('/').pop() ?? '';
    const imagePatch = await send('PATCH', imageUrl, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'jpg',
    });
    assert.equal(imagePatch.status, 204);
    const imageTag = await waitForCall(log, (call) => call.tag === 'jpeg' && call.name === 'tagger');
    assert.deepEqual([imageTag.endpoint, imageTag.args], ['/images', { bucket: 'images' }]);

    assert.equal((await stat(path.join(wharf.dataDir, 'images', id))).size, 3);
    assert.equal((await send('HEAD', `${wharf.endpoint}${id}`, { headers: tus })).status, 404);
    assert.equal((await create(images(), { tag: 'big' }, 5000)).status, 413);
    assert.equal((await create(wharf.endpoint, { tag: 'big' }, 5000)).status, 201);
  });
});
