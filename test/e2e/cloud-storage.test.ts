import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import * as tus from 'tus-js-client';
import { azureArgs, azureBlobNames, azureBlobSha256, azureUnavailable } from '../support/azure.ts';
import {
  headOffset,
  idOf,
  offsetAfterDrop,
  patch,
  patchThenDrop,
  sendChunks,
  sha256,
  uploadWithTusJs,
} from '../support/chunked-upload.ts';
import { eventually } from '../support/eventually.ts';
import { gcsArgs, gcsObjectNames, gcsObjectSha256, gcsUnavailable } from '../support/gcs.ts';
import { createUpload, send, tus as tusHeaders } from '../support/http.ts';
import { redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * The file's unit of size: a quarter MiB. Every size below is in it, parts and blocks too (5 units = 1.25 MiB,
 * above the 1 MiB smallest Azure block Wharf takes), so each upload crosses the same part boundaries at the same
 * places as it did with 5 MiB parts and sizes in MiB, with a quarter of the bytes to send, store and hash.
 */
const unit = 256 * 1024;
const partSize = String(5 * unit);

/** What a test needs to know of one cloud: the flags, and a look at the container not through Wharf. */
interface Cloud {
  readonly name: 'gcs' | 'azure';
  readonly unavailable: () => Promise<undefined>;
  readonly args: (extra?: readonly string[]) => { args: string[]; prefix: string };
  readonly names: (prefix: string) => Promise<string[]>;
  readonly sha256: (name: string) => Promise<{ sha256: string; size: number }>;
}

const clouds: Cloud[] = [
  {
    name: 'gcs',
    unavailable: gcsUnavailable,
    args: (extra = []) => gcsArgs(['--gcs-part-size', partSize, ...extra]),
    names: gcsObjectNames,
    sha256: gcsObjectSha256,
  },
  {
    name: 'azure',
    unavailable: azureUnavailable,
    args: (extra = []) => azureArgs(['--azure-block-size', partSize, ...extra]),
    names: azureBlobNames,
    sha256: azureBlobSha256,
  },
];

for (const cloud of clouds) await cloud.unavailable();

// The two clouds side by side: each suite has its own emulator, server and prefix.
describe('cloud storage', { concurrency: clouds.length }, () => {
  for (const cloud of clouds) {
    // One test at a time inside a suite (a suite's tests share its server, and one restarts it); without the
    // option a suite would take the outer suite's concurrency.
    describe(`${cloud.name} storage against its emulator`, { concurrency: 1 }, () => {
      let wharf: WharfProcess;
      let prefix: string;
      let args: string[];
      /** Kept across a restart: the info records live here. */
      let dataDir: string;

      before(async () => {
        ({ args, prefix } = cloud.args(['--allow-empty']));
        dataDir = await mkdtemp(path.join(tmpdir(), `wharf-${cloud.name}-`));
        wharf = await startWharf({ args, dataDir });
      });
      after(async () => {
        await wharf?.stop();
        await rm(dataDir, { recursive: true, force: true });
      });

      /** Every object this run stored for one upload (its own, and any temporary ones). */
      async function storedFor(id: string): Promise<string[]> {
        return (await cloud.names(prefix)).filter((name) => name.includes(id));
      }

      // 13 units + 11 in chunks of 6: three PATCHes, each cut into parts of 5 units (and a short one), and a Range
      // that starts in the first part and ends in the third.
      it('receives a tus-js-client upload in chunks, byte-exact, and serves it whole and by Range', async () => {
        const data = randomBytes(13 * unit + 11);
        const url = await uploadWithTusJs(wharf.endpoint, data, 6 * unit);
        const name = `${prefix}${idOf(url)}`;
        const stored = await cloud.sha256(name);
        assert.equal(stored.size, data.length);
        assert.equal(stored.sha256, sha256(data));
        assert.deepEqual(await storedFor(idOf(url)), [name], 'only the upload object is left');
        const whole = await send('GET', url);
        assert.equal(whole.status, 200);
        assert.equal(sha256(whole.body), sha256(data));
        const start = 5 * unit - 10;
        const end = 12 * unit + 9;
        const ranged = await send('GET', url, { headers: { Range: `bytes=${start}-${end}` } });
        assert.equal(ranged.status, 206);
        assert.equal(ranged.headers['content-range'], `bytes ${start}-${end}/${data.length}`);
        assert.ok(ranged.body.equals(data.subarray(start, end + 1)));
      });

      it('keeps the bytes of a PATCH whose connection dropped, and the client resumes from there', async () => {
        const data = randomBytes(16 * unit);
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': data.length });
        const sent = 11 * unit + 777;
        await patchThenDrop(url, data, sent);
        const offset = await offsetAfterDrop(url);
        assert.ok(offset >= unit && offset <= sent, `offset ${offset} after ${sent} bytes sent`);
        await sendChunks(url, data, [data.length - offset], offset);
        assert.equal((await cloud.sha256(`${prefix}${idOf(url)}`)).sha256, sha256(data));
      });

      it('discards a chunk whose checksum does not match', async () => {
        const data = randomBytes(12 * unit);
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': data.length });
        await sendChunks(url, data, [3 * unit]);
        const chunk = data.subarray(3 * unit, 9 * unit);
        const wrong = createHash('sha256').update('not these bytes').digest('base64');
        const refused = await patch(url, 3 * unit, randomBytes(chunk.length), {
          'Upload-Checksum': `sha256 ${wrong}`,
        });
        assert.equal(refused.status, 460);
        assert.equal(await headOffset(url), 3 * unit);
        const right = createHash('sha256').update(chunk).digest('base64');
        const accepted = await patch(url, 3 * unit, chunk, { 'Upload-Checksum': `sha256 ${right}` });
        assert.equal(accepted.status, 204);
        await sendChunks(url, data, [3 * unit], 9 * unit);
        assert.equal((await cloud.sha256(`${prefix}${idOf(url)}`)).sha256, sha256(data));
      });

      it('terminates unfinished and finished uploads, leaving nothing stored', async () => {
        const data = randomBytes(12 * unit);
        const unfinished = await createUpload(wharf.endpoint, { 'Upload-Length': 20 * unit });
        await sendChunks(unfinished, data, [7 * unit, 5 * unit]);
        const finished = await createUpload(wharf.endpoint, { 'Upload-Length': 6 * unit });
        await sendChunks(finished, data, [6 * unit]);
        for (const url of [unfinished, finished]) {
          assert.notDeepEqual(await storedFor(idOf(url)), [], 'something stored before');
          const reply = await send('DELETE', url, { headers: tusHeaders });
          assert.equal(reply.status, 204);
          assert.equal((await send('HEAD', url, { headers: tusHeaders })).status, 404);
          assert.deepEqual(await storedFor(idOf(url)), []);
        }
      });

      it('concatenates partial uploads into one object', async () => {
        const pieces = [randomBytes(unit + 5), randomBytes(6 * unit), randomBytes(17), randomBytes(0)];
        const partUrls: string[] = [];
        for (const piece of pieces) {
          const url = await createUpload(wharf.endpoint, {
            'Upload-Length': piece.length,
            'Upload-Concat': 'partial',
          });
          if (piece.length > 0) await sendChunks(url, piece, [piece.length]);
          partUrls.push(url);
        }
        const final = await createUpload(wharf.endpoint, {
          'Upload-Concat': `final;${partUrls.map((url) => new URL(url).pathname).join(' ')}`,
        });
        const expected = Buffer.concat(pieces);
        assert.equal(await headOffset(final), expected.length);
        const stored = await cloud.sha256(`${prefix}${idOf(final)}`);
        assert.equal(stored.size, expected.length);
        assert.equal(stored.sha256, sha256(expected));
      });

      it('finishes a deferred-length upload when the last PATCH declares the length', async () => {
        const data = randomBytes(7 * unit + 3);
        const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': 1 });
        await sendChunks(url, data, [6 * unit]);
        const last = await patch(url, 6 * unit, data.subarray(6 * unit), {
          'Upload-Length': String(data.length),
        });
        assert.equal(last.status, 204);
        assert.equal((await cloud.sha256(`${prefix}${idOf(url)}`)).sha256, sha256(data));
      });

      it('stores an empty upload as an empty object', async () => {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 0 });
        assert.deepEqual(await cloud.sha256(`${prefix}${idOf(url)}`), {
          sha256: sha256(Buffer.alloc(0)),
          size: 0,
        });
      });

      it('continues an upload after a restart, and on a second process sharing the info folder', async () => {
        const data = randomBytes(13 * unit + 7);
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': data.length });
        const half = await sendChunks(url, data, [3 * unit, 4 * unit + 1]);
        // The first process goes away; a new one, with nothing of it in memory, takes the upload over.
        await wharf.stop();
        let other: WharfProcess;
        [wharf, other] = await Promise.all([startWharf({ args, dataDir }), startWharf({ args, dataDir })]);
        try {
          const restarted = new URL(new URL(url).pathname, wharf.origin).toString();
          assert.equal(await headOffset(restarted), half);
          const next = await sendChunks(restarted, data, [2 * unit], half);
          const elsewhere = new URL(new URL(url).pathname, other.origin).toString();
          assert.equal(await headOffset(elsewhere), next);
          await sendChunks(elsewhere, data, [data.length - next], next);
          assert.equal((await cloud.sha256(`${prefix}${idOf(url)}`)).sha256, sha256(data));
        } finally {
          await other.stop();
        }
      });

      it('expiration deletes what an abandoned upload stored', async () => {
        const expiring = await startWharf({
          args: [...args, '--upload-expiration', '1', '--expiration-sweep-interval', '1'],
        });
        try {
          const data = randomBytes(6 * unit + 3);
          const url = await createUpload(expiring.endpoint, { 'Upload-Length': 10 * unit });
          await sendChunks(url, data, [data.length]);
          assert.notDeepEqual(await storedFor(idOf(url)), [], 'something stored before');
          // Bounded by time, not by a count of tries: on a loaded machine each HEAD and listing takes longer.
          await eventually(
            async () =>
              (await send('HEAD', url, { headers: tusHeaders })).status === 404 ? true : undefined,
            'the expired upload to answer 404',
            60_000,
          );
          // The sweep may answer 404 while it is still deleting the stored objects, one by one.
          await eventually(
            async () => ((await storedFor(idOf(url))).length === 0 ? true : undefined),
            'the expired upload to leave nothing stored',
            60_000,
          );
          assert.deepEqual(await storedFor(idOf(url)), []);
        } finally {
          await expiring.stop();
        }
      });

      describe('instances sharing Redis (records and locks)', () => {
        // Two instances for both tests below: each test works on an upload of its own (its own record key).
        const keyPrefix = `wharf-${cloud.name}-${Date.now()}-${process.pid}:`;
        let first: WharfProcess;
        let second: WharfProcess;
        before(async () => {
          const shared = [
            ...args,
            '--info-storage',
            'redis-info-storage',
            '--info-db-dsn',
            redisUrl,
            '--redis-key-prefix',
            keyPrefix,
          ];
          [first, second] = await Promise.all([startWharf({ args: shared }), startWharf({ args: shared })]);
        });
        after(async () => {
          await first?.stop();
          await second?.stop();
        });

        it('take turns on one upload, and a tus-js-client resume', async () => {
          const data = randomBytes(17 * unit + 5);
          const url = await createUpload(first.endpoint, { 'Upload-Length': data.length });
          const path = new URL(url).pathname;
          let offset = 0;
          for (const [index, size] of [3 * unit, 6 * unit + 1, unit].entries()) {
            const instance = index % 2 === 0 ? first : second;
            offset = await sendChunks(new URL(path, instance.origin).toString(), data, [size], offset);
          }
          // tus-js-client asks the other instance where the upload stands and sends the rest.
          await new Promise<void>((resolve, reject) => {
            const task = new tus.Upload(data, {
              endpoint: second.endpoint,
              uploadUrl: new URL(path, second.origin).toString(),
              chunkSize: 5 * unit,
              retryDelays: [0, 200],
              onSuccess: () => resolve(),
              onError: reject,
            });
            task.start();
          });
          assert.equal((await cloud.sha256(`${prefix}${idOf(url)}`)).sha256, sha256(data));
        });

        it('a record Redis lost is rebuilt from the copy kept beside the bytes, and the upload continues', async () => {
          const redis = new Redis(redisUrl);
          try {
            const data = randomBytes(9 * unit + 3);
            const url = await createUpload(first.endpoint, { 'Upload-Length': data.length });
            const id = idOf(url);
            await sendChunks(url, data, [6 * unit + 1]);
            assert.ok((await cloud.names(`${prefix}.wharf-records/${id}`)).length === 1, 'the copy is kept');
            assert.equal(
              await redis.del(`${keyPrefix}info:${id}`),
              1,
              'the record was in Redis, and is gone',
            );
            assert.equal(await headOffset(url), 6 * unit + 1);
            await sendChunks(url, data, [data.length - (6 * unit + 1)], 6 * unit + 1);
            const download = await send('GET', url);
            assert.equal(sha256(download.body), sha256(data));
            await redis.del(`${keyPrefix}info:${id}`);
          } finally {
            redis.disconnect();
          }
        });
      });
    });
  }
});
