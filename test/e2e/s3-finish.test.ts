/**
 * Issue 17, point 12: with s3 or hybrid-s3 storage the final PATCH seals the object (completes the
 * multipart upload, sends the local file) before it writes the record. A process killed between the two
 * left the record one chunk short of a complete object: every retry answered 500 and GET 409, forever.
 * Here the record write is held in a proxy in front of Redis and the instance is killed with SIGKILL
 * while it waits; another instance (one that never served the upload) must then finish it from what is in the bucket.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { downloadSha256, MiB } from '../support/bytes.ts';
import { type HoldingProxy, holdingProxy } from '../support/holding-proxy.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import {
  listKeys,
  objectSha256,
  pendingMultipartUploads,
  removeObjects,
  s3Args,
  s3Unavailable,
} from '../support/s3.ts';
import { redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

/** Sends a PATCH whose answer may never come (the server is killed): resolves with the status or the error. */
function patchInFlight(url: string, offset: number, body: Buffer): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...tus, ...octets, 'Upload-Offset': offset, 'Content-Length': body.length },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error) => resolve(error));
    req.end(body);
  });
}

const redisPort = Number(new URL(redisUrl).port);
const partSize = 5 * MiB;
// A full part and a tail: the final PATCH sends part 1 and completes the object from it and the tail.
const content = randomBytes(partSize + 300 * 1024);
const firstChunk = 3 * MiB;
const contentSha = createHash('sha256').update(content).digest('hex');

interface CutUpload {
  readonly url: string;
  readonly id: string;
  readonly key: string;
}

const unavailable = await s3Unavailable();

// The two storages at once: each has its own proxy, folder and instances. The tests of one storage run one at a
// time, as they arm that storage's proxy in turn.
describe('a final PATCH killed after sealing the object, before writing the record', {
  concurrency: true,
}, () => {
  for (const storage of ['s3', 'hybrid-s3'] as const) {
    describe(`${storage}: a final PATCH killed after sealing the object, before writing the record`, {
      skip: unavailable,
      // Not inherited from the describe above: these arm one proxy in turn.
      concurrency: false,
    }, () => {
      let proxy: HoldingProxy;
      let dataDir: string;
      let receiver: HookReceiver;
      const setup = s3Args(storage, ['--s3-part-size', '5MiB']);
      const ids: string[] = [];
      const instances: WharfProcess[] = [];
      const redis = new Redis(redisUrl, { lazyConnect: true });

      /**
       * The instance that takes over each cut upload (and runs the READONLY test): started once, before any upload
       * exists, so it holds nothing of an upload in memory until it is asked about it, as a new instance would. Each
       * test cuts an upload of its own; the instance that sealed it is started for that test and killed.
       */
      let survivor: WharfProcess;

      /** An instance on the shared folder and Redis (through the proxy); its post-finish events go to the receiver. */
      async function instance(): Promise<WharfProcess> {
        const wharf = await startWharf({
          dataDir,
          args: [
            ...setup.args,
            '--info-storage',
            'redis-info-storage',
            '--info-db-dsn',
            `redis://127.0.0.1:${proxy.port}/0`,
            // A killed instance's lock frees itself quickly.
            '--lock-ttl',
            '1',
            '--hooks',
            'post-finish',
            '--hooks-http-urls',
            receiver.url,
          ],
        });
        instances.push(wharf);
        return wharf;
      }

      /** Uploads all but the last chunk, then sends it to an instance killed while its record write is held. */
      async function cutFinalPatch(): Promise<CutUpload> {
        const first = await instance();
        const url = await createUpload(first.endpoint, { 'Upload-Length': content.length });
        const id = url.slice(url.lastIndexOf('/') + 1);
        ids.push(id);
        const key = `${setup.folder}/${id}`;
        const reply = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: content.subarray(0, firstChunk),
        });
        assert.equal(reply.status, 204);
        // The record write that would say "complete": held, so the instance dies with it unsent.
        proxy.holdAt(`"offset":${content.length},"length":${content.length}`);
        const cut = patchInFlight(url, firstChunk, content.subarray(firstChunk));
        await eventually(() => proxy.holding(), 'the final record write');
        // The object was sealed before the record write: complete and byte-exact in the bucket.
        assert.deepEqual(await objectSha256(key), { sha256: contentSha, size: content.length });
        await first.stop('SIGKILL');
        assert.ok((await cut) instanceof Error, 'the killed instance never answered the final PATCH');
        return { url, id, key };
      }

      /** What a sealed upload must not leave behind: tails, the multipart upload, the local file. */
      async function assertNothingLeft(cut: CutUpload): Promise<void> {
        assert.deepEqual(await listKeys(`.wharf-tails/${cut.key}/`), []);
        assert.deepEqual(await pendingMultipartUploads(cut.key), []);
        assert.equal(existsSync(path.join(dataDir, cut.key)), false, 'the local copy is removed');
      }

      /** post-finish fired exactly once for `id`: a later upload's post-finish arriving proves the wait was long enough. */
      async function assertOnePostFinish(wharf: WharfProcess, id: string): Promise<void> {
        const marker = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        ids.push(marker.slice(marker.lastIndexOf('/') + 1));
        const finished = await send('PATCH', marker, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: Buffer.from('x'),
        });
        assert.equal(finished.status, 204);
        await receiver.waitForNames(marker.slice(marker.lastIndexOf('/') + 1), ['post-finish']);
        assert.deepEqual(
          receiver.forUpload(id).map((hook) => hook.name),
          ['post-finish'],
        );
      }

      before(async () => {
        proxy = await holdingProxy(redisPort);
        dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-s3-finish-'));
        receiver = new HookReceiver();
        await receiver.start();
        await redis.connect();
        survivor = await instance();
      });
      after(async () => {
        for (const wharf of instances) await wharf.stop('SIGKILL');
        if (ids.length > 0) await redis.del(...ids.map((id) => `wharf:info:${id}`));
        redis.disconnect();
        await proxy.close();
        await receiver.close();
        await removeObjects(`${setup.folder}/`);
        await removeObjects(`.wharf-tails/${setup.folder}/`);
        for (const id of ids) await removeObjects(`.wharf-records/${id}.json`);
        await rm(dataDir, { recursive: true, force: true });
      });

      it('the retried last chunk on another instance answers 204 at the full length; GET is byte-exact', async () => {
        const cut = await cutFinalPatch();
        const second = survivor;
        const retry = await send('PATCH', cut.url.replace(/^http:\/\/[^/]+/, second.origin), {
          headers: { ...tus, ...octets, 'Upload-Offset': firstChunk },
          body: content.subarray(firstChunk),
        });
        assert.equal(retry.status, 204, retry.text);
        assert.equal(retry.headers['upload-offset'], String(content.length));
        const url = cut.url.replace(/^http:\/\/[^/]+/, second.origin);
        const head = await send('HEAD', url, { headers: tus });
        assert.equal(head.headers['upload-offset'], String(content.length));
        assert.equal(await downloadSha256(url), contentSha);
        await assertNothingLeft(cut);
        await assertOnePostFinish(second, cut.id);
      });

      it("another instance's HEAD finishes it, and GET then downloads it byte-exact", async () => {
        const cut = await cutFinalPatch();
        const second = survivor;
        const url = cut.url.replace(/^http:\/\/[^/]+/, second.origin);
        const head = await send('HEAD', url, { headers: tus });
        assert.equal(head.status, 200);
        assert.equal(head.headers['upload-offset'], String(content.length));
        assert.equal(head.headers['upload-expires'], undefined, 'a finished upload does not expire');
        const again = await send('HEAD', url, { headers: tus });
        assert.equal(again.headers['upload-offset'], String(content.length));
        assert.equal(await downloadSha256(url), contentSha);
        await assertNothingLeft(cut);
        await assertOnePostFinish(second, cut.id);
      });

      it('when Redis refuses the record write (READONLY: a 5xx, retry), the retried last chunk finishes it', async () => {
        const wharf = survivor;
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': content.length });
        const id = url.slice(url.lastIndexOf('/') + 1);
        ids.push(id);
        assert.equal(await patchInFlight(url, 0, content.subarray(0, firstChunk)), 204);
        // What a failover to a read-only replica answers.
        proxy.failAt(
          `"offset":${content.length},"length":${content.length}`,
          "-READONLY You can't write against a read only replica.\r\n",
        );
        // 503 with Retry-After when the refusal is recognised as the store's (READONLY), else 500: a retry either way.
        const refused = await patchInFlight(url, firstChunk, content.subarray(firstChunk));
        assert.ok(refused === 503 || refused === 500, `the refused record write answers ${String(refused)}`);
        // The object is complete in the bucket, the record one chunk short.
        assert.deepEqual(await objectSha256(`${setup.folder}/${id}`), {
          sha256: contentSha,
          size: content.length,
        });
        const retry = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': firstChunk },
          body: content.subarray(firstChunk),
        });
        assert.equal(retry.status, 204, retry.text);
        assert.equal(retry.headers['upload-offset'], String(content.length));
        assert.equal(await downloadSha256(url), contentSha);
        await assertNothingLeft({ url, id, key: `${setup.folder}/${id}` });
        await assertOnePostFinish(wharf, id);
      });

      it("another instance's GET finishes it and downloads it byte-exact", async () => {
        const cut = await cutFinalPatch();
        const second = survivor;
        const url = cut.url.replace(/^http:\/\/[^/]+/, second.origin);
        assert.equal(await downloadSha256(url), contentSha);
        await assertNothingLeft(cut);
        await assertOnePostFinish(second, cut.id);
      });
    });
  }
});
