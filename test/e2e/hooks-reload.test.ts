import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { writeHoldingModule } from '../support/holding-module.ts';
import { patchInTwoParts, send, tus } from '../support/http.ts';
import { linesOf } from '../support/lines-file.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** A config whose one named hook writes `<label> <event> <upload id>` on pre-create and post-finish. */
function configWith(label: string): string {
  return `hooks:
  stamp:
    transport: file
    shell: true
    cwd: .
    command: 'echo "${label} $1 $WHARF_UPLOAD_ID" >> ran.log'
endpoints:
  - path: /files
    hooks:
      - { hook: stamp, events: [pre-create, post-finish] }
`;
}

async function create(wharf: WharfProcess, length: number): Promise<string> {
  const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': length } });
  assert.equal(created.status, 201, created.text);
  return String(created.headers.location).split('/').pop() ?? '';
}

async function offsetOf(wharf: WharfProcess, id: string): Promise<number> {
  const head = await send('HEAD', `${wharf.endpoint}${id}`, { headers: tus });
  return Number(head.headers['upload-offset']);
}

function logged(wharf: WharfProcess, message: string): Record<string, unknown>[] {
  return wharf.logs.filter((line) => line.msg === message);
}

describe('SIGHUP reloads --config without dropping uploads in progress', () => {
  let scratch: string;
  let configFile: string;
  let ranLog: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-reload-'));
    configFile = path.join(scratch, 'wharf.yaml');
    ranLog = path.join(scratch, 'ran.log');
    await writeFile(configFile, configWith('v1'));
    wharf = await startWharf({ args: ['--config', configFile] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('an upload mid-PATCH completes with the hooks it started with; the next one runs the new set', async () => {
    const body = Buffer.alloc(64 * 1024, 7);
    const inFlight = await create(wharf, body.length);
    // The PATCH has started (its first bytes are in) when the configuration changes.
    const patch = patchInTwoParts(`${wharf.endpoint}${inFlight}`, body, 1024);
    assert.ok((await linesOf(ranLog)).includes(`v1 pre-create ${inFlight}`));
    // Its first bytes are on disk: the server is handling the PATCH.
    await eventually(async () => {
      const stored = await stat(path.join(wharf.dataDir, inFlight)).catch(() => undefined);
      return stored !== undefined && stored.size > 0 ? true : undefined;
    }, 'the first bytes of the PATCH on disk');
    await writeFile(configFile, configWith('v2'));
    wharf.child.kill('SIGHUP');
    await eventually(
      () => (logged(wharf, 'configuration reloaded').length === 1 ? true : undefined),
      'the reload',
    );
    const next = await create(wharf, 3);
    assert.equal(await patch.finish(), 204);
    assert.equal(await offsetOf(wharf, inFlight), body.length);
    const lines = await eventually(async () => {
      const found = await linesOf(ranLog);
      return found.some((line) => line.endsWith(`post-finish ${inFlight}`)) ? found : undefined;
    }, 'the post-finish of the upload in flight');
    // The upload in flight kept v1 for its post-finish; the upload created after the reload ran v2.
    assert.ok(lines.includes(`v1 post-finish ${inFlight}`), lines.join('\n'));
    assert.ok(!lines.includes(`v2 post-finish ${inFlight}`), lines.join('\n'));
    assert.ok(lines.includes(`v2 pre-create ${next}`), lines.join('\n'));
    assert.ok(!lines.includes(`v1 pre-create ${next}`), lines.join('\n'));
    const [reloaded] = logged(wharf, 'configuration reloaded');
    assert.equal(reloaded?.file, configFile);
    assert.equal(reloaded?.version, 1);
  });

  it('a reload that fails keeps the running hooks and logs the file and the problem', async () => {
    await writeFile(configFile, `${configWith('v3')}    colour: blue\n`);
    wharf.child.kill('SIGHUP');
    const [failure] = await eventually(() => {
      const found = logged(wharf, 'configuration reload failed; the running hooks are kept');
      return found.length > 0 ? found : undefined;
    }, 'the failed reload');
    assert.equal(failure?.file, configFile);
    assert.match(String(failure?.error), new RegExp(`${configFile.replaceAll('.', '\\.')} is not valid`));
    assert.match(String(failure?.error), /endpoints\[0\]: unknown key "colour"/);
    // The process serves on, with the set of the last good reload (v2).
    const id = await create(wharf, 3);
    await eventually(
      async () => ((await linesOf(ranLog)).includes(`v2 pre-create ${id}`) ? true : undefined),
      'the v2 hook after the failed reload',
    );
  });

  it('a reload that changes an endpoint (not only hooks) is refused and says a restart is needed', async () => {
    await writeFile(
      configFile,
      configWith('v4').replace('- path: /files', '- path: /files\n    maxFileSize: 10'),
    );
    const before = logged(wharf, 'configuration reload failed; the running hooks are kept').length;
    wharf.child.kill('SIGHUP');
    const failures = await eventually(() => {
      const found = logged(wharf, 'configuration reload failed; the running hooks are kept');
      return found.length > before ? found : undefined;
    }, 'the refused reload');
    assert.match(
      String(failures.at(-1)?.error),
      /endpoints .* differ from the running ones; they change only with a restart/,
    );
  });
});

describe('SIGHUP under --workers: the primary forwards it to every worker', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-reload-workers-'));
    await writeFile(path.join(scratch, 'wharf.yaml'), configWith('v1'));
    wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml'), '--workers', '2'] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('each worker reloads, and uploads (whichever worker takes them) run the new set', async () => {
    // Both workers listen before the signal: each logs its start.
    await eventually(
      () =>
        wharf.logs.filter((line) => String(line.msg).startsWith('wharf listening')).length === 2
          ? true
          : undefined,
      'both workers',
    );
    await writeFile(path.join(scratch, 'wharf.yaml'), configWith('v2'));
    wharf.child.kill('SIGHUP');
    await eventually(
      () => (logged(wharf, 'configuration reloaded').length === 2 ? true : undefined),
      'a reload in each worker',
    );
    const ids: string[] = [];
    for (let index = 0; index < 6; index++) ids.push(await create(wharf, 3));
    const lines = await linesOf(path.join(scratch, 'ran.log'));
    for (const id of ids) assert.ok(lines.includes(`v2 pre-create ${id}`), lines.join('\n'));
    assert.ok(!lines.some((line) => line.startsWith('v1 pre-create')), lines.join('\n'));
  });
});

describe('SIGHUP under --workers while a worker still starts', () => {
  it('does not end the starting worker: it reloads once it listens, and every worker runs the new set', async () => {
    // Worker slot 2 waits in a hook module's top-level code until the test lets it go: it is still starting when
    // the signal comes (SIGHUP's default action ends a process).
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-reload-starting-'));
    const release = path.join(scratch, 'release');
    await writeFile(path.join(scratch, 'wharf.yaml'), configWith('v1'));
    await writeHoldingModule(path.join(scratch, 'modules'), release);
    const wharf = await startWharf({
      args: [
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--hooks-modules-dir',
        path.join(scratch, 'modules'),
        '--workers',
        '2',
      ],
    });
    const listening = (): Record<string, unknown>[] =>
      wharf.logs.filter((line) => String(line.msg).startsWith('wharf listening'));
    const reloaded = (): number => wharf.logs.filter((line) => line.msg === 'configuration reloaded').length;
    try {
      assert.equal(listening().length, 1, 'worker slot 2 is still starting');
      await writeFile(path.join(scratch, 'wharf.yaml'), configWith('v2'));
      wharf.child.kill('SIGHUP');
      // Positive control: the worker that listens reloads at once.
      await eventually(() => (reloaded() === 1 ? true : undefined), 'the reload of worker slot 1');
      await writeFile(release, '');
      await eventually(() => (listening().length === 2 ? true : undefined), 'worker slot 2 to listen');
      await eventually(() => (reloaded() === 2 ? true : undefined), 'the reload of worker slot 2');
      assert.equal(wharf.child.exitCode, null, 'the server runs');
      assert.deepEqual(
        wharf.logs.filter((line) => /worker exited|could not start/.test(String(line.msg))),
        [],
        'no worker ended',
      );
      const ids: string[] = [];
      for (let index = 0; index < 6; index++) ids.push(await create(wharf, 3));
      const lines = await linesOf(path.join(scratch, 'ran.log'));
      for (const id of ids) assert.ok(lines.includes(`v2 pre-create ${id}`), lines.join('\n'));
    } finally {
      await writeFile(release, '');
      await wharf.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
