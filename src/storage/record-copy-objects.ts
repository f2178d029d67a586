import type { AzureContainer } from './azure-container.ts';
import type { GcsBucket } from './gcs-bucket.ts';
import type { S3Bucket } from './s3-bucket.ts';

/** Where object stores keep record copies, under their prefix: a folder no upload location can be in. */
const recordCopyFolder = '.wharf-records/';

/** What record copies need of a bucket or container: small objects put and read whole, and names by prefix. */
export interface RecordCopyBucket {
  putBytes(name: string, bytes: Buffer): Promise<void>;
  readSmall(name: string): Promise<Buffer | undefined>;
  remove(name: string): Promise<void>;
  names(prefix: string): AsyncIterable<string>;
}

/** Record copies as objects `<prefix>.wharf-records/<id>.json`, each put whole. */
export class RecordCopyObjects {
  readonly #bucket: RecordCopyBucket;
  readonly #folder: string;

  constructor(bucket: RecordCopyBucket, prefix = '') {
    this.#bucket = bucket;
    this.#folder = `${prefix}${recordCopyFolder}`;
  }

  #name(id: string): string {
    if (id.includes('/') || id.startsWith('.')) throw new Error(`invalid upload id: ${id}`);
    return `${this.#folder}${id}.json`;
  }

  async write(id: string, copy: string): Promise<void> {
    await this.#bucket.putBytes(this.#name(id), Buffer.from(copy, 'utf8'));
  }

  async read(id: string): Promise<string | undefined> {
    return (await this.#bucket.readSmall(this.#name(id)))?.toString('utf8');
  }

  async remove(id: string): Promise<void> {
    await this.#bucket.remove(this.#name(id));
  }

  async *ids(): AsyncIterable<string> {
    for await (const object of this.#bucket.names(this.#folder)) {
      const name = object.slice(this.#folder.length);
      if (name.endsWith('.json') && !name.includes('/')) yield name.slice(0, -'.json'.length);
    }
  }
}

/** An S3 bucket, looked up on each use (the stores connect it in prepare()). */
export function s3RecordBucket(bucket: () => S3Bucket): RecordCopyBucket {
  return {
    putBytes: (name, bytes) => bucket().putBytes(name, bytes),
    readSmall: (name) => bucket().readSmall(name),
    remove: (name) => bucket().remove(name),
    async *names(prefix) {
      for await (const object of bucket().list(prefix)) yield object.key;
    },
  };
}

export function gcsRecordBucket(bucket: GcsBucket): RecordCopyBucket {
  return {
    putBytes: (name, bytes) => bucket.putBytes(name, bytes),
    readSmall: (name) => bucket.readSmall(name),
    remove: (name) => bucket.remove(name),
    async *names(prefix) {
      for (const object of await bucket.list(prefix)) yield object.name;
    },
  };
}

export function azureRecordBucket(container: AzureContainer): RecordCopyBucket {
  return {
    putBytes: (name, bytes) => container.putBytes(name, bytes),
    readSmall: (name) => container.readSmall(name),
    remove: (name) => container.removeBlob(name),
    async *names(prefix) {
      for await (const blob of container.list(prefix)) yield blob.name;
    },
  };
}
