import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { verifyWebhook, WebhookVerificationError } from 'wharf-uploads/webhooks';
import { verifyWebhook as verifyFromRoot } from '../../src/index.ts';
import { gatherOutput } from '../support/child-output.ts';
import { type HookReceiver, type ReceivedHook, suiteReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { repoRoot, scratchCwd, startWharf, wharfBin } from '../support/wharf-process.ts';

const run = promisify(execFile);

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  assert.equal(typeof value, 'string', `${name} present`);
  return value as string;
}

/**
 * An implementation of the Standard Webhooks check written from the specification, independent of Wharf's:
 * HMAC-SHA256 keyed with the base64-decoded secret over `id.timestamp.body`, any `v1` entry may match.
 */
function independentlyVerified(
  body: Buffer,
  headers: IncomingHttpHeaders,
  secret: string,
  nowSeconds: number,
): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
    .digest();
  return signatures.split(' ').some((entry) => {
    const [version, value = ''] = entry.split(',');
    const given = Buffer.from(value, 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function code(expected: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof WebhookVerificationError && error.code === expected;
}

async function uploadInTwoChunks(endpoint: string, body = 'hello, signed world'): Promise<string> {
  const url = await createUpload(endpoint, {
    'Upload-Length': body.length,
    'Upload-Metadata': `filename ${Buffer.from('signed.txt').toString('base64')}`,
  });
  const half = Math.floor(body.length / 2);
  for (const [offset, chunk] of [
    [0, body.slice(0, half)],
    [half, body.slice(half)],
  ] as const) {
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': offset },
      body: chunk,
    });
    assert.equal(reply.status, 204, reply.text);
  }
  return url.split('/').pop() ?? '';
}

/** The Python function of docs/hooks.md ("Signed webhooks"), as the docs show it. */
async function pythonVerifierFromDocs(): Promise<string> {
  const docs = await readFile(path.join(repoRoot, 'docs/hooks.md'), 'utf8');
  const section = docs.slice(docs.indexOf('## Signed webhooks'));
  const match = /```python\n([\s\S]*?)```/.exec(section);
  assert.ok(match?.[1], 'docs/hooks.md has a Python verifier under "Signed webhooks"');
  return match[1];
}

/** Runs the docs' verify_webhook on one request; resolves to its result line ("ok <json>" or "refused <why>"). */
async function runPythonVerifier(hook: ReceivedHook, secrets: readonly string[]): Promise<string> {
  const script = `${await pythonVerifierFromDocs()}
import sys
request = json.load(sys.stdin)
try:
    payload = verify_webhook(base64.b64decode(request["body"]), request["headers"], request["secrets"])
    print("ok " + json.dumps(payload["upload"]["id"]))
except ValueError as error:
    print("refused " + str(error))
`;
  const input = JSON.stringify({
    body: hook.rawBody.toString('base64'),
    headers: Object.fromEntries(
      Object.entries(hook.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    ),
    secrets,
  });
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    const output = gatherOutput(child);
    child.once('error', reject);
    child.once('exit', (exitCode) => {
      if (exitCode === 0) resolve(output.stdout().trim());
      else reject(new Error(`python3 exited with ${exitCode}: ${output.stderr()}`));
    });
    child.stdin.end(input);
  });
}

/** Every suite's receiver, closed once all suites are done (their servers stopped first). */
const receivers: HookReceiver[] = [];
after(() => Promise.all(receivers.map((receiver) => receiver.close())));

// The suites at once, each with its own receiver and servers; the tests of a suite go in turn.
describe('signed hooks', { concurrency: true }, () => {
  describe('signed HTTP hooks (Standard Webhooks)', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    const secret = newSecret();
    let hooks: ReceivedHook[] = [];
    let uploadId = '';

    before(async () => {
      const wharf = await startWharf({
        args: ['--hooks-http-urls', receiver.url, '--hooks-http-secret', secret, '--log-level', 'debug'],
      });
      try {
        uploadId = await uploadInTwoChunks(wharf.endpoint);
        hooks = await receiver.waitForNames(uploadId, [
          'pre-create',
          'post-create',
          'post-receive',
          'post-finish',
        ]);
        // No log line carries the secret or its key material (debug logging is the most talkative).
        const logged = JSON.stringify(wharf.logs);
        assert.ok(!logged.includes(secret.slice('whsec_'.length, 30)), 'the secret is not logged');
      } finally {
        await wharf.stop();
      }
    });

    it('every request carries webhook-id (= Idempotency-Key), webhook-timestamp and one v1 signature', () => {
      assert.ok(hooks.length >= 4, `hooks received: ${hooks.map((hook) => hook.name).join(', ')}`);
      const now = Math.floor(Date.now() / 1000);
      for (const hook of hooks) {
        const id = header(hook.headers, 'webhook-id');
        assert.equal(id, header(hook.headers, 'idempotency-key'));
        const timestamp = header(hook.headers, 'webhook-timestamp');
        assert.match(timestamp, /^\d{10}$/);
        assert.ok(Math.abs(now - Number(timestamp)) < 120, 'the timestamp is the attempt time, in seconds');
        assert.match(header(hook.headers, 'webhook-signature'), /^v1,[A-Za-z0-9+/]{43}=$/);
      }
      assert.equal(
        new Set(hooks.map((hook) => hook.headers['webhook-id'])).size,
        hooks.length,
        'one id per event',
      );
    });

    it('verifies with the exported helper and with an independent implementation, returning the body', () => {
      for (const hook of hooks) {
        const payload = verifyWebhook({ payload: hook.rawBody, headers: hook.headers, secrets: [secret] });
        assert.deepEqual(payload, hook.payload);
        assert.deepEqual(
          verifyFromRoot({ payload: hook.rawBody.toString(), headers: hook.headers, secrets: secret }),
          payload,
        );
        assert.ok(
          independentlyVerified(hook.rawBody, hook.headers, secret, Math.floor(Date.now() / 1000)),
          hook.name,
        );
      }
    });

    it('fails when the body, the timestamp or the id is altered, or with another secret', () => {
      const [hook] = hooks;
      assert.ok(hook);
      const now = Math.floor(Date.now() / 1000);
      const altered = Buffer.from(hook.rawBody.toString().replace('signed.txt', 'signed.txT'));
      assert.notDeepEqual(altered, hook.rawBody);
      assert.throws(
        () => verifyWebhook({ payload: altered, headers: hook.headers, secrets: secret }),
        code('bad_signature'),
      );
      assert.equal(independentlyVerified(altered, hook.headers, secret, now), false);

      const shifted = {
        ...hook.headers,
        'webhook-timestamp': String(Number(hook.headers['webhook-timestamp']) - 1),
      };
      assert.throws(
        () => verifyWebhook({ payload: hook.rawBody, headers: shifted, secrets: secret }),
        code('bad_signature'),
      );
      assert.equal(independentlyVerified(hook.rawBody, shifted, secret, now), false);

      const otherId = { ...hook.headers, 'webhook-id': 'another-event' };
      assert.throws(
        () => verifyWebhook({ payload: hook.rawBody, headers: otherId, secrets: secret }),
        code('bad_signature'),
      );
      assert.throws(
        () => verifyWebhook({ payload: hook.rawBody, headers: hook.headers, secrets: newSecret() }),
        code('bad_signature'),
      );
      assert.equal(independentlyVerified(hook.rawBody, hook.headers, newSecret(), now), false);
    });

    it('refuses a captured request replayed later than the tolerance', () => {
      const [hook] = hooks;
      assert.ok(hook);
      const later = new Date((Number(hook.headers['webhook-timestamp']) + 301) * 1000);
      assert.throws(
        () => verifyWebhook({ payload: hook.rawBody, headers: hook.headers, secrets: secret, now: later }),
        code('timestamp_too_old'),
      );
      const { 'webhook-signature': _signature, ...unsigned } = hook.headers;
      assert.throws(
        () => verifyWebhook({ payload: hook.rawBody, headers: unsigned, secrets: secret }),
        code('missing_headers'),
      );
    });

    it("the docs' Python verifier accepts a captured request and refuses it altered", async () => {
      const hook = hooks.find((candidate) => candidate.name === 'post-finish');
      assert.ok(hook);
      assert.equal(await runPythonVerifier(hook, [newSecret(), secret]), `ok ${JSON.stringify(uploadId)}`);
      const tampered: ReceivedHook = {
        ...hook,
        rawBody: Buffer.from(hook.rawBody.toString().replace('"offset"', '"Offset"')),
      };
      assert.equal(await runPythonVerifier(tampered, [secret]), 'refused no matching signature');
      const replayed: ReceivedHook = {
        ...hook,
        headers: {
          ...hook.headers,
          'webhook-timestamp': String(Number(hook.headers['webhook-timestamp']) - 3600),
        },
      };
      assert.equal(await runPythonVerifier(replayed, [secret]), 'refused timestamp outside the tolerance');
    });
  });

  describe('rotation, retries and named hooks', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    it('with two secrets (from the environment) both signatures are sent and either secret verifies', async () => {
      const [newer, older] = [newSecret(), newSecret()];
      const wharf = await startWharf({
        args: ['--hooks-http-urls', receiver.url, '--hooks', 'post-finish'],
        env: { WHARF_HOOKS_HTTP_SECRET: `${newer},${older}` },
      });
      try {
        const uploadId = await uploadInTwoChunks(wharf.endpoint);
        const [hook] = await receiver.waitForNames(uploadId, ['post-finish']);
        assert.ok(hook);
        const signatures = header(hook.headers, 'webhook-signature').split(' ');
        assert.equal(signatures.length, 2);
        const now = Math.floor(Date.now() / 1000);
        for (const known of [[newer], [older], [older, newer]]) {
          assert.deepEqual(
            verifyWebhook({ payload: hook.rawBody, headers: hook.headers, secrets: known }),
            hook.payload,
          );
        }
        assert.ok(independentlyVerified(hook.rawBody, hook.headers, newer, now));
        assert.ok(independentlyVerified(hook.rawBody, hook.headers, older, now));
        // Each entry is the signature of one secret, newest first.
        const onlyNewer = { ...hook.headers, 'webhook-signature': signatures[0] };
        assert.ok(independentlyVerified(hook.rawBody, onlyNewer, newer, now));
        assert.equal(independentlyVerified(hook.rawBody, onlyNewer, older, now), false);
        assert.throws(
          () => verifyWebhook({ payload: hook.rawBody, headers: hook.headers, secrets: newSecret() }),
          code('bad_signature'),
        );
      } finally {
        await wharf.stop();
      }
    });

    it('a retried event keeps its webhook-id and every attempt is signed', async () => {
      const secret = newSecret();
      let failures = 0;
      receiver.answer = (hook) => (hook.name === 'post-finish' && failures++ < 2 ? { status: 503 } : {});
      const wharf = await startWharf({
        args: [
          '--hooks-http-urls',
          receiver.url,
          '--hooks',
          'post-finish',
          '--hooks-http-outbox',
          '--hooks-retry-schedule',
          '100ms,100ms',
          '--hooks-http-secret',
          secret,
        ],
      });
      try {
        const uploadId = await uploadInTwoChunks(wharf.endpoint);
        const attempts = await receiver.waitForNames(uploadId, ['post-finish', 'post-finish', 'post-finish']);
        assert.equal(new Set(attempts.map((hook) => hook.headers['webhook-id'])).size, 1, 'one webhook-id');
        for (const attempt of attempts) {
          assert.deepEqual(
            verifyWebhook({ payload: attempt.rawBody, headers: attempt.headers, secrets: secret }),
            attempt.payload,
          );
        }
      } finally {
        await wharf.stop();
      }
    });

    it('a named http hook of the config file signs with its own secrets', async (t) => {
      const secret = newSecret();
      const folder = await mkdtemp(path.join(tmpdir(), 'wharf-signing-'));
      t.after(() => rm(folder, { recursive: true, force: true }));
      const wharfFile = path.join(folder, 'wharf.json');
      await writeFile(
        wharfFile,
        JSON.stringify({
          hooks: { notify: { transport: 'http', url: receiver.url, secrets: [secret] } },
          endpoints: [{ path: '/files', hooks: [{ hook: 'notify', events: ['post-finish'] }] }],
        }),
      );
      const wharf = await startWharf({ args: ['--config', wharfFile] });
      try {
        const uploadId = await uploadInTwoChunks(wharf.endpoint);
        const [hook] = await receiver.waitForNames(uploadId, ['post-finish']);
        assert.ok(hook);
        const payload = verifyWebhook<{ hook: { name: string } }>({
          payload: hook.rawBody,
          headers: hook.headers,
          secrets: secret,
        });
        assert.equal(payload.hook.name, 'notify');
      } finally {
        await wharf.stop();
      }
    });
  });

  describe('bad secrets stop start-up without showing them', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    it('--hooks-http-secret: exit code 2 and a message naming the position', async () => {
      const good = newSecret();
      const bad = `whsec_${randomBytes(8).toString('base64')}`;
      const failed = await run(process.execPath, [wharfBin, '--hooks-http-secret', `${good},${bad}`], {
        cwd: scratchCwd,
      }).then(
        () => undefined,
        (error: { code: number; stderr: string; stdout: string }) => error,
      );
      assert.ok(failed, 'wharf refused to start');
      assert.equal(failed.code, 2);
      assert.match(
        failed.stderr,
        /--hooks-http-secret \(secret 2 of 2\): a webhook secret must encode 24 to 64 bytes/,
      );
      assert.ok(!failed.stderr.includes(bad.slice(6)) && !failed.stderr.includes(good.slice(6)));
      assert.ok(!failed.stdout.includes(bad.slice(6)));

      const unprefixed = await run(process.execPath, [wharfBin], {
        cwd: scratchCwd,
        env: { ...process.env, WHARF_HOOKS_HTTP_SECRET: good.slice(6) },
      }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(unprefixed?.code, 2);
      assert.match(unprefixed?.stderr ?? '', /must start with "whsec_"/);
      assert.ok(!unprefixed?.stderr.includes(good.slice(6)));
    });

    it('a config file secret: the problem names the hook, not the secret', async (t) => {
      const bad = 'whsec_bm90IGEgcmVhbCBzZWNyZXQ=';
      const folder = await mkdtemp(path.join(tmpdir(), 'wharf-signing-'));
      t.after(() => rm(folder, { recursive: true, force: true }));
      const wharfFile = path.join(folder, 'wharf.json');
      await writeFile(
        wharfFile,
        JSON.stringify({ hooks: { notify: { transport: 'http', url: receiver.url, secret: bad } } }),
      );
      const failed = await run(process.execPath, [wharfBin, '--config', wharfFile, '--port', '0'], {
        cwd: scratchCwd,
      }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      assert.ok(failed);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /hooks\.notify: secret: a webhook secret must encode 24 to 64 bytes/);
      assert.ok(!failed.stderr.includes('bm90IGEgcmVhbCBzZWNyZXQ'));
    });

    it('--help shows the option but no secret, even when one is set', async () => {
      const secret = newSecret();
      const { stdout } = await run(process.execPath, [wharfBin, '--help'], {
        cwd: scratchCwd,
        env: { ...process.env, WHARF_HOOKS_HTTP_SECRET: secret },
      });
      assert.match(stdout, /--hooks-http-secret/);
      assert.ok(!stdout.includes(secret.slice(6)));
    });
  });
});
