import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** One line a hook script wrote: its argv[1], and argv[2] parsed. */
interface HookCall {
  readonly name: string;
  readonly payload: Record<string, unknown>;
}

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'wharf-exec-hooks-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

async function executable(file: string, body: string): Promise<string> {
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

/** A script that appends "<argv1> <argv2>" to `log`, then runs `then` (e.g. a refusal). */
function recorder(log: string, then = 'exit 0'): string {
  return `printf '%s %s\\n' "$1" "$2" >> '${log}'\n${then}`;
}

async function calls(log: string): Promise<HookCall[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const space = line.indexOf(' ');
      return {
        name: line.slice(0, space),
        payload: JSON.parse(line.slice(space + 1)) as Record<string, unknown>,
      };
    });
}

async function waitForCalls(log: string, count: number): Promise<HookCall[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const seen = await calls(log);
    if (seen.length >= count) return seen;
    if (Date.now() > deadline)
      throw new Error(`expected ${count} hook calls, saw ${seen.map((c) => c.name)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function idOf(url: string): string {
  return url.split('/').pop() ?? '';
}

async function patch(url: string, offset: number, body: string): Promise<void> {
  const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset }, body });
  assert.equal(reply.status, 204, reply.text);
}

async function storedFiles(wharf: WharfProcess): Promise<string[]> {
  return (await readdir(wharf.dataDir, { recursive: true })).sort();
}

/** What a refusing hook prints to stderr: a path and a credential that must never reach the client. */
const stderrSecret = 'curl -u admin:s3cr3t-token https://billing.internal/ failed, see /srv/hooks/.env';
const answerOnPurpose = JSON.stringify({
  reject: true,
  httpResponse: { status: 403, body: 'uploads named answer need a paid plan', headers: { 'X-Plan': 'free' } },
});

describe('--hooks-file: one executable for every event', () => {
  let wharf: WharfProcess;
  let log: string;
  before(async () => {
    log = path.join(scratch, 'file-hook.log');
    // On pre-create, refuses uploads whose metadata carries `deny` by exiting 1 with a secret on stderr, and
    // uploads whose metadata carries `answer` through the hook-answer protocol (a JSON answer on stdout).
    const script = await executable(
      path.join(scratch, 'hook.sh'),
      recorder(
        log,
        [
          'if [ "$1" = pre-create ]; then case "$2" in',
          `  *'"deny"'*) echo "uploads named deny are refused; ${stderrSecret}" >&2; exit 1;;`,
          `  *'"answer"'*) echo '${answerOnPurpose}'; exit 0;;`,
          'esac; fi',
        ].join('\n'),
      ),
    );
    wharf = await startWharf({ args: ['--hooks-file', script] });
  });
  after(() => wharf.stop());

  it('receives the hook name as argv[1] and the JSON payload as argv[2], for every event of an upload', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 6 });
    await patch(url, 0, 'abc');
    await patch(url, 3, 'def');
    assert.equal((await send('DELETE', url, { headers: tus })).status, 204);
    const seen = await waitForCalls(log, 6);
    const mine = seen.filter((call) => (call.payload.upload as { id: string }).id === idOf(url));
    assert.deepEqual(mine.map((call) => call.name).sort(), [
      'post-create',
      'post-finish',
      'post-receive',
      'post-terminate',
      'pre-create',
      'pre-terminate',
    ]);
    for (const call of mine) assert.deepEqual(hookSchemaErrors('default', call.payload), [], call.name);
  });

  it('a pre-create that exits 1 refuses with a fixed 400 and stores nothing; its stderr is logged, not sent', async () => {
    const before = await storedFiles(wharf);
    const reply = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        'Upload-Length': 3,
        'Upload-Metadata': `filename ${Buffer.from('deny').toString('base64')}`,
      },
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.text, 'Hook "pre-create" failed with exit code 1');
    assert.ok(!reply.text.includes('s3cr3t') && !reply.text.includes('/srv/hooks'), reply.text);
    assert.ok(!JSON.stringify(reply.headers).includes('s3cr3t'));
    assert.equal(reply.headers.location, undefined);
    assert.deepEqual(await storedFiles(wharf), before);
    // Positive control: the operator's log has the hook's stderr, at warn.
    const deadline = Date.now() + 5000;
    let logged: Record<string, unknown> | undefined;
    while (logged === undefined && Date.now() < deadline) {
      logged = wharf.logs.find((line) => String(line.stderr ?? '').includes(stderrSecret));
      if (logged === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(logged, 'the stderr is in the log');
    assert.equal(logged.level, 40, 'warn');
    assert.equal(logged.hook, 'pre-create');
  });

  it('a pre-create answering {"reject": true} on stdout gives the client its own status, body and headers', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        'Upload-Length': 3,
        'Upload-Metadata': `filename ${Buffer.from('answer').toString('base64')}`,
      },
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.text, 'uploads named answer need a paid plan');
    assert.equal(reply.headers['x-plan'], 'free');
    assert.equal(reply.headers.location, undefined);
  });
});

describe('--hooks-dir: one executable per hook name', () => {
  it('runs the executable named after each event, with the payload in the chosen format', async () => {
    const dir = path.join(scratch, 'hooks-v2');
    const log = path.join(scratch, 'dir-hook.log');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    for (const name of [
      'pre-create',
      'post-create',
      'post-receive',
      'post-finish',
      'pre-terminate',
      'post-terminate',
    ]) {
      // A dir hook gets only the payload: argv[1] is the JSON, so the recorder logs its own name.
      await executable(path.join(dir, name), `printf '%s %s\\n' '${name}' "$1" >> '${log}'`);
    }
    const wharf = await startWharf({ args: ['--hooks-dir', dir, '--hooks-format', 'v2'] });
    try {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 2 });
      await patch(url, 0, 'o');
      await patch(url, 1, 'k');
      const seen = await waitForCalls(log, 4);
      assert.deepEqual(seen.map((call) => call.name).sort(), [
        'post-create',
        'post-finish',
        'post-receive',
        'pre-create',
      ]);
      for (const call of seen) {
        assert.deepEqual(hookSchemaErrors('v2', call.payload), [], call.name);
        assert.equal((call.payload.upload as { id: string }).id, idOf(url));
      }
    } finally {
      await wharf.stop();
    }
  });

  it('a missing pre-create executable cancels creation; a missing post hook only logs', async () => {
    const dir = path.join(scratch, 'hooks-partial');
    await mkdir(dir, { recursive: true });
    const wharf = await startWharf({ args: ['--hooks-dir', dir] });
    try {
      const before = await storedFiles(wharf);
      const refused = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1 } });
      assert.equal(refused.status, 400);
      assert.match(refused.text, /pre-create/);
      assert.deepEqual(await storedFiles(wharf), before);
      // The log is written asynchronously: the line may arrive just after the answer.
      const isError = (line: Record<string, unknown>) =>
        Number(line.level) >= 50 && JSON.stringify(line).includes('pre-create');
      for (let waited = 0; !wharf.logs.some(isError) && waited < 5000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(wharf.logs.some(isError), 'the missing hook is an error in the log');
    } finally {
      await wharf.stop();
    }
    const withPreCreate = await startWharf({ args: ['--hooks-dir', dir] });
    try {
      await executable(path.join(dir, 'pre-create'), 'exit 0');
      const url = await createUpload(withPreCreate.endpoint, { 'Upload-Length': 2 });
      await patch(url, 0, 'ok');
      assert.equal((await send('GET', url)).text, 'ok');
    } finally {
      await withPreCreate.stop();
    }
  });

  it('a non-executable pre-create file cancels creation', async () => {
    const dir = path.join(scratch, 'hooks-not-executable');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'pre-create'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const wharf = await startWharf({ args: ['--hooks-dir', dir] });
    try {
      const refused = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1 } });
      assert.equal(refused.status, 400);
    } finally {
      await wharf.stop();
    }
  });
});
