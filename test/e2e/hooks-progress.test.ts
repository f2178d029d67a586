import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * tusd's progress hooks (`--hooks-progress-interval`): one long single-request upload is visible while it runs,
 * as several post-receive events before its PATCH ends (a slow streaming body stands for the 10 GB upload).
 */

async function offsets(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.startsWith('post-receive '))
    .map((line) => Number(line.split(' ')[1]));
}

describe('progress events (--hooks-progress-interval)', () => {
  let scratch: string;
  let log: string;
  let wharf: WharfProcess;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-progress-'));
    log = path.join(scratch, 'events.log');
    const modules = path.join(scratch, 'modules');
    await mkdir(path.join(modules, 'progress'), { recursive: true });
    await writeFile(
      path.join(modules, 'progress', 'index.mjs'),
      `import { appendFile } from 'node:fs/promises';
export default ({ action }) => {
  action('post-*', (upload, meta) => appendFile(${JSON.stringify(log)}, meta.event + ' ' + upload.offset + '\\n'));
};
`,
    );
    wharf = await startWharf({ args: ['--hooks-modules-dir', modules, '--hooks-progress-interval', '50'] });
  });
  after(async () => {
    await wharf?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a slow single PATCH shows several post-receive events before it ends, then post-finish', async () => {
    const chunk = Buffer.alloc(16 * 1024, 7);
    const chunks = 200;
    const length = chunk.length * chunks;
    const url = new URL(await createUpload(wharf.endpoint, { 'Upload-Length': length }));
    const req = request(url, {
      method: 'PATCH',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(length),
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    // Slowly, until three progress events were seen (or all but the last chunk is sent).
    let sent = 0;
    let seenWhileRunning: number[] = [];
    while (sent < chunks - 1) {
      req.write(chunk);
      sent++;
      await sleep(20);
      seenWhileRunning = await offsets(log);
      if (seenWhileRunning.length >= 3) break;
    }
    assert.ok(
      seenWhileRunning.length >= 3,
      `only ${seenWhileRunning.length} post-receive events while running`,
    );
    for (const [index, offset] of seenWhileRunning.entries()) {
      assert.ok(offset > 0 && offset < length, `offset ${offset} is not inside the upload`);
      if (index > 0) assert.ok(offset > (seenWhileRunning[index - 1] ?? 0), 'offsets grow');
    }
    while (sent < chunks) {
      req.write(chunk);
      sent++;
    }
    req.end();
    assert.equal(await answered, 204);
    const deadline = Date.now() + 15_000;
    let text = '';
    while (!text.includes('post-finish') && Date.now() < deadline) {
      text = await readFile(log, 'utf8').catch(() => '');
      if (!text.includes('post-finish')) await sleep(50);
    }
    assert.match(text, new RegExp(`^post-finish ${length}$`, 'm'));
  });
});
