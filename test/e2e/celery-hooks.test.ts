import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { rustusEventNames } from '../../src/hooks/events.ts';
import { temporaryVhost, uploadLifecycle } from '../support/brokers.ts';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { repoRoot, startWharf } from '../support/wharf-process.ts';

const run = promisify(execFile);

interface CeleryRun {
  readonly task: string;
  readonly id: string;
  readonly payload: { upload: { id: string; metadata: Record<string, string> } };
}

async function readRuns(file: string): Promise<CeleryRun[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CeleryRun);
}

async function waitForRuns(file: string, count: number, timeoutMs = 30_000): Promise<CeleryRun[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const runs = await readRuns(file);
    if (runs.length >= count) return runs;
    if (Date.now() > deadline) throw new Error(`the Celery worker ran ${runs.length} of ${count} tasks`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A real Celery 5 worker running the seed's rustus_celery app (test/fixtures/rustus_celery). */
async function startWorker(brokerUrl: string, record: string, prefixes: string): Promise<ChildProcess> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'scripts/celery-venv.sh')], {
    timeout: 300_000,
  });
  const venv = stdout.trim();
  const worker = spawn(
    path.join(venv, 'bin/celery'),
    [
      '-A',
      'rustus_celery',
      'worker',
      '--pool',
      'solo',
      '--loglevel',
      'INFO',
      '--without-gossip',
      '--without-mingle',
      '--without-heartbeat',
    ],
    {
      cwd: path.join(repoRoot, 'test/fixtures'),
      env: {
        ...process.env,
        WHARF_CELERY_BROKER: brokerUrl,
        WHARF_CELERY_RECORD: record,
        WHARF_CELERY_PREFIXES: prefixes,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Celery worker not ready:\n${output}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/ready\./.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    worker.stdout?.on('data', onData);
    worker.stderr?.on('data', onData);
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Celery worker exited with ${code}:\n${output}`));
    });
  });
  return worker;
}

describe('Celery worker consuming AMQP hooks (the seed recipe)', () => {
  let directory: string;
  let worker: ChildProcess;
  let vhost: { url: string; remove(): Promise<void> };
  let record: string;

  before(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'wharf-celery-'));
    record = path.join(directory, 'runs.jsonl');
    vhost = await temporaryVhost();
    worker = await startWorker(vhost.url, record, 'rustus,media');
  });
  after(async () => {
    if (worker.exitCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      // Its work is checked by now: killed, as SIGTERM and SIGQUIT each took 10 s to end it (its broker connection
      // goes with the process, its queues with the vhost).
      worker.kill('SIGKILL');
      await exited;
    }
    await vhost.remove().catch(() => {});
    await rm(directory, { recursive: true, force: true });
  });

  test('runs rustus.<event> for every event with the hook payload as the argument', async () => {
    const wharf = await startWharf({
      args: [
        '--hooks-amqp-url',
        vhost.url,
        '--hooks-amqp-exchange',
        'celery',
        '--hooks-amqp-exchange-kind',
        'direct',
        '--hooks-amqp-routing-key',
        'celery',
        '--hooks-amqp-celery',
      ],
    });
    try {
      const uploadId = await uploadLifecycle(wharf.endpoint, 'celery.mkv');
      const runs = await waitForRuns(record, rustusEventNames.length);
      assert.deepEqual(
        runs.map((entry) => entry.task).sort(),
        rustusEventNames.map((event) => `rustus.${event}`).sort(),
      );
      for (const entry of runs) {
        assert.deepEqual(hookSchemaErrors('default', entry.payload), [], entry.task);
        assert.equal(entry.payload.upload.metadata.filename, 'celery.mkv');
        if (entry.task !== 'rustus.pre-create') assert.equal(entry.payload.upload.id, uploadId);
      }
      assert.equal(new Set(runs.map((entry) => entry.id)).size, runs.length, 'one task id per event');
    } finally {
      await wharf.stop();
    }
  });

  test('with --hooks-amqp-queues-prefix the tasks are <prefix>.<event>', async () => {
    const before = (await readRuns(record)).length;
    const wharf = await startWharf({
      args: [
        '--hooks-amqp-url',
        vhost.url,
        '--hooks-amqp-exchange',
        'celery',
        '--hooks-amqp-exchange-kind',
        'direct',
        '--hooks-amqp-routing-key',
        'celery',
        '--hooks-amqp-queues-prefix',
        'media',
        '--hooks-amqp-celery',
        '--hooks',
        'post-finish',
      ],
    });
    try {
      await uploadLifecycle(wharf.endpoint, 'prefixed.mkv');
      const runs = (await waitForRuns(record, before + 1)).slice(before);
      assert.deepEqual(
        runs.map((entry) => [entry.task, entry.payload.upload.metadata.filename]),
        [['media.post-finish', 'prefixed.mkv']],
      );
    } finally {
      await wharf.stop();
    }
  });
});
