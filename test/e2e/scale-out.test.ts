import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { downloadSha256, MiB } from '../support/bytes.ts';
import { createUpload, octets, send, tus as tusHeaders } from '../support/http.ts';
import { type PrivateService, privatePostgres, privateRedis } from '../support/private-services.ts';
import { type RoundRobinProxy, startRoundRobinProxy } from '../support/round-robin-proxy.ts';
import { objectSha256, removeObjects, s3Args } from '../support/s3.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const retryDelays = [0, 200, 500, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000];

interface Cluster {
  readonly instances: WharfProcess[];
  readonly proxy: RoundRobinProxy;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** `count` wharf processes sharing one data folder and one state store, behind a round-robin proxy. */
async function startCluster(stateArgs: readonly string[], count: number): Promise<Cluster> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-scale-'));
  const instances = await Promise.all(
    Array.from({ length: count }, () =>
      startWharf({ dataDir, args: [...stateArgs, '--lock-ttl', '2', '--no-access'] }),
    ),
  );
  const proxy = await startRoundRobinProxy(instances.map((instance) => instance.origin));
  return {
    instances,
    proxy,
    dataDir,
    stop: async () => {
      await proxy.close();
      await Promise.all(instances.map((instance) => instance.stop('SIGKILL')));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function randomPayload(size: number): { bytes: Buffer; sha256: string } {
  const bytes = randomBytes(size);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function upload(bytes: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const task = new tus.Upload(bytes, {
      retryDelays,
      uploadSize: bytes.length,
      ...options,
      onSuccess: () => resolve(task.url ?? ''),
      onError: reject,
    });
    task.start();
  });
}

function patchesBy(proxy: RoundRobinProxy): Set<string> {
  return new Set(
    proxy.served
      .filter((entry) => entry.startsWith('PATCH ') && entry.endsWith(' 204'))
      .map((e) => e.split(' ')[1]!),
  );
}

/** A PATCH whose body trickles in (64 KiB every 10 ms) until `total` bytes or until the server answers. */
function tricklingPatch(
  url: string,
  offset: number,
  fill: number,
  total: number,
): { readonly sent: () => number; readonly status: Promise<number> } {
  let sent = 0;
  const status = new Promise<number>((resolve) => {
    const req = httpRequest(url, {
      method: 'PATCH',
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': offset },
      agent: false,
    });
    let timer: NodeJS.Timeout | undefined;
    req.on('response', (res) => {
      clearInterval(timer);
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.on('error', () => {
      clearInterval(timer);
      resolve(0);
    });
    timer = setInterval(() => {
      if (sent >= total) {
        clearInterval(timer);
        req.end();
        return;
      }
      req.write(Buffer.alloc(64 * 1024, fill));
      sent += 64 * 1024;
    }, 10);
  });
  return { sent: () => sent, status };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let round = 0; round < 600; round++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`gave up waiting until ${what}`);
}

/**
 * A 16 MiB tus-js-client upload in 4 MiB chunks through the cluster's proxy; once 10 MiB are sent (the third
 * PATCH in flight), the instance serving that PATCH is SIGKILLed. The client must resume through the others and
 * the stored bytes keep their SHA-256.
 */
async function killMidPatchAndResume(cluster: Cluster): Promise<void> {
  const { bytes, sha256 } = randomPayload(16 * MiB);
  let killed: number | undefined;
  const url = await upload(bytes, {
    endpoint: `${cluster.proxy.origin}/files/`,
    chunkSize: 4 * MiB,
    onProgress: (sent) => {
      if (killed !== undefined || sent < 10 * MiB) return;
      // The instance serving the PATCH in flight dies with it.
      const last = cluster.proxy.served.findLast((entry) => entry.startsWith('PATCH '));
      killed = Number(last?.split(' ')[1]);
      cluster.instances[killed]?.child.kill('SIGKILL');
    },
  });
  assert.ok(killed !== undefined, 'an instance was killed');
  const victim = cluster.instances[killed]?.child;
  // The client may finish before this process has seen the victim's exit (its signalCode is set then).
  if (victim !== undefined && victim.exitCode === null && victim.signalCode === null)
    await once(victim, 'exit');
  assert.equal(victim?.signalCode, 'SIGKILL');
  // Read back from each survivor itself, not only through the proxy: each must serve the whole upload.
  const uploadPath = new URL(url).pathname;
  const survivors = cluster.instances.filter((_, index) => index !== killed);
  assert.equal(survivors.length, cluster.instances.length - 1);
  for (const survivor of survivors)
    assert.equal(await downloadSha256(`${survivor.origin}${uploadPath}`), sha256);
}

function describeScaleOut(
  name: string,
  stateArgs: (url: string) => string[],
  sharedUrl: string,
  privateService: { readonly start: () => Promise<PrivateService>; readonly backend: string },
): void {
  describe(`three instances sharing files and ${name}`, () => {
    // One cluster for every test here, in the order written: each test uses uploads of its own, and the last one
    // kills an instance (nothing after it needs all three). A fresh cluster per test would prove nothing more and
    // cost three process starts each.
    let shared: Cluster;
    before(async () => {
      shared = await startCluster(stateArgs(sharedUrl), 3);
    });
    after(async () => {
      await shared?.stop();
    });

    // 6 PATCHes of 1 MiB: each instance takes two, in turn (more bytes would test nothing more).
    it('a 6 MiB tus-js-client upload in 1 MiB chunks is served by every instance and keeps its SHA-256', async () => {
      const { bytes, sha256 } = randomPayload(6 * MiB);
      const url = await upload(bytes, {
        endpoint: `${shared.proxy.origin}/files/`,
        chunkSize: MiB,
        metadata: { filename: 'big.bin' },
      });
      assert.deepEqual([...patchesBy(shared.proxy)].sort(), ['0', '1', '2']);
      assert.equal(await downloadSha256(url), sha256);
    });

    it('concurrent PATCHes to one upload on two instances never interleave bytes', async () => {
      const cluster = shared;
      const [first, second, third] = cluster.instances as [WharfProcess, WharfProcess, WharfProcess];
      const length = 8 * MiB;
      const location = await createUpload(first.endpoint, { 'Upload-Length': length });
      const id = location.split('/').pop()!;
      const onSecond = `${second.endpoint}${id}`;
      const onThird = `${third.endpoint}${id}`;
      // A writes slowly on one instance; once it is well under way, B writes at the same offset on another.
      const a = tricklingPatch(onSecond, 0, 0x41, 4 * MiB);
      await waitFor(() => a.sent() >= MiB, 'A sent 1 MiB');
      const b = tricklingPatch(onThird, 0, 0x42, 4 * MiB);
      const [statusA, statusB] = await Promise.all([a.status, b.status]);
      // A was asked to release (its bytes kept); B then found the offset moved, or wrote after A's bytes were cut.
      // Either may see its connection reset (0) rather than its 400/409: the server closes a request body it
      // stops reading, and a client still writing can get the reset before it reads the answer. What must hold
      // is below: the stored bytes are all A's or all B's.
      assert.ok([204, 400, 0].includes(statusA), `A answered ${statusA}`);
      assert.ok([204, 409, 0].includes(statusB), `B answered ${statusB}`);
      const head = await send('HEAD', `${first.endpoint}${id}`, { headers: tusHeaders });
      const offset = Number(head.headers['upload-offset']);
      assert.ok(offset > 0);
      const file = await open(path.join(cluster.dataDir, id), 'r');
      try {
        const { buffer } = await file.read(Buffer.alloc(offset), 0, offset, 0);
        const fill = buffer[0]!;
        assert.ok(fill === 0x41 || fill === 0x42);
        assert.equal(buffer.indexOf(fill === 0x41 ? 0x42 : 0x41), -1, 'bytes of A and B are not mixed');
        assert.equal(
          buffer.findIndex((byte) => byte !== fill),
          -1,
        );
      } finally {
        await file.close();
      }
      // The upload goes on from the recorded offset.
      const rest = Buffer.alloc(length - offset, 0x43);
      const done = await send('PATCH', `${first.endpoint}${id}`, {
        headers: { ...tusHeaders, ...octets, 'Upload-Offset': offset },
        body: rest,
      });
      assert.equal(done.status, 204, done.text);
      assert.equal(done.headers['upload-offset'], String(length));
    });

    // Last: it leaves the cluster one instance short.
    it('file storage: an instance SIGKILLed in the middle of a PATCH, the client resumes through the others', async () => {
      await killMidPatchAndResume(shared);
    });

    describe('with S3 storage', () => {
      // One S3-backed cluster for both tests, in the order written: the first needs all three instances and
      // uploads its own object, the second (last) kills one.
      const s3 = s3Args('s3', ['--s3-part-size', '5MiB']);
      let cluster: Cluster;
      before(async () => {
        cluster = await startCluster([...stateArgs(sharedUrl), ...s3.args], 3);
      });
      after(async () => {
        await cluster?.stop();
        await removeObjects(s3.folder);
      });

      // 6 PATCHes of 5 MiB (the --s3-part-size, the smallest S3 allows), so each is one whole part of the
      // multipart upload and every instance uploads two of them, in turn, before the one that gets the last
      // completes the object.
      it('a 30 MiB upload whose PATCHes land on every instance becomes one object with its SHA-256', async () => {
        const { bytes, sha256 } = randomPayload(30 * MiB);
        const url = await upload(bytes, {
          endpoint: `${cluster.proxy.origin}/files/`,
          chunkSize: 5 * MiB,
          metadata: { filename: 'video.bin' },
        });
        assert.deepEqual([...patchesBy(cluster.proxy)].sort(), ['0', '1', '2']);
        const stored = await objectSha256(`${s3.folder}/${url.split('/').pop()}`);
        assert.equal(stored.size, 30 * MiB);
        assert.equal(stored.sha256, sha256);
      });

      // Last: it leaves the cluster one instance short.
      it('an instance SIGKILLed in the middle of a PATCH, the client resumes through the others', async () => {
        await killMidPatchAndResume(cluster);
      });
    });
  });

  describe(`--workers with ${name}`, () => {
    it('worker processes share the lock through the backend: concurrent PATCHes never interleave', async () => {
      const wharf = await startWharf({ args: [...stateArgs(sharedUrl), '--workers', '2', '--no-access'] });
      try {
        const length = 4 * MiB;
        const location = await createUpload(wharf.endpoint, { 'Upload-Length': length });
        const id = location.split('/').pop()!;
        // New connections are spread over the workers by the primary; several writers race on one upload.
        const writers = [0x41, 0x42, 0x43, 0x44].map((fill) =>
          tricklingPatch(`${wharf.endpoint}${id}`, 0, fill, MiB),
        );
        await Promise.all(writers.map((writer) => writer.status));
        const head = await send('HEAD', `${wharf.endpoint}${id}`, { headers: tusHeaders });
        const offset = Number(head.headers['upload-offset']);
        assert.ok(offset > 0);
        const file = await open(path.join(wharf.dataDir, id), 'r');
        try {
          const { buffer } = await file.read(Buffer.alloc(offset), 0, offset, 0);
          assert.equal(
            buffer.findIndex((byte) => byte !== buffer[0]),
            -1,
            'one writer only',
          );
        } finally {
          await file.close();
        }
      } finally {
        await wharf.stop();
      }
    });
  });

  describe(`${name} restarted in the middle of an upload`, () => {
    // An instance of its own on a free port, data in a temporary folder: a run beside this one has its own.
    let instance: PrivateService;
    const service = (command: 'start' | 'stop') => instance[command]();
    before(async () => {
      instance = await privateService.start();
      await service('start');
    });
    after(async () => {
      await instance?.remove();
    });

    it('/health fails while it is down, and the upload resumes once it is back with nothing lost', async () => {
      const cluster = await startCluster(stateArgs(instance.url), 2);
      try {
        const [first] = cluster.instances as [WharfProcess];
        const healthy = await send('GET', `${first.origin}/health`);
        assert.equal(healthy.status, 200);
        assert.deepEqual(JSON.parse(healthy.text), {
          status: 'ok',
          backends: { [privateService.backend]: { status: 'ok' } },
        });
        const { bytes, sha256 } = randomPayload(16 * MiB);
        let restart: Promise<void> | undefined;
        const url = await upload(bytes, {
          endpoint: `${cluster.proxy.origin}/files/`,
          chunkSize: 2 * MiB,
          onChunkComplete: (_size, accepted) => {
            if (restart || accepted < 8 * MiB) return;
            cluster.proxy.hold();
            restart = (async () => {
              await service('stop');
              const down = await send('GET', `${first.origin}/health`);
              assert.equal(down.status, 503);
              const report = JSON.parse(down.text) as {
                status: string;
                backends: Record<string, { status: string }>;
              };
              assert.equal(report.status, 'unavailable');
              assert.equal(report.backends[privateService.backend]?.status, 'down');
              // Let the client hit the instances while the service is down, then bring it back.
              cluster.proxy.release();
              await waitFor(
                () => cluster.proxy.served.some((entry) => / 5\d\d$/.test(entry)),
                'a request failed while the service was down',
              );
              await service('start');
            })();
          },
        });
        await restart;
        assert.ok(cluster.proxy.served.some((entry) => / 5\d\d$/.test(entry)));
        assert.equal(await downloadSha256(url), sha256);
        const after = await send('GET', `${first.origin}/health`);
        assert.equal(after.status, 200);
      } finally {
        await cluster.stop();
      }
    });
  });
}

describeScaleOut('Redis', (url) => ['--info-storage', 'redis-info-storage', '--info-db-dsn', url], redisUrl, {
  start: privateRedis,
  backend: 'redis',
});

describeScaleOut(
  'PostgreSQL',
  (url) => ['--info-storage', 'db-info-storage', '--info-db-dsn', url],
  postgresUrl,
  { start: privatePostgres, backend: 'postgres' },
);

describe('an unreachable shared info storage', () => {
  for (const [storage, dsn, shown] of [
    [
      'redis-info-storage',
      'redis://:s3cret-pw@127.0.0.1:1/0',
      'cannot reach redis at redis://:***@127.0.0.1:1/0',
    ],
    [
      'db-info-storage',
      'postgres://wharf:s3cret-pw@127.0.0.1:1/wharf',
      'cannot prepare postgres at postgres://wharf:***@127.0.0.1:1/wharf',
    ],
  ] as const) {
    it(`${storage}: wharf exits at start saying where it looked, without the password`, async () => {
      await assert.rejects(
        startWharf({ args: ['--info-storage', storage, '--info-db-dsn', dsn] }),
        (error: Error) => {
          assert.match(error.message, /exited with 1/);
          assert.ok(error.message.includes(shown), error.message);
          assert.ok(!error.message.includes('s3cret-pw'), 'the password is not printed');
          return true;
        },
      );
    });
  }
});
