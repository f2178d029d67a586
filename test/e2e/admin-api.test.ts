import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { redactTarget } from '../../src/hooks/delivery/target-guard.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, type Reply, send, tus } from '../support/http.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { accessLog, scratchCwd, startWharf, type WharfProcess, wharfBin } from '../support/wharf-process.ts';

const token = `admin-${randomUUID()}`;
const auth = { Authorization: `Bearer ${token}` };

interface EventSummary {
  eventId: string;
  event: string;
  uploadId: string;
  at: number;
  status: string;
  runs: { target: string; status: string; httpStatus?: number; attempt?: number }[];
}

async function api(wharf: WharfProcess, method: string, route: string, body?: unknown): Promise<Reply> {
  return send(method, `${wharf.origin}/admin/api${route}`, {
    headers: { ...auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function json<T>(wharf: WharfProcess, route: string): Promise<T> {
  const reply = await api(wharf, 'GET', route);
  assert.equal(reply.status, 200, reply.text);
  return JSON.parse(reply.text) as T;
}

/** Polls the events of an upload until `done` holds (history is written in batches, hooks run after the answer). */
async function eventsUntil(
  wharf: WharfProcess,
  uploadId: string,
  done: (events: EventSummary[]) => boolean,
): Promise<EventSummary[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { events } = await json<{ events: EventSummary[] }>(wharf, `/events?uploadId=${uploadId}`);
    if (done(events)) return events;
    if (Date.now() > deadline)
      throw new Error(`events of ${uploadId} never matched: ${JSON.stringify(events)}`);
    await sleep(100);
  }
}

/** Creates an upload of `length` bytes and sends `sent` of them; returns its id. */
async function upload(wharf: WharfProcess, length: number, sent = length): Promise<string> {
  const url = await createUpload(wharf.endpoint, { 'Upload-Length': length });
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: Buffer.alloc(sent, 7),
  });
  assert.equal(reply.status, 204, reply.text);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

/** Runs the wharf command to its exit (it should refuse to start) and returns its code and stderr. */
async function refusal(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-test-'));
  try {
    const child = spawn(process.execPath, [wharfBin, '--port', '0', '--data-dir', dataDir, ...args], {
      cwd: scratchCwd,
      env: { ...process.env, WHARF_ADMIN_TOKEN: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    return { code, stderr };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** An open /admin/api/stream: the events it delivered so far. */
interface Stream {
  readonly events: { event: string; data: Record<string, unknown> }[];
  waitFor(
    predicate: (event: string, data: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  close(): void;
}

function openStream(wharf: WharfProcess): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${wharf.origin}/admin/api/stream`, { headers: auth }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream answered ${res.statusCode}`));
        return;
      }
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      const events: Stream['events'] = [];
      const waiters = new Set<() => void>();
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end = buffered.indexOf('\n\n');
        while (end !== -1) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const name = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (name !== undefined && data !== undefined) {
            events.push({ event: name, data: JSON.parse(data) as Record<string, unknown> });
          }
          end = buffered.indexOf('\n\n');
        }
        for (const wake of waiters) wake();
      });
      resolve({
        events,
        close: () => req.destroy(),
        waitFor: async (predicate) => {
          const deadline = Date.now() + 15_000;
          for (;;) {
            const found = events.find((entry) => predicate(entry.event, entry.data));
            if (found) return found.data;
            if (Date.now() > deadline)
              throw new Error(`stream: no matching event in ${JSON.stringify(events)}`);
            await new Promise<void>((wake) => {
              const done = () => {
                waiters.delete(done);
                wake();
              };
              waiters.add(done);
              setTimeout(done, 100);
            });
          }
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// The suites and tests below at once, each with its own processes; the tests of 'admin API' share one server
// (restarted by one of them) and run in turn.
describe('admin', { concurrency: true }, () => {
  describe('admin API', { concurrency: false }, () => {
    const receiver = new HookReceiver();
    let wharf: WharfProcess;
    let dataDir: string;
    const responses: string[] = [];

    before(async () => {
      await receiver.start();
      dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-admin-'));
      wharf = await startWharf({
        dataDir,
        args: [
          '--admin',
          '--hooks-http-urls',
          receiver.url,
          '--hooks',
          'post-create,post-receive,post-finish',
        ],
        env: { WHARF_ADMIN_TOKEN: token },
      });
    });
    after(async () => {
      await wharf.stop();
      await receiver.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('refuses requests without the token or with a wrong one (401 + WWW-Authenticate), the stream too', async () => {
      for (const route of ['/uploads', '/events', '/stream', '/targets']) {
        for (const headers of [{}, { Authorization: `Bearer ${token}x` }, { Authorization: token }]) {
          const reply = await send('GET', `${wharf.origin}/admin/api${route}`, { headers });
          assert.equal(reply.status, 401, `${route} ${JSON.stringify(headers)}`);
          assert.equal(reply.headers['www-authenticate'], 'Bearer');
          assert.deepEqual(JSON.parse(reply.text), { error: 'unauthorized' });
        }
      }
      const allowed = await api(wharf, 'GET', '/uploads');
      assert.equal(allowed.status, 200);
    });

    test('the uploads list shows an upload in progress with its offset; one upload comes with its events', async () => {
      const id = await upload(wharf, 100, 40);
      const { uploads } = await json<{ uploads: Record<string, unknown>[] }>(
        wharf,
        '/uploads?state=in_progress',
      );
      const listed = uploads.find((entry) => entry.id === id);
      assert.deepEqual(
        { ...listed, createdAt: typeof listed?.createdAt },
        {
          id,
          endpoint: '/files',
          offset: 40,
          length: 100,
          progress: 0.4,
          finished: false,
          createdAt: 'number',
          metadata: {},
          failure: null,
        },
      );
      const finished = await json<{ uploads: { id: string }[] }>(wharf, '/uploads?state=finished');
      assert.equal(
        finished.uploads.some((entry) => entry.id === id),
        false,
      );
      await eventsUntil(wharf, id, (events) => events.some((event) => event.event === 'post-receive'));
      const one = await json<{ upload: { offset: number }; events: EventSummary[] }>(wharf, `/uploads/${id}`);
      assert.equal(one.upload.offset, 40);
      assert.deepEqual(one.events.map((event) => event.event).sort(), ['post-create', 'post-receive']);
      assert.equal((await api(wharf, 'GET', `/uploads/${randomUUID()}`)).status, 404);
    });

    test('events of an upload: every hook run with its target, status and HTTP status, newest first', async () => {
      const id = await upload(wharf, 10);
      await receiver.waitForNames(id, ['post-create', 'post-finish']);
      const events = await eventsUntil(
        wharf,
        id,
        (found) => found.length === 2 && found.every((event) => event.status === 'completed'),
      );
      assert.deepEqual(
        events.map((event) => event.event),
        ['post-finish', 'post-create'],
      );
      const [finish] = events;
      assert.ok(finish);
      assert.deepEqual(
        finish.runs.map((run) => [run.target, run.status, run.httpStatus]),
        [[redactTarget(`http:${receiver.url}`), 'completed', 200]],
      );
      const one = await json<EventSummary>(wharf, `/events/${finish.eventId}`);
      assert.equal(one.eventId, finish.eventId);
      assert.equal(one.uploadId, id);
      const failedOnly = await json<{ events: EventSummary[] }>(
        wharf,
        `/events?uploadId=${id}&status=failed`,
      );
      assert.deepEqual(failedOnly.events, []);
      assert.equal((await api(wharf, 'GET', `/events/${randomUUID()}`)).status, 404);
      assert.equal((await api(wharf, 'GET', '/events?status=bogus')).status, 400);
      responses.push(JSON.stringify(events));
    });

    test('the stream delivers run transitions and upload progress', async () => {
      const stream = await openStream(wharf);
      try {
        const id = await upload(wharf, 20);
        const run = await stream.waitFor(
          (event, data) => event === 'run' && data.uploadId === id && data.status === 'completed',
        );
        assert.equal(run.target, redactTarget(`http:${receiver.url}`));
        const progress = await stream.waitFor(
          (event, data) => event === 'upload' && data.id === id && data.offset === 20,
        );
        assert.equal(progress.finished, true);
        assert.equal(progress.progress, 1);
      } finally {
        stream.close();
      }
    });

    test('/metrics counts uploads, bytes, requests and hook runs (Prometheus text format)', async () => {
      const reply = await send('GET', `${wharf.origin}/metrics`);
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const value = (line: string): number => {
        const match = new RegExp(`^${line.replace(/[{}"()\\[\]|+.]/g, '\\$&')} (\\S+)$`, 'm').exec(
          reply.text,
        );
        assert.ok(match, `no ${line} in\n${reply.text}`);
        return Number(match[1]);
      };
      assert.ok(value('started_uploads') >= 3);
      assert.ok(value('finished_uploads') >= 2);
      assert.ok(value('wharf_received_bytes_total') >= 70);
      assert.ok(value('wharf_http_requests_total{method="POST",status="201"}') >= 3);
      assert.ok(
        value(
          `wharf_hook_runs_total{event="post-finish",target="${redactTarget(`http:${receiver.url}`)}",status="completed"}`,
        ) >= 2,
      );
      assert.ok(
        value(
          `wharf_hook_run_duration_seconds_count{event="post-finish",target="${redactTarget(`http:${receiver.url}`)}"}`,
        ) >= 2,
      );
      assert.match(reply.text, /^# TYPE uploads_sizes histogram$/m);
      assert.match(reply.text, /^wharf_hook_outbox_depth \d+$/m);
    });

    test('targets added at run time must not point at private addresses (403) and must be URLs (400)', async () => {
      const refused = await api(wharf, 'POST', '/targets', { url: 'http://127.0.0.1:9/hook' });
      assert.equal(refused.status, 403, refused.text);
      assert.match(JSON.parse(refused.text).error, /private/);
      // Loopback spelled as an IPv4-mapped IPv6 address; link-local and the other private ranges are the unit
      // test's (test/unit/hooks/target-guard.test.ts): no test here names an address off this machine.
      const mapped = await api(wharf, 'POST', '/targets', { url: 'http://[::ffff:127.0.0.1]:9/hook' });
      assert.equal(mapped.status, 403, mapped.text);
      assert.match(JSON.parse(mapped.text).error, /private/);
      const loopbackName = await api(wharf, 'POST', '/targets', { url: 'http://localhost:9/hook' });
      assert.equal(loopbackName.status, 403);
      const bad = await api(wharf, 'POST', '/targets', { url: 'ftp://example.com/' });
      assert.equal(bad.status, 400);
      const missing = await api(wharf, 'POST', '/targets', {});
      assert.equal(missing.status, 400);
    });

    test('the history survives a restart (file info storage)', async () => {
      const id = await upload(wharf, 5);
      const [finish] = await eventsUntil(wharf, id, (events) =>
        events.some((event) => event.event === 'post-finish' && event.status === 'completed'),
      );
      assert.ok(finish);
      await wharf.stop();
      wharf = await startWharf({
        dataDir,
        args: [
          '--admin',
          '--hooks-http-urls',
          receiver.url,
          '--hooks',
          'post-create,post-receive,post-finish',
        ],
        env: { WHARF_ADMIN_TOKEN: token },
      });
      const again = await json<EventSummary>(wharf, `/events/${finish.eventId}`);
      assert.equal(again.status, 'completed');
      assert.equal(again.uploadId, id);
      const listed = await json<{ events: EventSummary[] }>(wharf, `/events?uploadId=${id}`);
      assert.deepEqual(
        listed.events.map((event) => event.event),
        ['post-finish', 'post-create'],
      );
    });

    test('the token never appears in the log or in an API answer', async () => {
      for (const route of ['/uploads', '/events', '/stats', '/targets']) {
        responses.push((await api(wharf, 'GET', route)).text);
      }
      await send('GET', `${wharf.origin}/admin/api/uploads`, {
        headers: { Authorization: `Bearer ${token}-wrong` },
      });
      // Every line the requests above caused is in once a marker request of our own is logged.
      await accessLog(wharf);
      const logged = wharf.logs.map((line) => JSON.stringify(line)).join('\n');
      assert.ok(logged.includes('access'), 'the access log is on');
      assert.equal(logged.includes(token), false, 'token in the log');
      assert.equal(responses.join('\n').includes(token), false, 'token in an answer');
    });
  });

  test('a password in a hook URL is masked in the log, the API, the stream and /metrics', async () => {
    const password = `pw-${randomUUID()}`;
    const wharf = await startWharf({
      args: [
        '--admin',
        '--hooks-http-urls',
        `http://hook-user:${password}@127.0.0.1:9/hooks`,
        '--hooks',
        'post-finish',
        '--shutdown-timeout',
        '1',
      ],
      env: { WHARF_ADMIN_TOKEN: token },
    });
    try {
      const stream = await openStream(wharf);
      const id = await upload(wharf, 3);
      // The outbox retries it: the event stays pending after a failed first attempt.
      const [failed] = await eventsUntil(wharf, id, (events) =>
        events.some((event) => event.runs.some((run) => run.status === 'failed')),
      );
      await stream.waitFor(
        (event, data) => event === 'run' && data.uploadId === id && data.status === 'failed',
      );
      stream.close();
      // Scheme, host and port only: no user, password or path.
      assert.match(failed?.runs[0]?.target ?? '', /^http:http:\/\/127\.0\.0\.1:9 \([0-9a-f]{8}\)$/);
      const answers = [
        (await api(wharf, 'GET', `/events?uploadId=${id}`)).text,
        (await api(wharf, 'GET', `/uploads/${id}`)).text,
        JSON.stringify(stream.events),
        (await send('GET', `${wharf.origin}/metrics`)).text,
      ];
      // The failure was logged before the API showed it; a marker request logged after it says it is in.
      await accessLog(wharf);
      const logged = wharf.logs.map((line) => JSON.stringify(line)).join('\n');
      assert.ok(logged.includes('hook run failed'), 'the failure is logged');
      assert.equal(logged.includes(password), false, 'password in the log');
      assert.equal(answers.join('\n').includes(password), false, 'password in an answer');
    } finally {
      await wharf.stop();
    }
  });

  describe('admin API start-up checks', () => {
    test('--admin without a token refuses to start on a non-loopback host (exit 2)', async () => {
      const { code, stderr } = await refusal(['--host', '0.0.0.0', '--admin']);
      assert.equal(code, 2);
      assert.match(stderr, /--admin needs --admin-token/);
    });

    test('--hooks-allowed-urls: a configured hook URL outside the list stops the start (exit 2)', async () => {
      const { code, stderr } = await refusal([
        '--host',
        '127.0.0.1',
        '--hooks-allowed-urls',
        'hooks.example.com',
        '--hooks-http-urls',
        'http://127.0.0.1:9/hooks',
      ]);
      assert.equal(code, 2);
      assert.match(stderr, /not allowed by --hooks-allowed-urls/);
    });

    test('--hooks-allowed-urls: a named HTTP hook of the config file outside the list stops the start', async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-allow-'));
      try {
        const configFile = path.join(scratch, 'wharf.yaml');
        await writeFile(
          configFile,
          'hooks:\n  notify:\n    transport: http\n    url: http://other.test/hooks\nendpoints:\n  - path: /files\n    hooks:\n      - { hook: notify, events: [post-finish] }\n',
        );
        const { code, stderr } = await refusal([
          '--host',
          '127.0.0.1',
          '--hooks-allowed-urls',
          'https://hooks.example.com/',
          '--config',
          configFile,
        ]);
        assert.notEqual(code, 0);
        assert.match(
          stderr,
          /hook URL http:\/\/other\.test:80 \([0-9a-f]{8}\) is not allowed by --hooks-allowed-urls/,
        );
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });

    test('--hooks-allowed-urls: runtime targets outside the list are refused (403) even when private ones are allowed', async () => {
      const wharf = await startWharf({
        args: [
          '--admin',
          '--hooks-allowed-urls',
          'https://hooks.example.com/',
          '--hooks-allow-private-targets',
        ],
        env: { WHARF_ADMIN_TOKEN: token },
      });
      try {
        const reply = await api(wharf, 'POST', '/targets', { url: 'http://127.0.0.1:9/hook' });
        assert.equal(reply.status, 403);
        assert.match(JSON.parse(reply.text).error, /--hooks-allowed-urls/);
      } finally {
        await wharf.stop();
      }
    });

    test('without --admin, /admin/api is not served; /metrics is, unless --metrics=false', async () => {
      const wharf = await startWharf({ args: ['--metrics=false'] });
      try {
        assert.equal((await send('GET', `${wharf.origin}/admin/api/uploads`, { headers: auth })).status, 404);
        assert.equal((await send('GET', `${wharf.origin}/metrics`)).status, 404);
      } finally {
        await wharf.stop();
      }
    });
  });

  for (const [name, args] of [
    ['Redis', ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl]],
    ['PostgreSQL', ['--info-storage', 'db-info-storage', '--info-db-dsn', postgresUrl]],
  ] as const) {
    test(`the run history lives in ${name} and is shared by instances`, async () => {
      const receiver = new HookReceiver();
      await receiver.start();
      const common = [
        '--admin',
        '--hooks-http-urls',
        receiver.url,
        '--hooks',
        'post-create,post-finish',
        ...args,
      ];
      const first = await startWharf({ args: common, env: { WHARF_ADMIN_TOKEN: token } });
      const second = await startWharf({ args: common, env: { WHARF_ADMIN_TOKEN: token } });
      try {
        const id = await upload(first, 8);
        await receiver.waitForNames(id, ['post-create', 'post-finish']);
        // Written by the first instance, read through the second.
        const events = await eventsUntil(
          second,
          id,
          (found) => found.length === 2 && found.every((event) => event.status === 'completed'),
        );
        assert.deepEqual(
          events.map((event) => event.event),
          ['post-finish', 'post-create'],
        );
        const one = await json<EventSummary>(second, `/events/${events[0]?.eventId}`);
        assert.equal(one.runs[0]?.httpStatus, 200);
      } finally {
        await first.stop();
        await second.stop();
        await receiver.close();
      }
    });
  }
});
