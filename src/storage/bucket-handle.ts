import { type Backend, withTimeout } from '../backends/backend.ts';
import { S3Bucket, type S3Connection } from './s3-bucket.ts';

/**
 * The bucket an S3-backed store works in: connected and checked by the store's `prepare()`, and the store's
 * backend for /health (5 s at most per check) and shutdown.
 */
export class BucketHandle implements Backend {
  readonly name = 's3';
  readonly #connection: S3Connection;
  /** Names the store in the error for use before `prepare()`. */
  readonly #storeName: string;
  #bucket: S3Bucket | undefined;

  constructor(connection: S3Connection, storeName: string) {
    this.#connection = connection;
    this.#storeName = storeName;
  }

  /** Connects once and fails with a clear error when the bucket cannot be used. */
  async connect(): Promise<void> {
    this.#bucket ??= await S3Bucket.connect(this.#connection);
    await this.#bucket.check();
  }

  get bucket(): S3Bucket {
    if (!this.#bucket) throw new Error(`${this.#storeName} used before prepare()`);
    return this.#bucket;
  }

  check(): Promise<void> {
    return withTimeout(this.bucket.check(), 5000, 'the S3 bucket did not answer within 5 s');
  }

  async close(): Promise<void> {
    this.#bucket?.close();
  }
}
