import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { formatPayload } from '../../../src/hooks/formats/index.ts';
import { stdoutLimitBytes } from '../../../src/hooks/transports/executable.ts';
import {
  captureLogger,
  hooksConfig,
  readText,
  sampleEvent,
  temporaryDirectory,
  writeScript,
} from './fixtures.ts';

/** A hook that saves its argv, stdin and Wharf's environment variables next to itself. */
function recordingScript(out: string, exitCode = 0): string {
  return [
    `printf '%s' "$1" > "${out}/argv1"`,
    `printf '%s' "$2" > "${out}/argv2"`,
    `printf '%s' "$#" > "${out}/argc"`,
    `cat > "${out}/stdin"`,
    `printf '%s\\n%s\\n%s' "$WHARF_HOOK_NAME" "$WHARF_UPLOAD_ID" "$WHARF_EVENT_ID" > "${out}/env"`,
    `exit ${exitCode}`,
  ].join('\n');
}

/** True once the process is gone (or a zombie nobody reaps). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 250; attempt += 1) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting until ${what}`);
}

test('a blocking file hook gets the hook name as argv[1], the JSON as argv[2] and on stdin, and WHARF_* env', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(directory, 'hook.sh', recordingScript(directory));
  const engine = createHookEngine(hooksConfig({ hooksFile: hook, format: 'v2' }), captureLogger().logger);
  const event = sampleEvent('pre-create');

  assert.deepEqual(await engine.runBlocking(event), { kind: 'continue' });

  const expectedJson = formatPayload('v2', event);
  assert.equal(await readText(join(directory, 'argc')), '2');
  assert.equal(await readText(join(directory, 'argv1')), 'pre-create');
  assert.equal(await readText(join(directory, 'argv2')), expectedJson);
  assert.equal(await readText(join(directory, 'stdin')), expectedJson);
  const [record] = engine.runs.records();
  assert.ok(record);
  assert.equal(await readText(join(directory, 'env')), `pre-create\n${event.upload.id}\n${record.eventId}`);
  assert.equal(record.status, 'completed');
  assert.equal(record.exitCode, 0);
  assert.equal(record.target, `file:${hook}`);
  assert.equal(record.hook, 'pre-create');
  assert.equal(record.blocking, true);
});

test('a non-zero exit rejects with 400 and a fixed message; the stderr (a secret) is logged at warn, never sent', async (t) => {
  const directory = await temporaryDirectory(t);
  const secret = 'password=hunter2-in-/srv/secrets/db.env';
  const hook = await writeScript(directory, 'hook.sh', `echo "curl failed: ${secret}" >&2\nexit 1`);
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), logger);

  const outcome = await engine.runBlocking(sampleEvent());
  assert.deepEqual(outcome, {
    kind: 'reject',
    status: 400,
    body: 'Hook "pre-create" failed with exit code 1',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  });
  assert.ok(!JSON.stringify(outcome).includes('hunter2'));
  // Positive control: the operator still finds the reason, in a warn line naming the hook.
  const warned = entries.find(
    (entry) => entry.level === 'warn' && String(entry.fields.stderr).includes(secret),
  );
  assert.ok(warned, JSON.stringify(entries));
  assert.equal(warned.fields.hook, 'pre-create');
  assert.equal(warned.fields.target, `file:${basename(hook)}`);
  const [record] = engine.runs.records();
  assert.equal(record?.status, 'failed');
  assert.equal(record?.exitCode, 1);
});

test('a hook that means to answer prints a reject answer on stdout: the client gets its status, body and headers', async (t) => {
  const directory = await temporaryDirectory(t);
  const answer = JSON.stringify({
    reject: true,
    httpResponse: { status: 403, body: 'memes are not allowed here', headers: { 'X-Reason': 'meme' } },
  });
  const hook = await writeScript(
    directory,
    'hook.sh',
    `echo 'debug: /srv/secret' >&2\nprintf '%s' '${answer}'`,
  );
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), captureLogger().logger);

  assert.deepEqual(await engine.runBlocking(sampleEvent()), {
    kind: 'reject',
    status: 403,
    body: 'memes are not allowed here',
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Reason': 'meme' },
  });
});

test('a non-zero exit with empty stderr gives a message with the exit code', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(directory, 'hook.sh', 'exit 3');
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent('pre-terminate'));
  assert.equal(outcome.kind, 'reject');
  assert.equal(outcome.kind === 'reject' && outcome.status, 400);
  assert.equal(outcome.kind === 'reject' && outcome.body, 'Hook "pre-terminate" failed with exit code 3');
});

test('a huge stderr is logged capped and never answered; a huge stdout is drained and not kept', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(
    directory,
    'hook.sh',
    'head -c 20000000 /dev/zero\nhead -c 100000 /dev/zero | tr "\\0" "e" >&2\nexit 1',
  );
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind, 'reject');
  assert.equal(outcome.kind === 'reject' && outcome.body, 'Hook "pre-create" failed with exit code 1');
  const stderrLog = entries.find((entry) => entry.level === 'warn' && entry.fields.stderr !== undefined);
  assert.match(String(stderrLog?.fields.stderr), /^e{1024}…$/);
  const stdoutLog = entries.find((entry) => entry.message === 'hook stdout');
  assert.equal(String(stdoutLog?.fields.stdout).length, stdoutLimitBytes);
});

test('a missing hook file rejects with 400 naming the hook, and logs an error', async (t) => {
  const directory = await temporaryDirectory(t);
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: join(directory, 'absent.sh') }), logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind, 'reject');
  assert.equal(outcome.kind === 'reject' && outcome.status, 400);
  assert.match(outcome.kind === 'reject' ? outcome.body : '', /Hook "pre-create".*not found/);
  assert.equal(engine.runs.records()[0]?.status, 'failed');
  assert.ok(entries.some((entry) => entry.level === 'error'));
});

test('a hook file that is not executable rejects with 400', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(directory, 'hook.sh', 'exit 0');
  const { chmod } = await import('node:fs/promises');
  await chmod(hook, 0o644);
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 400);
  assert.match(engine.runs.records()[0]?.error ?? '', /EACCES/);
});

test('a post file hook that fails is logged and recorded, never thrown', async (t) => {
  const directory = await temporaryDirectory(t);
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ hooksFile: join(directory, 'absent.sh') }), logger);
  engine.emit(sampleEvent('post-finish'));
  const record = await engine.runs.waitFor((candidate) => candidate.event === 'post-finish');
  assert.equal(record.status, 'failed');
  assert.equal(record.blocking, false);
  assert.ok(entries.some((entry) => entry.level === 'error' && entry.fields.eventId === record.eventId));
});

test('a hook that outlives the executable timeout is killed with what it started, and recorded timed_out', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(
    directory,
    'slow.sh',
    `echo $$ > "${directory}/shell.pid"\nsleep 30 &\necho $! > "${directory}/sleep.pid"\nwait`,
  );
  const engine = createHookEngine(
    hooksConfig({ hooksFile: hook, executableTimeoutMs: 300 }),
    captureLogger().logger,
  );

  const outcome = await engine.runBlocking(sampleEvent());
  assert.deepEqual(outcome, {
    kind: 'reject',
    status: 504,
    body: 'Hook "pre-create" did not answer within 300 ms',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  });
  const [record] = engine.runs.records();
  assert.equal(record?.status, 'timed_out');
  assert.equal(record?.error, 'timed out after 300 ms');

  const shellPid = Number(await readText(join(directory, 'shell.pid')));
  const sleepPid = Number(await readText(join(directory, 'sleep.pid')));
  await waitUntil(() => processGone(shellPid) && processGone(sleepPid), 'the hook and its sleep are killed');
});

test('a bare executable name is looked up in PATH', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeScript(directory, 'wharf-test-hook', `printf '%s' "$1" > "${directory}/argv1"`);
  const engine = createHookEngine(hooksConfig({ hooksFile: 'wharf-test-hook' }), captureLogger().logger, {
    executableEnv: { ...process.env, PATH: `${directory}:${process.env.PATH ?? ''}` },
  });
  assert.deepEqual(await engine.runBlocking(sampleEvent('pre-terminate')), { kind: 'continue' });
  assert.equal(await readText(join(directory, 'argv1')), 'pre-terminate');
});

test('a payload too large for argv fails the blocking hook with 500 instead of crashing', async (t) => {
  const directory = await temporaryDirectory(t);
  const hook = await writeScript(directory, 'hook.sh', 'exit 0');
  const engine = createHookEngine(hooksConfig({ hooksFile: hook }), captureLogger().logger);
  const event = sampleEvent('pre-create', {
    upload: { ...sampleEvent().upload, metadata: { big: 'x'.repeat(300_000) } },
  });
  const outcome = await engine.runBlocking(event);
  assert.equal(outcome.kind === 'reject' && outcome.status, 500);
  assert.match(engine.runs.records()[0]?.error ?? '', /E2BIG/);
});
