import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { createUpload, send, tus } from '../support/http.ts';
import { wharfBin } from '../support/wharf-process.ts';

/** Each command runs in a folder of its own, so a folder it wrongly creates shows up there. */
let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'wharf-cli-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

/** The environment without the WHARF_ and RUSTUS_ options the caller may have set, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(WHARF|RUSTUS)_/.test(name) || name.startsWith('WHARF_TEST_'),
    ),
  );
  return { ...env, ...extra };
}

/** Runs `wharf` with arguments it must refuse, in an empty folder; returns its exit code, stderr, and that folder. */
async function refused(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stderr: string; cwd: string }> {
  const cwd = await mkdtemp(path.join(scratch, 'run-'));
  // Not spawnSync: the tests run at once, and a synchronous spawn would hold the others up.
  const child = spawn(process.execPath, [wharfBin, '--host', '127.0.0.1', ...args], {
    cwd,
    env: cleanEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 15_000,
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { status, stderr, cwd };
}

/** One line ending in a newline: no stack trace, no JSON log. */
function assertOneLine(stderr: string): void {
  assert.match(stderr, /^wharf: [^\n]+\n$/, `one line expected, got: ${stderr}`);
  assert.doesNotMatch(stderr, /\bat .*\(|\.js:\d+/, 'no stack trace');
}

/** Starts `wharf` in `cwd` and resolves once it listens, with the JSON lines it logged until then. */
function startIn(
  cwd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; port: number; logs: Record<string, unknown>[] }> {
  const child = spawn(process.execPath, [wharfBin, '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (typeof entry.port === 'number' && String(entry.msg).startsWith('wharf listening')) {
          resolve({ child, port: entry.port, logs });
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code} before listening: ${stderr}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

// Every test at once: each runs its own wharf commands in a folder of its own.
describe('the wharf command line', { concurrency: true }, () => {
  describe('the wharf command line refuses what it cannot use, in one line naming the flag and the value', () => {
    it('a flag that takes a value does not swallow the next flag (no folder named --no-access)', async () => {
      const { status, stderr, cwd } = await refused(['--data-dir', '--no-access']);
      assert.equal(status, 2);
      assertOneLine(stderr);
      assert.match(stderr, /--data-dir needs a value/);
      assert.match(stderr, /"--no-access"/);
      assert.deepEqual(await readdir(cwd), [], 'nothing was created');
    });

    it('a short flag that takes a value does not swallow the next flag either', async () => {
      const { status, stderr } = await refused(['-p', '--no-access']);
      assert.equal(status, 2);
      assertOneLine(stderr);
      assert.match(stderr, /-p needs a value/);
    });

    it('--port 70000 is a one-line error with exit 2, not a stack trace', async () => {
      const { status, stderr } = await refused(['--port', '70000']);
      assert.equal(status, 2);
      assertOneLine(stderr);
      assert.match(stderr, /--port: expected an integer from 0 to 65535, got "70000"/);
    });

    it('--hooks-http-urls not-a-url blames --hooks-http-urls and shows the value', async () => {
      const { status, stderr } = await refused(['--hooks-http-urls', 'not-a-url']);
      assert.equal(status, 2);
      assertOneLine(stderr);
      assert.match(stderr, /^wharf: --hooks-http-urls: .*"not-a-url"/);
      assert.doesNotMatch(stderr, /--hooks-allowed-urls/);
    });

    it('a bad value from the environment names the variable, its flag and the value', async () => {
      const result = await refused([], { RUSTUS_SERVER_PORT: '99999' });
      assert.equal(result.status, 2);
      assertOneLine(result.stderr);
      assert.match(result.stderr, /RUSTUS_SERVER_PORT \(--port\): .*"99999"/);
    });

    it('a value that starts with "-" is still given with --flag=value', async () => {
      // The value is taken, and judged as a value: the error is about the URL, not a missing value.
      const { status, stderr } = await refused(['--hooks-http-urls=-x']);
      assert.equal(status, 2);
      assertOneLine(stderr);
      assert.match(stderr, /--hooks-http-urls: .*"-x"/);

      const cwd = await mkdtemp(path.join(scratch, 'run-'));
      const wharf = await startIn(cwd, ['--data-dir=-uploads', '--info-dir=-uploads'], cleanEnv());
      try {
        const url = await createUpload(`http://127.0.0.1:${wharf.port}/files/`, { 'Upload-Length': 1 });
        assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
        assert.ok(
          (await stat(path.join(cwd, '-uploads'))).isDirectory(),
          'the folder named -uploads is used',
        );
      } finally {
        await stop(wharf.child);
      }
    });
  });

  describe('unknown WHARF_* and RUSTUS_* variables', () => {
    it('warn naming the nearest known variable, while a correct command line starts and serves', async () => {
      const cwd = await mkdtemp(path.join(scratch, 'run-'));
      const env = cleanEnv({
        RUSTUS_PORT: '8080',
        WHARF_DATADIR: '/somewhere',
        // Wharf's own variables that are not options never warn.
        WHARF_TEST_ANYTHING: '1',
        WHARF_HOOK_NAME: 'pre-create',
        WHARF_WORKER_ANYTHING: '1',
      });
      const wharf = await startIn(cwd, ['--data-dir', 'data', '--info-dir', 'data'], env);
      try {
        // Positive control: the command line is right, so Wharf serves.
        const url = await createUpload(`http://127.0.0.1:${wharf.port}/files/`, { 'Upload-Length': 1 });
        assert.equal((await send('HEAD', url, { headers: tus })).status, 200);

        const warnings = wharf.logs.filter((line) => line.level === 40 && line.variable !== undefined);
        assert.deepEqual(
          warnings.map((line) => [line.variable, line.nearest]),
          [
            ['RUSTUS_PORT', 'RUSTUS_SERVER_PORT'],
            ['WHARF_DATADIR', 'WHARF_DATA_DIR'],
          ],
        );
        assert.match(String(warnings[0]?.msg), /RUSTUS_PORT.*did you mean RUSTUS_SERVER_PORT/);
      } finally {
        await stop(wharf.child);
      }
    });
  });
});
