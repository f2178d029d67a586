import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tus from 'tus-js-client';
import { type BackendProxy, startBackendProxy } from '../support/backend-proxy.ts';
import { createUpload, octets, send, tus as tusHeaders } from '../support/http.ts';
import { type RoundRobinProxy, startRoundRobinProxy } from '../support/round-robin-proxy.ts';
import { dropPostgresSchema, postgresUrl, redisUrl } from '../support/services.ts';
import { accessLog, repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const MiB = 1024 * 1024;
/** Long enough to ride out an outage of a few seconds; tus-js-client resets the count after progress. */
const retryDelays = [0, 200, 500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000];
const python = process.env.WHARF_TEST_PYTHON ?? path.join(repoRoot, '.cache/venv/bin/python');
const tuspyProgram = path.join(import.meta.dirname, 'clients/tuspy_upload.py');

interface Backend {
  readonly name: string;
  readonly port: number;
  /** Wharf's arguments for this backend behind `proxyPort`, in a place of its own (prefix or schema). */
  args(proxyPort: number, place: string, password?: string): string[];
  /** A place name unique to one test. */
  place(): string;
  /** Removes what a test left in `place`. */
  cleanUp(place: string): Promise<void>;
}

const redis: Backend = {
  name: 'Redis',
  port: Number(new URL(redisUrl).port),
  args: (proxyPort, place, password) => [
    '--info-storage',
    'redis-info-storage',
    '--info-db-dsn',
    `redis://${password === undefined ? '' : `:${password}@`}127.0.0.1:${proxyPort}/${new URL(redisUrl).pathname.slice(1) || '0'}`,
    '--redis-key-prefix',
    place,
  ],
  place: () => `test-outage-${randomUUID()}:`,
  cleanUp: async (place) => {
    const { Redis } = await import('ioredis');
    const client = new Redis(redisUrl);
    try {
      const keys = await client.keys(`${place}*`);
      if (keys.length > 0) await client.del(...keys);
    } finally {
      client.disconnect();
    }
  },
};

const postgresDsn = new URL(postgresUrl);
const postgres: Backend = {
  name: 'PostgreSQL',
  port: Number(postgresDsn.port),
  args: (proxyPort, place, password) => {
    const dsn = new URL(postgresUrl);
    dsn.port = String(proxyPort);
    if (password !== undefined) dsn.password = password;
    return ['--info-storage', 'db-info-storage', '--info-db-dsn', dsn.toString(), '--postgres-schema', place];
  },
  place: () => `test_outage_${randomBytes(6).toString('hex')}`,
  cleanUp: (place) => dropPostgresSchema(place),
};

function payload(size: number): { bytes: Buffer; sha256: string } {
  const bytes = randomBytes(size);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

async function downloadSha256(url: string): Promise<string> {
  const reply = await send('GET', url);
  assert.equal(reply.status, 200, reply.text);
  return createHash('sha256').update(reply.body).digest('hex');
}

/**
 * Takes the backend away until `met()` says a client met the outage (polled every 50 ms), then gives it back;
 * resolves when it is back. Never met within 60 s: it gives the backend back and fails, naming `what`.
 */
async function outage(proxy: BackendProxy, met: () => boolean, what: string): Promise<void> {
  proxy.cut();
  try {
    for (const deadline = Date.now() + 60_000; !met(); await sleep(50)) {
      if (Date.now() > deadline) assert.fail(`the outage was never met: no ${what} within 60 s`);
    }
  } finally {
    proxy.restore();
  }
}

/** Whether `wharf` has logged an answer `${method} ${status}` (the access log, as it comes in). */
function answered(wharf: WharfProcess, method: string, status: number, from = 0): boolean {
  return wharf.logs
    .slice(from)
    .some((line) => line.msg === 'access' && line.method === method && line.status === status);
}

for (const backend of [redis, postgres]) {
  describe(`${backend.name} stopped for a few seconds in the middle of uploads`, () => {
    let proxy: BackendProxy;
    let wharf: WharfProcess;
    let place: string;
    let workDir: string;

    before(async () => {
      proxy = await startBackendProxy(backend.port);
      place = backend.place();
      workDir = await mkdtemp(path.join(tmpdir(), 'wharf-outage-'));
      wharf = await startWharf({
        args: [...backend.args(proxy.port, place), '--lock-ttl', '2', '--backend-timeout', '2'],
      });
    });
    after(async () => {
      await wharf?.stop();
      await proxy?.close();
      await backend.cleanUp(place);
      await rm(workDir, { recursive: true, force: true });
    });

    it('tus-js-client waits (HEAD answers 423, PATCH 503 with Retry-After) and resumes the same upload: no new upload, the file is byte-exact', async () => {
      const { bytes, sha256 } = payload(6 * MiB + 123);
      let outageDone: Promise<void> | undefined;
      const url = await new Promise<string>((resolve, reject) => {
        const task = new tus.Upload(bytes, {
          endpoint: wharf.endpoint,
          uploadSize: bytes.length,
          chunkSize: 256 * 1024,
          retryDelays,
          onChunkComplete: (_chunk, accepted) => {
            // After the first MiB, the backend goes away while the client keeps going, until a HEAD was told to
            // wait (the client is then in its retries).
            if (outageDone === undefined && accepted >= MiB) {
              const from = wharf.logs.length;
              outageDone = outage(proxy, () => answered(wharf, 'HEAD', 423, from), 'HEAD answered 423');
            }
          },
          onSuccess: () => resolve(task.url ?? ''),
          onError: reject,
        });
        task.start();
      });
      await outageDone;
      assert.equal(await downloadSha256(url), sha256);
      const log = await accessLog(wharf);
      const posts = log.filter((line) => line.method === 'POST');
      assert.equal(posts.length, 1, 'one upload created: the client resumed instead of starting over');
      // The outage was met (positive control): HEAD answered 423 at least once while it lasted.
      const heads = log.filter((line) => line.method === 'HEAD').map((line) => line.status);
      assert.ok(heads.includes(423), `HEAD statuses: ${heads.join(',')}`);
      assert.ok(!log.some((line) => line.status === 500), 'no 500 answered');
      const warnings = wharf.logs.filter((line) => String(line.msg).includes('unavailable'));
      assert.ok(warnings.length > 0, 'the outage is logged');
      assert.equal(warnings[0]?.backend, backend === redis ? 'redis' : 'postgres');
    });

    it('tuspy retries through the outage and finishes the same upload byte-exact', async () => {
      const { bytes, sha256 } = payload(3 * MiB + 5);
      const file = path.join(workDir, 'tuspy.bin');
      await writeFile(file, bytes);
      const child = spawn(python, [tuspyProgram, 'outage', wharf.endpoint, file, String(256 * 1024)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout });
      const output: string[] = [];
      const firstLine = new Promise<string>((resolve) => lines.once('line', resolve));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const first = JSON.parse(await firstLine) as { url: string; offset: number };
      lines.on('line', (line) => output.push(line));
      assert.equal(first.offset, 256 * 1024);
      const before = (await accessLog(wharf)).length;
      const logged = wharf.logs.length;
      // The backend is away until tuspy met the outage (a PATCH refused or a HEAD told to wait), then back.
      const outageDone = outage(
        proxy,
        () => answered(wharf, 'PATCH', 503, logged) || answered(wharf, 'HEAD', 423, logged),
        'PATCH 503 or HEAD 423',
      );
      child.stdin.write('go\n');
      await outageDone;
      assert.equal(await exited, 0);
      const last = JSON.parse(output.at(-1) ?? '{}') as { url: string; offset: number };
      assert.equal(last.url, first.url);
      assert.equal(last.offset, bytes.length);
      assert.equal(await downloadSha256(first.url), sha256);
      const during = (await accessLog(wharf)).slice(before);
      assert.equal(during.filter((line) => line.method === 'POST').length, 0, 'no new upload');
      const statuses = during.map((line) => `${line.method} ${line.status}`);
      assert.ok(statuses.includes('PATCH 503') || statuses.includes('HEAD 423'), statuses.join(','));
    });
  });

  describe(`${backend.name} stopped while uploads run on two instances behind a balancer`, () => {
    let proxy: BackendProxy;
    let instances: WharfProcess[] = [];
    let balancer: RoundRobinProxy;
    let place: string;
    let dataDir: string;

    before(async () => {
      proxy = await startBackendProxy(backend.port);
      place = backend.place();
      dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-outage-'));
      const args = [
        ...backend.args(proxy.port, place),
        '--lock-ttl',
        '2',
        '--backend-timeout',
        '2',
        '--no-access',
      ];
      instances = [await startWharf({ dataDir, args }), await startWharf({ dataDir, args })];
      balancer = await startRoundRobinProxy(instances.map((instance) => instance.origin));
    });
    after(async () => {
      await balancer?.close();
      await Promise.all(instances.map((instance) => instance.stop()));
      await proxy?.close();
      await backend.cleanUp(place);
      await rm(dataDir, { recursive: true, force: true });
    });

    it('8 tus-js-client uploads in flight all resume: 8 uploads created in all, each byte-exact', async () => {
      const uploads = Array.from({ length: 8 }, () => payload(2 * MiB + 17));
      let sent = 0;
      let outageDone: Promise<void> | undefined;
      const urls = await Promise.all(
        uploads.map(
          ({ bytes }) =>
            new Promise<string>((resolve, reject) => {
              const task = new tus.Upload(bytes, {
                endpoint: `${balancer.origin}/files/`,
                uploadSize: bytes.length,
                chunkSize: 128 * 1024,
                retryDelays,
                onChunkComplete: (chunk) => {
                  sent += chunk;
                  // The backend goes away until an upload in flight met it (see the last assertion).
                  if (outageDone === undefined && sent >= 2 * MiB)
                    outageDone = outage(
                      proxy,
                      () => balancer.served.some((entry) => /^(HEAD \d 423|PATCH \d 503)$/.test(entry)),
                      'HEAD 423 or PATCH 503 through the balancer',
                    );
                },
                onSuccess: () => resolve(task.url ?? ''),
                onError: reject,
              });
              task.start();
            }),
        ),
      );
      await outageDone;
      for (const [index, url] of urls.entries()) {
        assert.equal(await downloadSha256(url), uploads[index]?.sha256, `upload ${index}`);
      }
      const posts = balancer.served.filter((entry) => entry.startsWith('POST '));
      assert.equal(posts.length, 8, 'no upload started over');
      // The outage reached an upload in flight: a PATCH refused (503) or a HEAD told to wait (423). Which one
      // depends on where the cut falls (a PATCH that waited out --backend-timeout meets a HEAD after the restore).
      assert.ok(
        balancer.served.some((entry) => /^(HEAD \d 423|PATCH \d 503)$/.test(entry)),
        `the outage was met: ${balancer.served.filter((entry) => !entry.endsWith(' 204')).join(',')}`,
      );
    });
  });

  describe(`${backend.name} hung (connections open, no answer)`, () => {
    const password = 'hang-secret-pw-1234';
    let proxy: BackendProxy;
    let wharf: WharfProcess;
    let place: string;

    before(async () => {
      proxy = await startBackendProxy(backend.port);
      place = backend.place();
      wharf = await startWharf({
        args: [
          ...backend.args(proxy.port, place, backend === redis ? password : undefined),
          '--backend-timeout',
          '1',
        ],
      });
    });
    after(async () => {
      await wharf?.stop();
      await proxy?.close();
      await backend.cleanUp(place);
    });

    it('answers 423 to HEAD and 503 with Retry-After and its code to PATCH and POST within --backend-timeout, logs a warning naming the backend, and serves the upload once it answers again', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
      assert.equal((await send('HEAD', url, { headers: tusHeaders })).status, 200);
      proxy.hang();
      // The hang ends on its own after 8 s, so that a server without a bound answers late instead of never.
      const hangEnds = setTimeout(() => proxy.restore(), 8_000);
      try {
        // The three at once: each waits out --backend-timeout on its own.
        const [head, patch, post] = await Promise.all([
          send('HEAD', url, { headers: tusHeaders }),
          send('PATCH', url, {
            headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0 },
            body: Buffer.from('0123456789'),
          }),
          send('POST', wharf.endpoint, { headers: { ...tusHeaders, 'Upload-Length': 5 } }),
        ]);
        assert.equal(head.status, 423);
        assert.equal(head.headers['retry-after'], '1');
        assert.equal(patch.status, 503, patch.text);
        assert.equal(patch.headers['retry-after'], '1');
        assert.match(patch.text, /^ERR_BACKEND_UNAVAILABLE: /);
        assert.equal(post.status, 503, post.text);
        assert.match(post.text, /^ERR_BACKEND_UNAVAILABLE: /);
      } finally {
        clearTimeout(hangEnds);
        proxy.restore();
      }
      // Back: the same upload takes its bytes (positive control: nothing was lost or taken for gone).
      const patch = await send('PATCH', url, {
        headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0 },
        body: Buffer.from('0123456789'),
      });
      assert.equal(patch.status, 204, patch.text);
      const warnings = wharf.logs.filter(
        (line) => line.level === 40 && String(line.msg).includes('unavailable'),
      );
      assert.ok(warnings.length >= 3, JSON.stringify(warnings));
      assert.equal(warnings[0]?.backend, backend === redis ? 'redis' : 'postgres');
      assert.match(
        String(warnings[0]?.address),
        /:\*\*\*@127\.0\.0\.1:/,
        'the address is logged, its password masked',
      );
      if (backend === redis)
        assert.ok(!JSON.stringify(wharf.logs).includes(password), 'the password is never logged');
    });
  });
}
