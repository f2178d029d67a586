import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

/** Creates a 3-byte upload and sends its bytes; returns the creation's status and the upload id. */
async function upload(endpoint: string, filename: string): Promise<{ status: number; id: string }> {
  const created = await send('POST', endpoint, {
    headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata({ filename }) },
  });
  if (created.status !== 201) return { status: created.status, id: '' };
  const url = new URL(String(created.headers.location), endpoint).toString();
  const patched = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'abc',
  });
  assert.equal(patched.status, 204);
  return { status: 201, id: url.split('/').pop() ?? '' };
}

async function waitForFile(file: string): Promise<string> {
  for (let waited = 0; waited < 10_000; waited += 50) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined && text !== '') return text;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${file} was never written`);
}

describe('named file hooks as shell lines (Borgitory): shell, env, cwd', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-shell-'));
    await mkdir(path.join(scratch, 'work'));
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  gate:
    transport: file
    shell: true
    command: 'grep -q "\\"filename\\":\\"ok.txt\\"" || { echo "refused $1" >&2; exit 1; }'
  record:
    transport: file
    shell: true
    cwd: ./work
    env: { BACKUP_LABEL: nightly, KEEP: 7 }
    command: 'echo "$BACKUP_LABEL $KEEP $WHARF_UPLOAD_ID $1" > "hook-$WHARF_UPLOAD_ID.txt"; pwd >> "hook-$WHARF_UPLOAD_ID.txt"'
endpoints:
  - path: /files
    hooks:
      - { hook: gate, events: [pre-create] }
      - { hook: record, events: [post-finish] }
`,
    );
    wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a pre-create shell line reads the payload on stdin and refuses or lets pass', async () => {
    assert.equal((await upload(wharf.endpoint, 'no.txt')).status, 400);
    assert.equal((await upload(wharf.endpoint, 'ok.txt')).status, 201);
  });

  it('a post-finish shell line runs in its cwd with its env added to the WHARF_* variables', async () => {
    const { status, id } = await upload(wharf.endpoint, 'ok.txt');
    assert.equal(status, 201);
    const text = await waitForFile(path.join(scratch, 'work', `hook-${id}.txt`));
    const [line, cwd] = text.trim().split('\n');
    assert.equal(line, `nightly 7 ${id} post-finish`);
    assert.equal(cwd, path.join(scratch, 'work'));
  });

  it('a shell line without `shell: true` is refused at start, naming the hook', async () => {
    const bad = path.join(scratch, 'no-shell.yaml');
    await writeFile(
      bad,
      `hooks:
  disk-space:
    transport: file
    command: df -h / | awk 'NR==2 {print $5}'
endpoints:
  - path: /files
    hooks: [{ hook: disk-space, events: [pre-create] }]
`,
    );
    await assert.rejects(startWharf({ args: ['--config', bad] }), (error: Error) => {
      assert.match(error.message, /wharf exited with 2/);
      assert.match(error.message, /hooks\.disk-space\.command: looks like a shell line/);
      return true;
    });
  });
});
