import type { S3Bucket } from './s3-bucket.ts';

/** Where S3-backed stores keep record copies: a folder of the bucket no upload key can be in. */
const recordCopyPrefix = '.wharf-records/';

/** Record copies as objects `.wharf-records/<id>.json`, each put whole. */
export class RecordCopyObjects {
  readonly #bucket: () => S3Bucket;

  constructor(bucket: () => S3Bucket) {
    this.#bucket = bucket;
  }

  #key(id: string): string {
    if (id.includes('/') || id.startsWith('.')) throw new Error(`invalid upload id: ${id}`);
    return `${recordCopyPrefix}${id}.json`;
  }

  async write(id: string, copy: string): Promise<void> {
    await this.#bucket().putBytes(this.#key(id), Buffer.from(copy, 'utf8'));
  }

  async read(id: string): Promise<string | undefined> {
    return (await this.#bucket().readSmall(this.#key(id)))?.toString('utf8');
  }

  async remove(id: string): Promise<void> {
    await this.#bucket().remove(this.#key(id));
  }

  async *ids(): AsyncIterable<string> {
    for await (const object of this.#bucket().list(recordCopyPrefix)) {
      const name = object.key.slice(recordCopyPrefix.length);
      if (name.endsWith('.json') && !name.includes('/')) yield name.slice(0, -'.json'.length);
    }
  }
}
