import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isValidUploadId } from '../uploads/ids.ts';
import type { UploadRecord } from '../uploads/upload.ts';
import { InfoConflictError, type InfoStore } from './info-store.ts';

const suffix = '.info';

/**
 * Upload records as `<id>.info` JSON files, each write atomic (temp file, rename): a reader sees the old record
 * or the new one, never a torn one. The temp file is fsynced before the rename when upload bytes are fsynced
 * too (--force-fsync): a record must never be more durable than the bytes it describes, or after a power
 * loss it would claim bytes the disk does not hold.
 */
export class FileInfoStore implements InfoStore {
  readonly #directory: string;
  readonly #fsync: boolean;
  /** Tail of the chain of writes per id: compare-and-set is read, compare, rename, so writes queue. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(directory: string, options: { fsync: boolean } = { fsync: true }) {
    this.#directory = path.resolve(directory);
    this.#fsync = options.fsync;
  }

  async prepare(): Promise<void> {
    await mkdir(this.#directory, { recursive: true });
  }

  #file(id: string): string {
    // Ids are validated by uploads/ already; checking again here keeps this store safe on its own.
    if (!isValidUploadId(id)) throw new Error(`invalid upload id: ${JSON.stringify(id)}`);
    return path.join(this.#directory, id + suffix);
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return JSON.parse(text) as UploadRecord;
  }

  /**
   * Compare-and-set, atomic among the writers of this process. Processes sharing the folder (cluster
   * workers) are kept apart by the upload lock, which every writer holds.
   */
  put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    const previous = this.#writes.get(record.id) ?? Promise.resolve();
    const write = previous.then(() => this.#put(record, expectedVersion));
    const tail = write.catch(() => undefined);
    this.#writes.set(record.id, tail);
    void tail.then(() => {
      if (this.#writes.get(record.id) === tail) this.#writes.delete(record.id);
    });
    return write;
  }

  async #put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    const current = await this.get(record.id);
    if (expectedVersion === null ? current !== undefined : current?.version !== expectedVersion) {
      throw new InfoConflictError(record.id);
    }
    const stored = { ...record, version: (current?.version ?? 0) + 1 };
    const target = this.#file(record.id);
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(JSON.stringify(stored));
      if (this.#fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    record.version = stored.version;
  }

  async remove(id: string): Promise<void> {
    await rm(this.#file(id), { force: true });
  }

  async *list(): AsyncIterable<UploadRecord> {
    const names = await readdir(this.#directory);
    for (const name of names) {
      if (!name.endsWith(suffix)) continue;
      const record = await this.get(name.slice(0, -suffix.length)).catch(() => undefined);
      if (record) yield record;
    }
  }
}
