import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess, wharfBin } from '../support/wharf-process.ts';

/** The lines of a hook's log file, [] while it does not exist. */
async function linesOf(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

function idOf(location: unknown): string {
  return String(location).split('/').pop() ?? '';
}

/** A named shell hook that appends `<label> <upload id>` to ran.log in the config file's folder. */
function logs(label: string): string {
  return `{ transport: file, shell: true, cwd: ., command: 'echo "${label} $WHARF_UPLOAD_ID" >> ran.log' }`;
}

describe("RESTHeart's binding controls: priority, globalHooks: false, when on the answer's status", () => {
  let scratch: string;
  let wharf: WharfProcess;
  let ranLog: string;
  let globalLog: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-restheart-'));
    ranLog = path.join(scratch, 'ran.log');
    globalLog = path.join(scratch, 'global.log');
    // The rustus-style flag hook: a global hook, heard by every endpoint that does not opt out.
    const flagHook = path.join(scratch, 'flag-hook.sh');
    await writeFile(flagHook, `#!/bin/sh\necho "$1 $WHARF_UPLOAD_ID" >> '${globalLog}'\n`);
    await chmod(flagHook, 0o755);
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  audit: ${logs('audit')}
  quota: ${logs('quota')}
  virus: ${logs('virus')}
  tag: ${logs('tag')}
  private: ${logs('private')}
  refuse:
    transport: file
    shell: true
    command: 'echo "refused" >&2; exit 1'
  client-error: { transport: file, shell: true, cwd: ., runOn: always, command: 'echo "4xx $WHARF_UPLOAD_ID" >> ran.log' }
  server-error: { transport: file, shell: true, cwd: ., runOn: always, command: 'echo "5xx $WHARF_UPLOAD_ID" >> ran.log' }
  created: { transport: file, shell: true, cwd: ., runOn: always, command: 'echo "201 $WHARF_UPLOAD_ID" >> ran.log' }
endpoints:
  - path: /files
    hooks:
      - { hook: audit, events: [pre-create], priority: 20 }
      - { hook: quota, events: [pre-create] }
      - { hook: virus, events: [pre-create], priority: -5 }
      - { hook: tag, events: [pre-create], priority: 0 }
      - { hook: refuse, events: [pre-create], priority: 30, when: { metadata.refuse: "yes" } }
      - { hook: client-error, events: [post-create], when: { status: "4*" } }
      - { hook: server-error, events: [post-create], when: { status: "5*" } }
      - { hook: created, events: [post-create], when: { status: "201" } }
  - path: /private
    globalHooks: false
    hooks:
      - { hook: private, events: [pre-create, post-create] }
`,
    );
    wharf = await startWharf({
      args: [
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--hooks-file',
        flagHook,
        '--hooks',
        'pre-create,post-create',
      ],
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('bindings run by priority, lower first; equal priorities keep file order', async () => {
    const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
    assert.equal(created.status, 201, created.text);
    const id = idOf(created.headers.location);
    const lines = await eventually(async () => {
      const found = (await linesOf(ranLog)).filter((line) => line.endsWith(id));
      return found.length >= 5 ? found : undefined;
    }, 'the pre-create and post-create hooks of the upload');
    // File order: audit (20), quota (0), virus (-5), tag (0).
    assert.deepEqual(lines.slice(0, 4), [`virus ${id}`, `quota ${id}`, `tag ${id}`, `audit ${id}`]);
  });

  it('an endpoint with globalHooks: false runs its bound hooks only; the others still run the flag hooks', async () => {
    const open = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
    assert.equal(open.status, 201, open.text);
    const openId = idOf(open.headers.location);
    const closed = await send('POST', `${wharf.origin}/private/`, {
      headers: { ...tus, 'Upload-Length': 3 },
    });
    assert.equal(closed.status, 201, closed.text);
    const closedId = idOf(closed.headers.location);
    // The /private upload's own hooks ran (pre-create and post-create)...
    await eventually(
      async () =>
        (await linesOf(ranLog)).filter((line) => line === `private ${closedId}`).length === 2
          ? true
          : undefined,
      'the /private bindings',
    );
    // ... and the flag hook heard both events of the /files upload (the positive control).
    await eventually(
      async () =>
        (await linesOf(globalLog)).filter((line) => line.endsWith(openId)).length === 2 ? true : undefined,
      'the flag hook on /files',
    );
    assert.deepEqual(
      (await linesOf(globalLog)).filter((line) => line.endsWith(closedId)),
      [],
      'the flag hook must not hear the /private upload',
    );
  });

  it("post hooks' when.status globs the status code of the answer the client got", async () => {
    const refused = await send('POST', wharf.endpoint, {
      headers: {
        ...tus,
        'Upload-Length': 3,
        'Upload-Metadata': `refuse ${Buffer.from('yes').toString('base64')}`,
      },
    });
    assert.equal(refused.status, 400, refused.text);
    const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
    assert.equal(created.status, 201, created.text);
    const createdId = idOf(created.headers.location);
    const statusLines = async (): Promise<string[]> =>
      (await linesOf(ranLog)).filter((line) => /^(4xx|5xx|201) /.test(line));
    const lines = await eventually(async () => {
      const found = await statusLines();
      return found.some((line) => line.startsWith('4xx')) && found.includes(`201 ${createdId}`)
        ? found
        : undefined;
    }, 'the status hooks');
    // The refused creation (400) ran the 4* hook only; the created one (201) the 201 hook only; 5* never ran.
    const clientErrors = lines.filter((line) => line.startsWith('4xx '));
    assert.equal(clientErrors.length, 1, lines.join('\n'));
    const refusedId = clientErrors[0]?.slice('4xx '.length) ?? '';
    assert.notEqual(refusedId, createdId);
    assert.deepEqual(
      lines.filter((line) => line.endsWith(refusedId)),
      [`4xx ${refusedId}`],
    );
    assert.deepEqual(
      lines.filter((line) => line.endsWith(createdId)),
      [`201 ${createdId}`],
    );
    assert.ok(!lines.some((line) => line.startsWith('5xx')), lines.join('\n'));
  });

  it("`wharf hooks check` shows each binding's priority and the endpoints without global hooks", async () => {
    const checked = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [wharfBin, 'hooks', 'check', '--config', path.join(scratch, 'wharf.yaml')],
        {
          cwd: scratch,
        },
      );
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.on('close', (code) => resolve({ code, stdout }));
    });
    assert.equal(checked.code, 0, checked.stdout);
    assert.match(checked.stdout, /\/files pre-create args=\{\} when=\(always\) priority=20\n/);
    assert.match(checked.stdout, /\/files pre-create args=\{\} when=\(always\) priority=-5\n/);
    assert.match(checked.stdout, /endpoint \/private: globalHooks=false \(runs only the hooks bound to it\)/);
  });

  it('a status condition on a pre-* binding and a priority that is no integer are refused at start', async () => {
    const bad = path.join(scratch, 'bad.yaml');
    await writeFile(
      bad,
      `hooks:
  audit: ${logs('audit')}
endpoints:
  - path: /files
    globalHooks: no-thanks
    hooks:
      - { hook: audit, events: [pre-create], when: { status: "4*" } }
      - { hook: audit, events: [post-finish], priority: first }
`,
    );
    await assert.rejects(startWharf({ args: ['--config', bad] }), (error: Error) => {
      assert.match(error.message, /wharf exited with 2/);
      assert.match(
        error.message,
        /endpoints\[0\]\.hooks\[0\]\.when\.status: tests the answer the client got/,
      );
      assert.match(error.message, /endpoints\[0\]\.hooks\[1\]\.priority: must be a whole number/);
      assert.match(error.message, /endpoints\[0\]\.globalHooks: must be true or false/);
      return true;
    });
  });
});
