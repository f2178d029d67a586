import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { WharfError } from '../../../src/errors.ts';
import { FileInfoStore } from '../../../src/info/file.ts';
import type { UploadRecord } from '../../../src/info/upload-record.ts';
import { MemoryLocker } from '../../../src/locks/memory.ts';
import { FileDataStore } from '../../../src/storage/file.ts';
import { BodyMeter } from '../../../src/uploads/body-meter.ts';
import { silentObserver } from '../../../src/uploads/events.ts';
import { UploadService, type WriteRequest } from '../../../src/uploads/service.ts';

/** The file info store, whose next `put` of an offset above `failAbove` fails as on a full disk. */
class FillingInfoStore extends FileInfoStore {
  failAbove = Number.POSITIVE_INFINITY;

  override async put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    if (record.offset > this.failAbove) {
      this.failAbove = Number.POSITIVE_INFINITY;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    return super.put(record, expectedVersion);
  }
}

const describeRequest = () => ({ uri: '/files', method: 'PATCH', remoteAddr: null, headers: {} });

function patch(offset: number, body: string, declaredLength?: number): WriteRequest {
  return {
    offset,
    declaredLength,
    contentLength: Buffer.byteLength(body),
    checksum: undefined,
    describeRequest,
    openBody: (limit) => {
      const meter = new BodyMeter({ limit, limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED') });
      meter.drawFrom(Readable.from([Buffer.from(body)]));
      return meter;
    },
  };
}

test('a record write refused for lack of space answers 507 with the recorded offset; the bytes past it are never kept', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-record-full-'));
  const info = new FillingInfoStore(directory, { fsync: false, cachedRecords: 100 });
  const data = new FileDataStore({ directory, dirStructure: '', fsync: false, env: {}, idleFiles: 8 });
  const service = new UploadService({
    dataStore: data,
    infoStore: info,
    locker: new MemoryLocker(),
    observer: silentObserver,
    maxFileSize: 0,
    maxBodySize: 0,
    allowEmpty: true,
    removeParts: false,
    expirationMs: 0,
    lockTimeoutMs: 5_000,
    allowUnfinishedConcatenation: false,
    logger: { warn: () => undefined, error: () => undefined },
  });
  try {
    await service.prepare();
    const upload = await service.create({
      length: null,
      deferLength: true,
      metadataHeader: null,
      metadata: {},
      concat: undefined,
      describeRequest,
    });
    const file = data.describe(upload.path);
    assert.equal((await service.write(upload.id, patch(0, 'hello '))).upload.offset, 6);

    info.failAbove = 6;
    const refused = await service.write(upload.id, patch(6, '<script>alert(1)</script>')).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof WharfError, 'the write is refused');
    assert.equal(refused.code, 'ERR_STORAGE_FULL');
    assert.equal(refused.status, 507);
    assert.equal(refused.headers['Upload-Offset'], '6');
    // The bytes reached the file; the record did not move.
    assert.equal(await readFile(file, 'utf8'), 'hello <script>alert(1)</script>');
    assert.equal((await service.get(upload.id)).offset, 6);

    // Finished at the recorded offset: the file is exactly the upload.
    const finished = await service.write(upload.id, patch(6, '', 6));
    assert.equal(finished.upload.offset, 6);
    assert.equal(finished.upload.length, 6);
    assert.equal(await readFile(file, 'utf8'), 'hello ');
  } finally {
    await service.close();
    await rm(directory, { recursive: true, force: true });
  }
});
