import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * Directus-style wildcard subscriptions: a module's `action('post-*')` and `filter('pre-*')`, and a named
 * hook bound with `events: [post-*]`, each hear every event of its kind (real wharf, a real file hook).
 */

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '');
}

/** Waits until the file has `count` lines, then returns them sorted (post events may land in any order). */
async function linesOnce(file: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = await lines(file);
    if (found.length >= count) return found.sort();
    if (Date.now() > deadline) throw new Error(`${file} has ${found.length} of ${count} lines: ${found}`);
    await sleep(50);
  }
}

describe('wildcard subscriptions (post-*, pre-*, *)', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let moduleLog: string;
  let hookLog: string;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-wildcards-'));
    moduleLog = path.join(scratch, 'module.log');
    hookLog = path.join(scratch, 'hook.log');
    const modules = path.join(scratch, 'modules');
    await mkdir(path.join(modules, 'watch'), { recursive: true });
    await writeFile(
      path.join(modules, 'watch', 'index.mjs'),
      `import { appendFile } from 'node:fs/promises';
const log = ${JSON.stringify(moduleLog)};
export default ({ action, filter }) => {
  action('post-*', (upload, meta) => appendFile(log, 'action ' + meta.event + '\\n'));
  filter('pre-*', async (payload, meta) => {
    await appendFile(log, 'filter ' + meta.event + '\\n');
    return payload;
  });
};
`,
    );
    const script = path.join(scratch, 'log-event.sh');
    await writeFile(script, `#!/bin/sh\necho "hook $1" >> ${JSON.stringify(hookLog)}\n`);
    await chmod(script, 0o755);
    const config = {
      hooks: { log: { transport: 'file', command: script } },
      endpoints: [{ path: '/files', hooks: [{ hook: 'log', events: ['post-*'] }] }],
    };
    const file = path.join(scratch, 'wharf.json');
    await writeFile(file, JSON.stringify(config));
    wharf = await startWharf({ args: ['--config', file, '--hooks-modules-dir', modules] });
  });
  after(async () => {
    await wharf?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a module action on post-*, a filter on pre-* and a binding on post-* hear every event of their kind', async () => {
    // Two PATCHes: the first is a post-receive, the one that completes the upload a post-finish (as in rustus).
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 6 });
    const first = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'abc',
    });
    assert.equal(first.status, 204);
    const last = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 3 },
      body: 'def',
    });
    assert.equal(last.status, 204);
    const removed = await send('DELETE', url, { headers: tus });
    assert.equal(removed.status, 204);

    // Modules hear pre-finish whatever --hooks says (their subscription is what enables an event for them).
    assert.deepEqual(await linesOnce(moduleLog, 7), [
      'action post-create',
      'action post-finish',
      'action post-receive',
      'action post-terminate',
      'filter pre-create',
      'filter pre-finish',
      'filter pre-terminate',
    ]);
    assert.deepEqual(await linesOnce(hookLog, 4), [
      'hook post-create',
      'hook post-finish',
      'hook post-receive',
      'hook post-terminate',
    ]);
  });
});

describe('wildcards a module may not use', () => {
  it("action('pre-*') stops start-up naming the events actions may use", async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-wildcards-bad-'));
    try {
      await mkdir(path.join(scratch, 'bad'), { recursive: true });
      await writeFile(
        path.join(scratch, 'bad', 'index.mjs'),
        `export default ({ action }) => { action('pre-*', () => {}); };\n`,
      );
      await assert.rejects(
        startWharf({ args: ['--hooks-modules-dir', scratch] }),
        /action\("pre-\*"\): actions run on non-blocking events .*post-\* or \* for all/,
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
