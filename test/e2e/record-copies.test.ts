/**
 * Issue 17, point 14, through the real process: with redis-info-storage, a record Redis lost (its key deleted,
 * as a Redis restarted without persistence would) comes back from the copy kept beside the bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('redis-info-storage: a record Redis lost', () => {
  let wharf: WharfProcess;
  const redis = new Redis(redisUrl, { lazyConnect: true });
  const ids: string[] = [];

  before(async () => {
    await redis.connect();
    wharf = await startWharf({ args: ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl] });
  });
  after(async () => {
    if (ids.length > 0) await redis.del(...ids.map((id) => `wharf:info:${id}`));
    redis.disconnect();
    await wharf.stop();
  });

  it('is rebuilt from the copy beside the bytes: the upload resumes and downloads byte-exact', async () => {
    const content = randomBytes(256 * 1024);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': content.length });
    const id = url.slice(url.lastIndexOf('/') + 1);
    ids.push(id);
    const first = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: content.subarray(0, 100_000),
    });
    assert.equal(first.status, 204);
    assert.ok(existsSync(path.join(wharf.dataDir, '.wharf-records', `${id}.json`)), 'the copy is kept');
    assert.equal(await redis.del(`wharf:info:${id}`), 1, 'the record was in Redis, and is gone');

    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '100000');
    const rest = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 100_000 },
      body: content.subarray(100_000),
    });
    assert.equal(rest.status, 204);
    assert.equal(await redis.del(`wharf:info:${id}`), 1);
    const download = await send('GET', url);
    assert.equal(download.status, 200);
    assert.equal(sha256(download.body), sha256(content));
  });
});
