import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, type Reply, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * No secret in /metrics, the logs or the admin API's answers: a real wharf process with an HTTP hook whose URL
 * carries a user name, a password, a secret path and `?token=…`, a signing secret, a hooks file and a hooks
 * folder inside a folder whose path holds a marker, and a target added at run time with its own secrets.
 * Every hook runs (and some fail, quoting their path) before everything Wharf said is searched.
 */

const id = randomUUID().slice(0, 8);
const marker = `marker-${id}`;
const password = `pw-${id}`;
const queryToken = `qtoken-${id}`;
const secretPath = `secretpath-${id}`;
const runtimeToken = `rtoken-${id}`;
const adminToken = `admin-${id}`;
const metricsToken = `metrics-${id}`;
// Standard Webhooks secret: whsec_ + base64 of 24 bytes.
const signingSecret = `whsec_${Buffer.from(`sign-${id}-0123456789ab`).toString('base64')}`;
const auth = { Authorization: `Bearer ${adminToken}` };

let receiver: HookReceiver;
let wharf: WharfProcess;
let root: string;
let hooksFile: string;
let hooksDir: string;

function secrets(): string[] {
  return [marker, password, queryToken, secretPath, runtimeToken, adminToken, signingSecret, root];
}

function assertNoSecret(text: string, where: string): void {
  for (const secret of secrets()) {
    assert.equal(text.includes(secret), false, `${where} shows ${secret}`);
  }
}

async function api(method: string, route: string, body?: unknown): Promise<Reply> {
  return send(method, `${wharf.origin}/admin/api${route}`, {
    headers: { ...auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await sleep(100);
  }
}

describe('no secret in /metrics, the logs or the admin API', { timeout: 60_000 }, () => {
  before(async () => {
    receiver = new HookReceiver();
    await receiver.start();
    root = await mkdtemp(path.join(tmpdir(), `wharf-${marker}-`));
    const folder = path.join(root, `hooks-${marker}`);
    await mkdir(folder);
    // The hooks file says where it lives on stderr and fails: its output quotes its own path.
    hooksFile = path.join(folder, 'notify.sh');
    await writeFile(hooksFile, '#!/bin/sh\necho "failed in $0" >&2\nexit 3\n');
    await chmod(hooksFile, 0o755);
    // The hooks folder has no post-create: that run cannot start, and its error names the missing file.
    hooksDir = path.join(folder, 'hooks.d');
    await mkdir(hooksDir);
    await writeFile(path.join(hooksDir, 'post-finish'), '#!/bin/sh\nexit 0\n');
    await chmod(path.join(hooksDir, 'post-finish'), 0o755);
    const receiverUrl = new URL(receiver.url);
    const hookUrl = `http://hookuser:${password}@127.0.0.1:${receiverUrl.port}/hooks/${secretPath}?token=${queryToken}`;
    wharf = await startWharf({
      args: [
        '--admin',
        '--log-level',
        'debug',
        '--hooks-http-urls',
        hookUrl,
        '--hooks-http-secret',
        signingSecret,
        '--hooks-file',
        hooksFile,
        '--hooks-dir',
        hooksDir,
        '--hooks',
        'post-create,post-finish',
        '--hooks-allow-private-targets',
        '--shutdown-timeout',
        '1',
      ],
      env: { WHARF_ADMIN_TOKEN: adminToken },
    });
  });
  after(async () => {
    await wharf.stop();
    await receiver.close();
    await rm(root, { recursive: true, force: true });
  });

  test('targets are labelled by scheme, host, port and hook name; no path, query, password or folder anywhere', async () => {
    const added = await api('POST', '/targets', {
      url: `http://127.0.0.1:9/runtime/${marker}?token=${runtimeToken}`,
      secrets: [signingSecret],
    });
    assert.equal(added.status, 201, added.text);

    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    const uploadId = url.replace(/\/$/, '').split('/').pop() ?? '';
    const patched = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: Buffer.from('hello'),
    });
    assert.equal(patched.status, 204);
    await receiver.waitUntil(
      (received) => received.some((hook) => hook.name === 'post-finish'),
      'the post-finish at the HTTP hook',
    );

    // Every target has run (the runtime one fails: nothing listens on port 9).
    const port = new URL(receiver.url).port;
    const metrics = await until('every target in /metrics', async () => {
      const text = (await send('GET', `${wharf.origin}/metrics`)).text;
      const postFinishRuns = text
        .split('\n')
        .filter((line) => line.startsWith('wharf_hook_runs_total{event="post-finish"'));
      // The runtime target fails its post-create; its post-finish waits behind the retries.
      const runtimeFailed = /wharf_hook_runs_total\{[^}]*127\.0\.0\.1:9[^0-9]/.test(text);
      return postFinishRuns.length >= 3 && runtimeFailed ? text : undefined;
    });
    assertNoSecret(metrics, '/metrics');
    // Positive control: each target is there, by its label.
    assert.match(
      metrics,
      /wharf_hook_runs_total\{event="post-finish",target="file:notify\.sh",status="failed"\} 1/,
    );
    assert.match(
      metrics,
      /wharf_hook_runs_total\{event="post-create",target="dir:post-create",status="failed"\} 1/,
    );
    assert.match(
      metrics,
      /wharf_hook_runs_total\{event="post-finish",target="dir:post-finish",status="completed"\} 1/,
    );
    assert.match(
      metrics,
      new RegExp(
        `wharf_hook_runs_total\\{event="post-finish",target="http:http://127\\.0\\.0\\.1:${port} \\([0-9a-f]{8}\\)",status="completed"\\} 1`,
      ),
    );
    assert.match(metrics, /target="http:http:\/\/127\.0\.0\.1:9 \([0-9a-f]{8}\)",status="failed"/);

    const answers = {
      targets: (await api('GET', '/targets')).text,
      events: (await api('GET', `/events?uploadId=${uploadId}`)).text,
      upload: (await api('GET', `/uploads/${uploadId}`)).text,
      deadLetters: (await api('GET', '/dead-letters')).text,
      added: added.text,
    };
    // Positive control: the answers do name the targets, by their labels, with the failures' messages.
    assert.match(
      answers.targets,
      new RegExp(`"name":"http:http://127\\.0\\.0\\.1:${port} \\([0-9a-f]{8}\\)"`),
    );
    assert.match(answers.events, /"target":"file:notify\.sh"/);
    assert.match(answers.events, /"target":"dir:post-create"/);
    assert.match(answers.events, /post-create is missing or not executable/);
    for (const [where, text] of Object.entries(answers)) assertNoSecret(text, `the admin API (${where})`);

    // Acting on a target by the label the API shows works.
    const label = (JSON.parse(added.text) as { name: string }).name;
    assert.match(label, /^http:http:\/\/127\.0\.0\.1:9 \([0-9a-f]{8}\)$/);
    const disabled = await api('POST', `/targets/${encodeURIComponent(label)}/disable`);
    assert.equal(disabled.status, 200, disabled.text);

    const logged = wharf.logs.map((line) => JSON.stringify(line));
    // Positive control: the logs speak of these targets and of the failures.
    assert.ok(
      logged.some((line) => line.includes('"target":"file:notify.sh"') && line.includes('failed in')),
    );
    assert.ok(logged.some((line) => line.includes('"target":"dir:post-create"') && line.includes('missing')));
    assert.ok(logged.some((line) => line.includes(`"target":"http:http://127.0.0.1:${port} (`)));
    assert.ok(logged.some((line) => line.includes('hook target added through the admin API')));
    for (const line of logged) assertNoSecret(line, `the log line ${line}`);
  });
});

describe('--metrics-token', { timeout: 30_000 }, () => {
  let closed: WharfProcess;
  before(async () => {
    closed = await startWharf({ env: { WHARF_METRICS_TOKEN: metricsToken } });
  });
  after(async () => {
    await closed.stop();
  });

  test('closes /metrics: 401 without the bearer token or with a wrong one, 200 with it', async () => {
    for (const headers of [
      {},
      { Authorization: `Bearer ${metricsToken}x` },
      { Authorization: metricsToken },
    ]) {
      const refused = await send('GET', `${closed.origin}/metrics`, { headers });
      assert.equal(refused.status, 401, JSON.stringify(headers));
      assert.equal(refused.headers['www-authenticate'], 'Bearer');
      assert.doesNotMatch(refused.text, /wharf_http_requests_total/);
    }
    const served = await send('GET', `${closed.origin}/metrics`, {
      headers: { Authorization: `Bearer ${metricsToken}` },
    });
    assert.equal(served.status, 200);
    assert.match(served.text, /wharf_http_requests_total\{method="GET",status="401"\} 3/);
    // The token is never logged.
    assert.equal(JSON.stringify(closed.logs).includes(metricsToken), false);
  });
});
