import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { patchInTwoParts, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/*
 * SIGHUP reloads the hook modules (issue 19, point 2): a real wharf process, a module folder rewritten between
 * signals, and what a user sees: the metadata a filter sets, the lines its handlers write, its route's answer.
 */

/**
 * A module labelled `label`: its pre-create filter tags the upload's metadata, its pre-finish filter and
 * post-finish action write `<label> <event> <id>`, its route answers the label, its schedule writes
 * `<label> tick` every second and its server.stop handler `<label> server.stop`.
 */
function moduleWith(label: string): string {
  return `
import { appendFileSync } from 'node:fs';
export default function register(hooks, context) {
  const log = (line) => appendFileSync(context.env.RELOAD_LOG, line + '\\n');
  hooks.filter('pre-create', (payload) => ({ ...payload, metadata: { ...payload.metadata, version: '${label}' } }));
  hooks.filter('pre-finish', (payload) => { log('${label} pre-finish ' + payload.id); return payload; });
  hooks.action('post-finish', (upload) => log('${label} post-finish ' + upload.id));
  hooks.init('routes.before', ({ router }) => router.get('/module-version', (req, res) => res.end('${label}')));
  hooks.init('server.stop', () => log('${label} server.stop'));
  hooks.schedule('* * * * * *', () => log('${label} tick'));
}
`;
}

async function linesOf(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

async function create(wharf: WharfProcess, length: number): Promise<string> {
  const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': length } });
  assert.equal(created.status, 201, created.text);
  return String(created.headers.location).split('/').pop() ?? '';
}

/** The `version` metadata the module's pre-create filter set on the upload (HEAD's Upload-Metadata). */
async function versionOf(wharf: WharfProcess, id: string): Promise<string | undefined> {
  const head = await send('HEAD', `${wharf.endpoint}${id}`, { headers: tus });
  assert.equal(head.status, 200);
  const pair = String(head.headers['upload-metadata'] ?? '')
    .split(',')
    .map((item) => item.split(' '))
    .find(([key]) => key === 'version');
  return pair?.[1] === undefined ? undefined : Buffer.from(pair[1], 'base64').toString();
}

async function patchAll(wharf: WharfProcess, id: string, body: Buffer): Promise<number> {
  return patchInTwoParts(`${wharf.endpoint}${id}`, body, body.length).finish();
}

function logged(wharf: WharfProcess, message: string): Record<string, unknown>[] {
  return wharf.logs.filter((line) => line.msg === message);
}

const reloadedMessage = 'configuration reloaded';
const failedMessage = 'configuration reload failed; the running hooks are kept';

/** Sends SIGHUP and waits for the next log line of `message`; returns it. */
async function hangUp(wharf: WharfProcess, message: string): Promise<Record<string, unknown>> {
  const before = logged(wharf, message).length;
  wharf.child.kill('SIGHUP');
  const found = await eventually(() => {
    const lines = logged(wharf, message);
    return lines.length > before ? lines : undefined;
  }, message);
  return found.at(-1) ?? {};
}

async function routeAnswer(wharf: WharfProcess): Promise<string> {
  const answer = await send('GET', `${wharf.origin}/module-version`);
  assert.equal(answer.status, 200);
  return answer.text;
}

function count(lines: readonly string[], line: string): number {
  return lines.filter((found) => found === line).length;
}

describe('SIGHUP reloads the hook modules without dropping uploads in progress', () => {
  let scratch: string;
  let moduleFile: string;
  let reloadLog: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-module-reload-'));
    await mkdir(path.join(scratch, 'modules', 'stamp'), { recursive: true });
    moduleFile = path.join(scratch, 'modules', 'stamp', 'index.js');
    reloadLog = path.join(scratch, 'reload.log');
    await writeFile(moduleFile, moduleWith('v1'));
    wharf = await startWharf({
      args: ['--hooks-modules-dir', path.join(scratch, 'modules')],
      env: { RELOAD_LOG: reloadLog },
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('an upload mid-PATCH finishes under the old module; one created after the reload runs the new one', async () => {
    // v1's schedule runs (the positive control of the schedule test below).
    await eventually(
      async () => (count(await linesOf(reloadLog), 'v1 tick') > 0 ? true : undefined),
      'a v1 tick',
    );
    const body = Buffer.alloc(64 * 1024, 7);
    const inFlight = await create(wharf, body.length);
    assert.equal(await versionOf(wharf, inFlight), 'v1');
    assert.equal(await routeAnswer(wharf), 'v1');
    const patch = patchInTwoParts(`${wharf.endpoint}${inFlight}`, body, 1024);
    // The server is handling the PATCH (its first bytes are on disk) when the module changes.
    await eventually(async () => {
      const stored = await stat(path.join(wharf.dataDir, inFlight)).catch(() => undefined);
      return stored !== undefined && stored.size > 0 ? true : undefined;
    }, 'the first bytes of the PATCH on disk');
    await writeFile(moduleFile, moduleWith('v2'));
    const reloaded = await hangUp(wharf, reloadedMessage);
    assert.deepEqual(reloaded.modules, [moduleFile]);
    const next = await create(wharf, 3);
    assert.equal(await versionOf(wharf, next), 'v2');
    assert.equal(await routeAnswer(wharf), 'v2');
    assert.equal(await patch.finish(), 204);
    assert.equal(await patchAll(wharf, next, Buffer.from('abc')), 204);
    const lines = await eventually(async () => {
      const found = await linesOf(reloadLog);
      return found.includes(`v1 post-finish ${inFlight}`) && found.includes(`v2 post-finish ${next}`)
        ? found
        : undefined;
    }, 'both post-finish actions');
    // The upload in flight kept v1 to its end; the one created after the reload ran v2 only.
    assert.ok(lines.includes(`v1 pre-finish ${inFlight}`), lines.join('\n'));
    assert.ok(!lines.some((line) => line.startsWith('v2') && line.endsWith(inFlight)), lines.join('\n'));
    assert.ok(lines.includes(`v2 pre-finish ${next}`), lines.join('\n'));
    assert.ok(!lines.some((line) => line.startsWith('v1') && line.endsWith(next)), lines.join('\n'));
    // The replaced module's server.stop handler ran; the new one's did not.
    assert.ok(lines.includes('v1 server.stop'), lines.join('\n'));
    assert.ok(!lines.includes('v2 server.stop'), lines.join('\n'));
  });

  it("the old module's schedule stops and the new one's runs", async () => {
    // Positive control: v1's schedule ran before the reload (the test above waited for it).
    assert.ok(count(await linesOf(reloadLog), 'v1 tick') > 0);
    // Two v2 ticks since the reload, then two more: no v1 tick in between.
    const settled = await eventually(async () => {
      const found = await linesOf(reloadLog);
      return count(found, 'v2 tick') >= 2 ? found : undefined;
    }, 'two v2 ticks');
    const v1Ticks = count(settled, 'v1 tick');
    const v2Ticks = count(settled, 'v2 tick');
    const later = await eventually(async () => {
      const found = await linesOf(reloadLog);
      return count(found, 'v2 tick') >= v2Ticks + 2 ? found : undefined;
    }, 'two more v2 ticks');
    assert.equal(count(later, 'v1 tick'), v1Ticks);
  });

  it('a reload with a broken module keeps every running module and logs the file and the problem', async () => {
    // The good module changes too: nothing of the new set applies while one module is broken.
    await writeFile(moduleFile, moduleWith('v3'));
    const broken = path.join(scratch, 'modules', 'zz-broken');
    await mkdir(broken);
    const brokenFile = path.join(broken, 'index.js');

    await writeFile(brokenFile, 'export default function register(hooks) { hooks.filter("pre-create", ; }\n');
    const syntax = await hangUp(wharf, failedMessage);
    assert.equal(syntax.file, brokenFile);
    assert.match(String(syntax.error), /failed to load: .*(Unexpected token|SyntaxError)/);

    await writeFile(
      brokenFile,
      'export default function register() { throw new Error("no database here"); }\n',
    );
    const thrown = await hangUp(wharf, failedMessage);
    assert.equal(thrown.file, brokenFile);
    assert.match(String(thrown.error), /register failed: no database here/);

    await writeFile(brokenFile, 'export default function register() {}\n');
    await writeFile(path.join(broken, 'wharf-module.json'), '{ "isolation": "process" }\n');
    const refused = await hangUp(wharf, failedMessage);
    assert.equal(refused.file, broken);
    assert.match(String(refused.error), /isolation must be "none" or "worker"/);

    // The process serves on with v2: filter, route and actions.
    const id = await create(wharf, 3);
    assert.equal(await versionOf(wharf, id), 'v2');
    assert.equal(await routeAnswer(wharf), 'v2');
    assert.equal(await patchAll(wharf, id, Buffer.from('abc')), 204);
    await eventually(
      async () => ((await linesOf(reloadLog)).includes(`v2 post-finish ${id}`) ? true : undefined),
      'the v2 action after the failed reloads',
    );
    assert.ok(!(await linesOf(reloadLog)).includes('v2 server.stop'));

    // Positive control: once the broken module is gone, the same signal brings v3 in.
    await rm(broken, { recursive: true });
    await hangUp(wharf, reloadedMessage);
    const after = await create(wharf, 3);
    assert.equal(await versionOf(wharf, after), 'v3');
    assert.equal(await routeAnswer(wharf), 'v3');
  });
});

describe('SIGHUP reloads an isolated (worker thread) module', () => {
  let scratch: string;
  let moduleFile: string;
  let wharf: WharfProcess;
  const isolated = (label: string) =>
    `export default function register(hooks) {
  hooks.filter('pre-create', (payload) => ({ ...payload, metadata: { ...payload.metadata, version: '${label}' } }));
}
`;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-module-reload-isolated-'));
    const folder = path.join(scratch, 'modules', 'tagger');
    await mkdir(folder, { recursive: true });
    moduleFile = path.join(folder, 'index.js');
    await writeFile(path.join(folder, 'wharf-module.json'), '{ "isolation": "worker" }\n');
    await writeFile(moduleFile, isolated('w1'));
    wharf = await startWharf({ args: ['--hooks-modules-dir', path.join(scratch, 'modules')] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it("uploads created after the reload run the new module's filter in its new worker", async () => {
    assert.equal(await versionOf(wharf, await create(wharf, 3)), 'w1');
    await writeFile(moduleFile, isolated('w2'));
    await hangUp(wharf, reloadedMessage);
    assert.equal(await versionOf(wharf, await create(wharf, 3)), 'w2');
    // A broken isolated module is refused like any other: w2 stays.
    await writeFile(moduleFile, 'export default function register() { throw new Error("bad w3"); }\n');
    const failed = await hangUp(wharf, failedMessage);
    assert.equal(failed.file, moduleFile);
    assert.match(String(failed.error), /bad w3/);
    assert.equal(await versionOf(wharf, await create(wharf, 3)), 'w2');
  });
});
