import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** Directus-style `context.emitter`: one module's action emits, another module listens (real wharf). */

async function linesOnce(file: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
    if (found.length >= count) return found.sort();
    if (Date.now() > deadline) throw new Error(`${file} has ${found.length} of ${count} lines: ${found}`);
    await sleep(50);
  }
}

describe('context.emitter', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let log: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-emitter-'));
    log = path.join(scratch, 'events.log');
    const modules = path.join(scratch, 'modules');
    const write = async (folder: string, source: string): Promise<void> => {
      await mkdir(path.join(modules, folder), { recursive: true });
      await writeFile(path.join(modules, folder, 'index.mjs'), source);
    };
    await write(
      'a-listener',
      `import { appendFile } from 'node:fs/promises';
export default (_hooks, { emitter }) => {
  emitter.on('upload.finished', () => { throw new Error('listener broke'); });
  emitter.on('upload.finished', (id, size) => appendFile(${JSON.stringify(log)}, 'heard ' + id + ' ' + size + '\\n'));
};
`,
    );
    await write(
      'b-sender',
      `import { appendFile } from 'node:fs/promises';
export default ({ action }, { emitter }) => {
  action('post-finish', async (upload) => {
    const listeners = await emitter.emit('upload.finished', upload.id, upload.offset);
    await appendFile(${JSON.stringify(log)}, 'emitted to ' + listeners + '\\n');
  });
};
`,
    );
    wharf = await startWharf({ args: ['--hooks-modules-dir', modules] });
  });
  after(async () => {
    await wharf?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("one module's emit reaches another's listeners; a listener's error is logged, never thrown to the emitter", async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const id = url.replace(/\/$/, '').split('/').pop();
    const patch = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'abc',
    });
    assert.equal(patch.status, 204);
    // The sender's action went on after its emit (its line is written), with both listeners counted.
    assert.deepEqual(await linesOnce(log, 2), ['emitted to 2', `heard ${id} 3`]);
    const failure = wharf.logs.find((line) => line.msg === 'hook module event listener failed');
    assert.equal(failure?.module, 'a-listener');
    assert.equal(failure?.event, 'upload.finished');
    assert.equal(failure?.error, 'listener broke');
  });
});

describe('one time unit (createdAt)', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let out: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-created-at-'));
    out = path.join(scratch, 'times.json');
    const modules = path.join(scratch, 'modules');
    await mkdir(path.join(modules, 'times'), { recursive: true });
    await writeFile(
      path.join(modules, 'times', 'index.mjs'),
      `import { writeFile } from 'node:fs/promises';
export default ({ action }, { uploads }) => {
  action('post-finish', async (upload, meta) => {
    const stored = await uploads.get(upload.id);
    let listed;
    for await (const item of uploads.list()) if (item.id === upload.id) listed = item.createdAt;
    await writeFile(${JSON.stringify(out)}, JSON.stringify({
      payload: upload.createdAt, meta: meta.upload.createdAt, get: stored.createdAt, list: listed,
    }));
  });
};
`,
    );
    wharf = await startWharf({ args: ['--hooks-modules-dir', modules] });
  });
  after(async () => {
    await wharf?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('the payload, meta.upload, uploads.get() and uploads.list() give the same createdAt, in Unix seconds', async () => {
    const before = Math.floor(Date.now() / 1000);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const after = Math.ceil(Date.now() / 1000);
    const patch = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'abc',
    });
    assert.equal(patch.status, 204);
    const deadline = Date.now() + 15_000;
    let text: string | undefined;
    while (text === undefined && Date.now() < deadline) {
      // The module writes the file after the answer: an empty or half-written file is read again.
      text = await readFile(out, 'utf8').then(
        (read) => (read.trim().endsWith('}') ? read : undefined),
        () => undefined,
      );
      if (text === undefined) await sleep(50);
    }
    const times = JSON.parse(text ?? '{}') as { payload: number; meta: number; get: number; list: number };
    assert.equal(times.get, times.payload);
    assert.equal(times.list, times.payload);
    assert.equal(times.meta, times.payload);
    assert.ok(
      times.payload >= before && times.payload <= after,
      `${times.payload} is not in [${before}, ${after}]`,
    );
  });
});
