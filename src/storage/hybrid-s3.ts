import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { BucketHandle } from './bucket-handle.ts';
import type {
  AppendResult,
  ByteRange,
  ConcatenatingDataStore,
  FinishingDataStore,
  NewUploadPlacement,
} from './data-store.ts';
import type { FileDataStore } from './file.ts';
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
}

/**
 * rustus's hybrid-s3: chunks go to local files; the PATCH that completes an upload sends the whole file to
 * the bucket (key = the upload's location) and removes the local copy. Finished uploads live only in S3.
 */
export class HybridS3DataStore implements ConcatenatingDataStore, FinishingDataStore {
  /** rustus records hybrid-s3 uploads as `s3_storage`. */
  readonly name = 's3_storage';
  readonly #local: FileDataStore;
  readonly #options: HybridS3DataStoreOptions;
  readonly #tuning: PartTuning;

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
