import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

interface Call {
  readonly hook: string;
  readonly argv: string[];
  readonly env: Record<string, string>;
  readonly stdinIsArgv: boolean;
  readonly payload: {
    upload: { id: string; metadata: Record<string, string> };
    hook: { name: string; args: Record<string, unknown>; error?: string };
  };
}

async function calls(log: string): Promise<Call[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Call);
}

async function waitForCall(log: string, match: (call: Call) => boolean): Promise<Call> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = (await calls(log)).find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('the expected hook call never came');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('pipelines: critical, non-critical, run-on-failure, timeouts', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let log: string;
  let pidFile: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-pipeline-'));
    log = path.join(scratch, 'calls.log');
    pidFile = path.join(scratch, 'slow.pid');
    // Every hook records what it received (argv, env, stdin), then behaves as its name says.
    const recorder = (then: string) => `#!${process.execPath}
const fs = require('node:fs');
const stdin = fs.readFileSync(0, 'utf8');
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('WHARF_')));
const payload = JSON.parse(process.argv[3]);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: env.WHARF_HOOK_NAME, argv: process.argv.slice(2), env, stdinIsArgv: stdin === process.argv[3], payload }) + '\\n');
${then}
`;
    const scripts: Record<string, string> = {
      'quota.js': recorder(
        "if (payload.upload.metadata.plan === 'blocked') { process.stderr.write('quota exhausted'); process.exit(1); }",
      ),
      'enrich.js': recorder("process.stderr.write('enrichment service down'); process.exit(3);"),
      'audit.js': recorder(''),
      'alert.js': recorder(''),
      'slow.sh': `#!/bin/sh\nsleep 30 &\necho $! > '${pidFile}'\nwait\n`,
    };
    for (const [name, body] of Object.entries(scripts)) {
      await writeFile(path.join(scratch, name), body);
      await chmod(path.join(scratch, name), 0o755);
    }
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `# Borgitory-style pipeline: quota (critical), enrich (non-critical), audit; alert runs on failures.
hooks:
  quota:
    transport: file
    command: ./quota.js
  enrich:
    transport: file
    command: ./enrich.js
    critical: false
  audit:
    transport: file
    command: ./audit.js
    args: { team: storage }
  slow:
    transport: file
    command: ./slow.sh
    timeout: 1
    critical: false
  alert:
    transport: file
    command: ./alert.js
    runOn: failure
endpoints:
  - path: /files
    hooks:
      - { hook: quota, events: [pre-create] }
      - { hook: enrich, events: [pre-create] }
      - { hook: audit, events: [pre-create], args: { reason: intake } }
      - { hook: slow, events: [pre-create], when: { metadata.slow: "yes" } }
      - { hook: alert, events: [post-receive, post-finish] }
`,
    );
    wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('a critical failure cancels the operation and the following hooks do not run', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ plan: 'blocked', tag: 'first' }) },
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.text, 'Hook "quota" failed with exit code 1');
    // The refusal ends the upload's finishing too, so alert (run-on-failure, bound to post-finish) hears it, once
    // and after the refusal; enrich, audit and slow, later in the pre-create pipeline, never ran.
    const alert = await waitForCall(
      log,
      (call) => call.hook === 'alert' && call.payload.upload.metadata.tag === 'first',
    );
    assert.match(alert.payload.hook.error ?? '', /quota/);
    const seen = (await calls(log)).filter((call) => call.payload.upload.metadata.tag === 'first');
    assert.deepEqual(
      seen.map((call) => call.hook),
      ['quota', 'alert'],
    );
  });

  it('a non-critical failure goes on and the answer says "completed with warnings"', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ plan: 'pro', tag: 'second' }) },
    });
    assert.equal(reply.status, 201, reply.text);
    assert.equal(reply.headers['wharf-hooks'], 'completed with warnings; failed=enrich');
    const seen = (await calls(log)).filter((call) => call.payload.upload.metadata.tag === 'second');
    assert.deepEqual(
      seen.map((call) => call.hook),
      ['quota', 'enrich', 'audit'],
    );
    const audit = seen[2];
    assert.ok(audit);
    assert.equal(audit.argv[0], 'pre-create');
    assert.equal(audit.stdinIsArgv, true, 'the JSON comes on stdin as well as in argv');
    assert.deepEqual(JSON.parse(audit.env.WHARF_HOOK_ARGS ?? ''), { team: 'storage', reason: 'intake' });
    assert.deepEqual(audit.payload.hook.args, { team: 'storage', reason: 'intake' });
    assert.equal(audit.env.WHARF_UPLOAD_LENGTH, '5');
    assert.equal(audit.env.WHARF_UPLOAD_OFFSET, '0');
    assert.equal(audit.env.WHARF_ENDPOINT, '/files');
    assert.match(audit.env.WHARF_EVENT_ID ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(audit.env.WHARF_UPLOAD_ID, audit.payload.upload.id);
    assert.equal(
      audit.env.WHARF_EVENT_ID,
      seen[0]?.env.WHARF_EVENT_ID,
      'one event id for the whole pipeline',
    );
  });

  it('a run-on-failure hook fires on a checksum mismatch, with the error in the event', async () => {
    const url = await createUpload(wharf.endpoint, {
      'Upload-Length': 5,
      'Upload-Metadata': metadata({ plan: 'pro', tag: 'third' }),
    });
    const id = url.split('/').pop() ?? '';
    const wrong = Buffer.from('0'.repeat(20)).toString('base64');
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0, 'Upload-Checksum': `sha1 ${wrong}` },
      body: 'hello',
    });
    assert.equal(reply.status, 460);
    const alert = await waitForCall(log, (call) => call.hook === 'alert' && call.payload.upload.id === id);
    assert.equal(alert.argv[0], 'post-receive');
    assert.match(alert.payload.hook.error ?? '', /checksum mismatch/);
  });

  it('a timed-out executable is killed with its process group', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ plan: 'pro', slow: 'yes' }) },
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers['wharf-hooks'], 'completed with warnings; failed=enrich,slow');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    assert.ok(pid > 0);
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(alive(pid), false, 'the hook’s background sleep was killed too');
  });
});

describe('--config validation', () => {
  it('a wrong config file stops start-up with every problem and where it is', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-config-'));
    const file = path.join(scratch, 'wharf.json');
    await writeFile(
      file,
      JSON.stringify({
        hooks: { scan: { transport: 'ftp' }, notify: { transport: 'http', url: 'nope', runOn: 'sometimes' } },
        endpoints: [
          {
            path: '/files',
            hooks: [
              { hook: 'missing', events: ['pre-create'] },
              { hook: 'notify', events: ['post-upload'], when: { colour: 'red' } },
            ],
          },
        ],
      }),
    );
    try {
      await assert.rejects(startWharf({ args: ['--config', file] }), (error: Error) => {
        for (const expected of [
          'hooks.scan.transport: expected one of file, dir, http, amqp, kafka, module',
          'hooks.notify.url: must be an http:// or https:// URL',
          'hooks.notify.runOn: expected one of success, failure, always',
          'endpoints[0].hooks[0].hook: names no declared hook',
          'endpoints[0].hooks[1].events: unknown event "post-upload"',
          'endpoints[0].hooks[1].when: unknown condition "colour"',
        ]) {
          assert.ok(error.message.includes(expected), `missing "${expected}" in: ${error.message}`);
        }
        return true;
      });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
