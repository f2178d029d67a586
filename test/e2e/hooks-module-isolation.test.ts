import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = `admin-${randomUUID()}`;

/** A pre-create filter that, by the upload's `mode`, loops forever, crashes its thread, runs out of memory, refuses, or tags the upload with the thread it ran on. */
const guard = `
import { isMainThread, threadId } from 'node:worker_threads';
export default function register(hooks, context) {
  // Through the main thread's bus and back: the worker's listener hears what the filter emitted.
  context.emitter.on('ping', (n) => context.logger.info({ n }, 'isolated listener heard ping'));
  hooks.action('post-create', (upload, meta) => context.logger.info({ id: upload.id, event: meta.event }, 'isolated action ran'));
  hooks.filter('pre-create', async (payload, meta, run) => {
    const mode = payload.metadata.mode;
    if (mode === 'loop') for (;;) {}
    if (mode === 'crash') {
      setTimeout(() => { throw new Error('boom from the module'); });
      return new Promise(() => {});
    }
    if (mode === 'oom') {
      const kept = [];
      for (;;) kept.push(new Array(100000).fill(kept.length));
    }
    if (mode === 'refuse') throw Object.assign(new Error('not this one'), { status: 403 });
    const known = await context.uploads.get('no-such-upload');
    const read = await context.uploads.read('any').then(() => 'read', (error) => error.message);
    await context.emitter.emit('ping', 7);
    context.logger.info({ known: known === undefined }, 'isolated filter ran');
    return { ...payload, metadata: { ...payload.metadata, thread: isMainThread ? 'main' : String(threadId), known: String(known === undefined), read, args: JSON.stringify(run.args) } };
  });
}
`;

function metadata(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

async function create(wharf: WharfProcess, mode: string) {
  return send('POST', wharf.endpoint, {
    headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata({ mode }) },
  });
}

/** A metadata value the filter set on a created upload (from HEAD's Upload-Metadata). */
async function tagOf(wharf: WharfProcess, location: string, key = 'thread'): Promise<string> {
  const head = await send('HEAD', new URL(location, wharf.origin).href, { headers: tus });
  assert.equal(head.status, 200);
  const pair = String(head.headers['upload-metadata'])
    .split(',')
    .map((item) => item.split(' '))
    .find(([name]) => name === key);
  return Buffer.from(pair?.[1] ?? '', 'base64').toString();
}

interface RunView {
  event: string;
  status: string;
  error?: string;
}

async function preCreateErrors(wharf: WharfProcess): Promise<RunView[]> {
  const reply = await send('GET', `${wharf.origin}/admin/api/events?limit=100`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(reply.status, 200, reply.text);
  const { events } = JSON.parse(reply.text) as { events: { event: string; runs: RunView[] }[] };
  return events
    .filter((event) => event.event === 'pre-create')
    .flatMap((event) => event.runs)
    .filter((run) => run.status !== 'completed');
}

// The tests at once: the first uses the server started below, the others start their own.
describe('isolation: worker (a hook module in a worker thread with a memory limit and a timeout)', {
  concurrency: true,
}, () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-isolation-'));
    const folder = path.join(scratch, 'modules', 'guard');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'index.mjs'), guard);
    await writeFile(
      path.join(folder, 'wharf-module.json'),
      // Longer than the filter's own timeout (2 s): the next upload's run reaches the worker while it is still
      // stuck in the loop, and moves to the new worker once the stuck one is terminated. Not much longer: the loop
      // spins a core until then, and that run then still has 1.5 s of its own timeout for the new worker.
      JSON.stringify({ isolation: 'worker', memoryLimitMb: 32, timeout: 2.5 }),
    );
    wharf = await startWharf({
      args: [
        '--hooks-modules-dir',
        path.join(scratch, 'modules'),
        '--hooks-executable-timeout',
        '2',
        '--admin',
        '--admin-token',
        token,
      ],
    });
  });
  after(async () => {
    await wharf?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('runs the filter in a worker; a loop, a crash and an OOM there fail that run, recorded, and the next upload works', async () => {
    // Positive control: the filter ran, in a worker thread, and reached context.uploads through the main thread.
    const first = await create(wharf, 'plain');
    assert.equal(first.status, 201, first.text);
    const firstThread = await tagOf(wharf, String(first.headers.location));
    assert.notEqual(firstThread, 'main');
    assert.notEqual(firstThread, '');
    const location = String(first.headers.location);
    assert.equal(await tagOf(wharf, location, 'known'), 'true');
    assert.match(
      await tagOf(wharf, location, 'read'),
      /guard: context\.uploads\.read \(a stream\) is not available with "isolation": "worker"/,
    );
    await eventually(
      () =>
        wharf.logs.find(
          (line) => line.msg === 'isolated listener heard ping' && line.n === 7 && line.module === 'guard',
        ),
      'the worker listener to hear the ping its filter emitted',
    );
    // Actions run there too.
    const firstId = location.split('/').pop();
    await eventually(
      () => wharf.logs.find((line) => line.msg === 'isolated action ran' && line.id === firstId),
      'the isolated post-create action to run',
    );

    // A HookError-shaped refusal keeps its status across the thread boundary.
    const refused = await create(wharf, 'refuse');
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.text, /not this one/);

    const fates: [string, number, RegExp][] = [
      ['loop', 504, /did not answer within 2000 ms/],
      ['crash', 500, /crashed: boom from the module/],
      ['oom', 500, /ran out of memory \(limit 32 MB\)/],
    ];
    let previous = firstThread;
    for (const [mode, status, reason] of fates) {
      const failed = await create(wharf, mode);
      assert.equal(failed.status, status, `${mode}: ${failed.text}`);
      // The server lives on: the next upload is created, by a new worker that loaded the module again.
      const next = await create(wharf, 'plain');
      assert.equal(next.status, 201, `after ${mode}: ${next.text}`);
      const thread = await tagOf(wharf, String(next.headers.location));
      assert.notEqual(thread, 'main');
      assert.notEqual(thread, previous, `after ${mode} the worker was replaced`);
      previous = thread;
      // The failed run is in the run history with its reason.
      const errors = await eventually(async () => {
        const runs = await preCreateErrors(wharf);
        return runs.some((run) => reason.test(run.error ?? '')) ? runs : undefined;
      }, `the ${mode} run recorded with its reason`);
      assert.ok(errors.length > 0);
    }
    assert.equal(wharf.child.exitCode, null, 'the server is still running');
  });

  it('refuses at start, naming the module, what an isolated module cannot use (init, schedule)', async () => {
    const modules = path.join(scratch, 'refused');
    const folder = path.join(modules, 'cleaner');
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, 'index.mjs'),
      `export default (hooks) => { hooks.filter('pre-create', (p) => p); hooks.schedule('* * * * *', () => {}); };`,
    );
    await writeFile(path.join(folder, 'wharf-module.json'), JSON.stringify({ isolation: 'worker' }));
    // Positive control: the same module without isolation starts.
    const plainModules = path.join(scratch, 'plain');
    await mkdir(path.join(plainModules, 'cleaner'), { recursive: true });
    await writeFile(
      path.join(plainModules, 'cleaner', 'index.mjs'),
      `export default (hooks) => { hooks.filter('pre-create', (p) => p); hooks.schedule('* * * * *', () => {}); };`,
    );
    const started = await startWharf({ args: ['--hooks-modules-dir', plainModules] });
    assert.equal((await create(started, 'plain')).status, 201);
    await started.stop();

    // A module that never finishes loading (a loop at its top level) fails start-up at its timeout (short: the
    // loop spins a core until then).
    const spinning = path.join(scratch, 'spinning');
    await mkdir(path.join(spinning, 'spin'), { recursive: true });
    await writeFile(path.join(spinning, 'spin', 'index.mjs'), 'for (;;) {}\nexport default () => {};\n');
    await writeFile(
      path.join(spinning, 'spin', 'wharf-module.json'),
      JSON.stringify({ isolation: 'worker', timeout: 0.2 }),
    );
    await assert.rejects(
      startWharf({ args: ['--hooks-modules-dir', spinning] }),
      (error: Error) =>
        /spin/.test(error.message) && /did not finish loading within 200 ms/.test(error.message),
    );

    await assert.rejects(
      startWharf({ args: ['--hooks-modules-dir', modules] }),
      (error: Error) =>
        /cleaner/.test(error.message) &&
        /schedule\(\) is not available with "isolation": "worker"/.test(error.message),
    );
  });

  it('a named hook binding the isolated module hands its args to the worker with each run', async () => {
    const config = path.join(scratch, 'bound.yaml');
    await writeFile(
      config,
      `hooks:
  guard:
    transport: module
    module: guard
    args: { team: storage }
endpoints:
  - path: /files
    hooks:
      - { hook: guard, events: [pre-create], args: { limit: 3 } }
`,
    );
    const bound = await startWharf({
      args: ['--hooks-modules-dir', path.join(scratch, 'modules'), '--config', config],
    });
    try {
      const created = await create(bound, 'plain');
      assert.equal(created.status, 201, created.text);
      const location = String(created.headers.location);
      assert.notEqual(await tagOf(bound, location), 'main');
      assert.deepEqual(JSON.parse(await tagOf(bound, location, 'args')), { team: 'storage', limit: 3 });
      // A refusal through the binding keeps its status, as unbound.
      assert.equal((await create(bound, 'refuse')).status, 403);
    } finally {
      await bound.stop();
    }
  });
});
