import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { BucketHandle } from './bucket-handle.ts';
import type {
  AppendResult,
  ByteRange,
  ConcatenatingDataStore,
  FinishingDataStore,
  NewUploadPlacement,
  RecordCopyingDataStore,
  StoredData,
} from './data-store.ts';
import { fixedDirPrefix, layoutPattern } from './dir-structure.ts';
import type { FileDataStore } from './file.ts';
import { RecordCopyObjects, s3RecordBucket } from './record-copy-objects.ts';
import type { S3Bucket, S3Connection } from './s3-bucket.ts';
import { concatenateObjects, type PartTuning, uploadFile } from './s3-objects.ts';

export interface HybridS3DataStoreOptions {
  /** Holds the chunks of unfinished uploads (a folder every instance shares, as in rustus). */
  readonly local: FileDataStore;
  readonly connection: S3Connection;
  readonly partSize: number;
  readonly partConcurrency: number;
  readonly concatConcurrency: number;
  readonly bufferDir: string | undefined;
  /** The local store's --dir-structure: the sweep looks for finished objects where it puts them ('' by default). */
  readonly dirStructure?: string;
}

/**
 * rustus's hybrid-s3: chunks go to local files; the PATCH that completes an upload sends the whole file to
 * the bucket (key = the upload's location) and removes the local copy. Finished uploads live only in S3.
 */
export class HybridS3DataStore implements ConcatenatingDataStore, FinishingDataStore, RecordCopyingDataStore {
  /** rustus records hybrid-s3 uploads as `s3_storage`. */
  readonly name = 's3_storage';
  readonly #local: FileDataStore;
  readonly #options: HybridS3DataStoreOptions;
  readonly #tuning: PartTuning;
  /** Kept in the bucket, where the upload ends up, whichever instance's folder holds it meanwhile. */
  readonly #copies = new RecordCopyObjects(s3RecordBucket(() => this.#bucket));

  constructor(options: HybridS3DataStoreOptions) {
    this.#options = options;
    this.backend = new BucketHandle(options.connection, 'hybrid-s3 storage');
    this.#local = options.local;
    this.#tuning = {
      partSize: options.partSize,
      concurrency: options.partConcurrency,
      bufferDir: options.bufferDir ?? tmpdir(),
    };
  }

  /** The bucket, and the store's backend: /health reports it and shutdown closes its connections. */
  readonly backend: BucketHandle;

  get #bucket(): S3Bucket {
    return this.backend.bucket;
  }

  async prepare(): Promise<void> {
    await this.#local.prepare();
    await this.backend.connect();
  }

  create(placement: NewUploadPlacement): Promise<string> {
    return this.#local.create(placement);
  }

  append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    return this.#local.append(location, offset, source);
  }

  truncate(location: string, length: number): Promise<void> {
    return this.#local.truncate(location, length);
  }

  /** Closes the local files held open (the bucket's connections close with its backend). */
  close(): Promise<void> {
    return this.#local.close();
  }

  /** The S3 key, as rustus reports it in hooks (without rustus's leading slash). */
  describe(location: string): string {
    return location;
  }

  async finish(location: string, length: number): Promise<void> {
    // A retry after the file was sent (and maybe removed): only the local copy is left to go.
    if (!(await this.isFinished(location, length))) {
      await uploadFile(this.#bucket, location, this.#local.describe(location), length, this.#tuning);
    }
    await this.#local.remove(location);
  }

  /** The object exists in the bucket only once the whole file was sent (one PUT, or a completed multipart). */
  async isFinished(location: string, length: number): Promise<boolean> {
    return (await this.#bucket.size(location)) === length;
  }

  /** The local file while unfinished, then the object. */
  async stored(location: string): Promise<StoredData | undefined> {
    const local = await this.#local.stored(location);
    if (local) return local;
    const object = await this.#bucket.stat(location);
    return object ? { length: object.size, modifiedAt: object.lastModified } : undefined;
  }

  async *storedLocations(): AsyncIterable<{ location: string; modifiedAt: number }> {
    yield* this.#local.storedLocations();
    const prefix = fixedDirPrefix(this.#options.dirStructure ?? '');
    const { pattern } = layoutPattern(this.#options.dirStructure ?? '');
    const under = prefix === '' ? '' : `${prefix}/`;
    for await (const object of this.#bucket.list(under)) {
      if (!object.key.startsWith('.wharf-') && pattern.test(object.key)) {
        yield { location: object.key, modifiedAt: object.lastModified };
      }
    }
    for await (const upload of this.#bucket.multipartUploadsUnder(under)) {
      if (pattern.test(upload.key)) yield { location: upload.key, modifiedAt: upload.initiated };
    }
  }

  writeRecordCopy(id: string, copy: string): Promise<void> {
    return this.#copies.write(id, copy);
  }

  readRecordCopy(id: string): Promise<string | undefined> {
    return this.#copies.read(id);
  }

  removeRecordCopy(id: string): Promise<void> {
    return this.#copies.remove(id);
  }

  recordCopies(): AsyncIterable<string> {
    return this.#copies.ids();
  }

  /** Only finished uploads are downloadable, and those are in the bucket. */
  read(location: string, range?: ByteRange): Promise<Readable> {
    return this.#bucket.read(location, range);
  }

  async remove(location: string): Promise<void> {
    await this.#local.remove(location);
    for (const uploadId of await this.#bucket.multipartUploads(location)) {
      await this.#bucket.abortMultipart(location, uploadId);
    }
    await this.#bucket.remove(location);
  }

  /** Parts are finished, so they are in the bucket: the final is built there, and its empty local file goes. */
  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    await concatenateObjects(
      this.#bucket,
      target,
      sources.map((source) => ({ key: source.location, length: source.length })),
      { ...this.#tuning, concurrency: this.#options.concatConcurrency },
    );
    await this.#local.remove(target);
  }
}
