/**
 * Issue 17, point 14: a record store that comes back with its data wiped (Redis restarted without
 * persistence) lost every record: in-flight uploads answered 404 for good, finished ones 404 while their bytes
 * were intact, and their data was never removed. A copy of each record is now kept beside its bytes. The wipe
 * is simulated by deleting this test's own key prefix in the shared Redis (never FLUSHALL).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { configFromOptions } from '../../../src/config/load.ts';
import { PostgresInfoStore } from '../../../src/info/postgres.ts';
import { RedisInfoStore } from '../../../src/info/redis.ts';
import { MemoryLocker } from '../../../src/locks/memory.ts';
import type { DataStore } from '../../../src/storage/data-store.ts';
import { FileDataStore } from '../../../src/storage/file.ts';
import { HybridS3DataStore } from '../../../src/storage/hybrid-s3.ts';
import { S3DataStore } from '../../../src/storage/s3.ts';
import { createTusRequestHandler } from '../../../src/tus/handler.ts';
import { silentObserver } from '../../../src/uploads/events.ts';
import { UploadService } from '../../../src/uploads/service.ts';
import { createUpload, octets, send, tus } from '../../support/http.ts';
import {
  s3Connection as connection,
  listKeys,
  removeObjects,
  s3,
  s3Bucket,
  s3Unavailable,
} from '../../support/s3.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';

const MiB = 1024 * 1024;
const hour = 3_600_000;
const quiet = { warn: () => undefined, error: () => undefined, info: () => undefined };
const tuning = { partSize: 5 * MiB, partConcurrency: 2, concatConcurrency: 2, bufferDir: undefined };

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

type Kind = 'file' | 's3' | 'hybrid-s3';

const idOf = (url: string): string => url.slice(url.lastIndexOf('/') + 1);

/** An in-process Wharf on real Redis (its own key prefix) and a real data store, served on a free port. */
class Harness {
  readonly kind: Kind;
  /** PostgreSQL: the shared table; only this test's rows are deleted (and the sweep is not run there). */
  readonly records: 'redis' | 'postgres';
  readonly postgres = new PostgresBackend(postgresUrl);
  readonly folder = `record-copies-${randomUUID()}`;
  readonly keyPrefix = `wharf-test-${randomUUID()}:`;
  /** The record store the copies belong to (compose.ts derives it from the store's address and prefix). */
  readonly owner = `deployment-${randomUUID()}`;
  readonly backend = new RedisBackend(redisUrl);
  root = '';
  data!: DataStore;
  service!: UploadService;
  endpoint = '';
  /** The sweep's clock: moved forward to make data old. */
  clock = 0;
  /** Every upload created, whose record copies the bucket keeps until the end. */
  readonly ids: string[] = [];
  #server: Server | undefined;

  async create(headers: Record<string, string | number>): Promise<string> {
    const url = await createUpload(this.endpoint, headers);
    this.ids.push(idOf(url));
    return url;
  }

  constructor(kind: Kind, records: 'redis' | 'postgres' = 'redis') {
    this.kind = kind;
    this.records = records;
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(path.join(tmpdir(), 'wharf-record-copies-'));
    const files = new FileDataStore({
      directory: this.root,
      dirStructure: this.folder,
      fsync: false,
      env: {},
    });
    this.data =
      this.kind === 'file'
        ? files
        : this.kind === 's3'
          ? new S3DataStore({ connection, ...tuning, dirStructure: this.folder, env: {} })
          : new HybridS3DataStore({ connection, ...tuning, local: files, dirStructure: this.folder });
    this.service = new UploadService({
      dataStore: this.data,
      infoStore:
        this.records === 'redis'
          ? new RedisInfoStore(this.backend, { expirationSeconds: 0, keyPrefix: this.keyPrefix })
          : new PostgresInfoStore(this.postgres),
      locker: new MemoryLocker(),
      observer: silentObserver,
      maxFileSize: 0,
      maxBodySize: 0,
      allowEmpty: true,
      removeParts: false,
      expirationMs: hour,
      lockTimeoutMs: 5_000,
      allowUnfinishedConcatenation: false,
      recordCopyOwner: this.owner,
      logger: quiet,
      now: () => Date.now() + this.clock,
    });
    await this.service.prepare();
    const settings = configFromOptions({ url: '/files', dataDir: this.root });
    const handler = createTusRequestHandler({
      settings,
      service: this.service,
      shutdown: new AbortController().signal,
      logger: quiet,
    });
    const server = createServer((req, res) => void handler(req, res));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/files/`;
  }

  /** What a Redis that restarted empty shows: none of this test's records. */
  async wipeRecords(): Promise<void> {
    if (this.records === 'postgres') {
      const pool = await this.postgres.pool();
      const { rowCount } = await pool.query('DELETE FROM wharf_uploads WHERE id = ANY($1)', [this.ids]);
      assert.ok((rowCount ?? 0) > 0, 'there were records to lose');
      return;
    }
    const client = await this.backend.client();
    const keys = await client.keys(`${this.keyPrefix}*`);
    assert.ok(keys.length > 0, 'there were records to lose');
    await client.del(...keys);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    const client = await this.backend.client();
    const keys = await client.keys(`${this.keyPrefix}*`);
    if (keys.length > 0) await client.del(...keys);
    if (this.records === 'postgres') {
      const pool = await this.postgres.pool();
      await pool.query('DELETE FROM wharf_uploads WHERE id = ANY($1)', [this.ids]);
    }
    await this.service.close();
    await this.backend.close();
    await this.postgres.close();
    if (this.kind !== 'file') {
      await removeObjects(`${this.folder}/`);
      await removeObjects(`.wharf-tails/${this.folder}/`);
      for (const id of this.ids) await removeObjects(`.wharf-records/${id}.json`);
    }
    await rm(this.root, { recursive: true, force: true });
  }
}

async function patch(url: string, offset: number, body: Buffer): Promise<void> {
  const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset }, body });
  assert.equal(reply.status, 204, reply.text);
}

for (const kind of ['file', 's3', 'hybrid-s3'] as const) {
  describe(`${kind}: the record store loses its data`, {
    skip: kind === 'file' ? false : await s3Unavailable(),
  }, () => {
    const harness = new Harness(kind);
    before(() => harness.start());
    after(() => harness.stop());

    it('an upload in flight resumes from the bytes it stored and finishes byte-exact', async () => {
      // A full S3 part and a tail, then more: the offset is read back from the parts and the tail.
      const content = randomBytes(5 * MiB + 700 * 1024);
      const first = 5 * MiB + 300 * 1024;
      const url = await harness.create({
        'Upload-Length': content.length,
        'Upload-Metadata': `filename ${Buffer.from('report.pdf').toString('base64')}`,
      });
      await patch(url, 0, content.subarray(0, first));
      await harness.wipeRecords();

      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 200);
      // What the storage holds: every byte sent; with s3, under a loaded shared MinIO, the listing once showed
      // the full part without its tail (seen once in the whole suite, never alone). A client resumes from either,
      // and the sha256 below proves the bytes.
      const resumeAt = Number(head.headers['upload-offset']);
      assert.ok(resumeAt === first || (kind === 's3' && resumeAt === 5 * MiB), `offset ${resumeAt}`);
      assert.equal(head.headers['upload-length'], String(content.length));
      assert.equal(
        head.headers['upload-metadata'],
        `filename ${Buffer.from('report.pdf').toString('base64')}`,
      );
      await patch(url, resumeAt, content.subarray(resumeAt));
      const download = await send('GET', url);
      assert.equal(download.status, 200);
      assert.equal(sha256(download.body), sha256(content));
    });

    it('a finished upload still downloads byte-exact, and HEAD shows it complete', async () => {
      const content = randomBytes(300 * 1024);
      const url = await harness.create({ 'Upload-Length': content.length });
      await patch(url, 0, content);
      await harness.wipeRecords();

      const download = await send('GET', url);
      assert.equal(download.status, 200);
      assert.equal(sha256(download.body), sha256(content));
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.headers['upload-offset'], String(content.length));
    });

    it('another deployment sharing the folder or bucket neither rebuilds nor sweeps its uploads', async () => {
      const url = await harness.create({ 'Upload-Length': 3 });
      await patch(url, 0, Buffer.from('abc'));
      const otherPrefix = `wharf-test-${randomUUID()}:`;
      const other = new UploadService({
        dataStore: harness.data,
        infoStore: new RedisInfoStore(harness.backend, { expirationSeconds: 0, keyPrefix: otherPrefix }),
        locker: new MemoryLocker(),
        observer: silentObserver,
        maxFileSize: 0,
        maxBodySize: 0,
        allowEmpty: true,
        removeParts: false,
        expirationMs: hour,
        lockTimeoutMs: 5_000,
        allowUnfinishedConcatenation: false,
        recordCopyOwner: `deployment-${randomUUID()}`,
        logger: quiet,
        now: () => Date.now() + 2 * hour,
      });
      try {
        await assert.rejects(other.get(idOf(url)), /upload not found/);
        await other.sweepExpired();
        // Positive control: the deployment that owns it still has it whole, record, copy and bytes.
        const download = await send('GET', url);
        assert.equal(download.status, 200);
        assert.equal(download.text, 'abc');
        assert.notEqual(await (harness.data as S3DataStore).readRecordCopy(idOf(url)), undefined);
        await harness.wipeRecords();
        assert.equal(
          (await send('GET', url)).text,
          'abc',
          'its own deployment still rebuilds it from the copy',
        );
      } finally {
        const client = await harness.backend.client();
        const keys = await client.keys(`${otherPrefix}*`);
        if (keys.length > 0) await client.del(...keys);
      }
    });

    it('an upload whose record and copy are both gone answers 404, and its removal removes its copy', async () => {
      const url = await harness.create({ 'Upload-Length': 10 });
      await patch(url, 0, Buffer.from('01234'));
      const removed = await send('DELETE', url, { headers: tus });
      assert.equal(removed.status, 204);
      await harness.wipeRecords().catch(() => undefined);
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 404);
      assert.equal(await (harness.data as S3DataStore).readRecordCopy(idOf(url)), undefined);
    });

    it('the expiration sweep removes old data no record or copy names, and keeps the rest', async () => {
      // Recorded, finished: kept.
      const kept = await harness.create({ 'Upload-Length': 3 });
      await patch(kept, 0, Buffer.from('abc'));
      // Data whose record and copy are gone (a Wharf that kept no copies, or a copy lost with it).
      const orphanId = randomUUID();
      const orphan = `${harness.folder}/${orphanId}`;
      if (kind === 's3') {
        await s3.send(new PutObjectCommand({ Bucket: s3Bucket, Key: orphan, Body: Buffer.from('stray') }));
      } else {
        await mkdir(path.join(harness.root, harness.folder), { recursive: true });
        await writeFile(path.join(harness.root, orphan), 'stray');
      }
      const orphanExists = async (): Promise<boolean> =>
        kind === 's3'
          ? (await listKeys(orphan)).includes(orphan)
          : existsSync(path.join(harness.root, orphan));

      // Fresh data is never taken for abandoned: a creation in progress looks the same for a moment.
      harness.clock = 0;
      assert.equal(await harness.service.sweepExpired(), 0);
      assert.equal(await orphanExists(), true);

      harness.clock = 2 * hour;
      assert.ok((await harness.service.sweepExpired()) >= 1);
      assert.equal(await orphanExists(), false);
      const download = await send('GET', kept);
      assert.equal(download.status, 200);
      assert.equal(download.text, 'abc');
      harness.clock = 0;
    });

    it('the sweep brings back the record of an abandoned upload from its copy, then expires it', async () => {
      const url = await harness.create({ 'Upload-Length': 100 });
      await patch(url, 0, Buffer.alloc(40, 1));
      await harness.wipeRecords();
      harness.clock = 2 * hour;
      await harness.service.sweepExpired();
      await harness.service.sweepExpired();
      harness.clock = 0;
      assert.equal(await (harness.data as S3DataStore).readRecordCopy(idOf(url)), undefined);
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 404);
      // Its bytes are gone too.
      const location = `${harness.folder}/${idOf(url)}`;
      if (kind === 's3') assert.deepEqual(await listKeys(`.wharf-tails/${location}/`), []);
      else assert.equal(existsSync(path.join(harness.root, location)), false);
    });
  });
}

describe('file storage with db-info-storage: PostgreSQL loses the records', () => {
  const harness = new Harness('file', 'postgres');
  before(() => harness.start());
  after(() => harness.stop());

  it('an upload in flight resumes, a finished one downloads, both byte-exact', async () => {
    const finished = randomBytes(100 * 1024);
    const done = await harness.create({ 'Upload-Length': finished.length });
    await patch(done, 0, finished);
    const content = randomBytes(300 * 1024);
    const url = await harness.create({ 'Upload-Length': content.length });
    await patch(url, 0, content.subarray(0, 123_456));
    await harness.wipeRecords();

    assert.equal(sha256((await send('GET', done)).body), sha256(finished));
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-offset'], '123456');
    await patch(url, 123_456, content.subarray(123_456));
    const download = await send('GET', url);
    assert.equal(download.status, 200);
    assert.equal(sha256(download.body), sha256(content));
  });
});
