import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isValidUploadId } from '../uploads/ids.ts';
import type { UploadRecord } from '../uploads/upload.ts';
import { InfoConflictError, type InfoStore } from './info-store.ts';

const suffix = '.info';

export interface FileInfoStoreOptions {
  readonly fsync: boolean;
  /**
   * Records kept in memory (their JSON) when this process is the only writer of the folder (no `--workers`):
   * a PATCH then reads its record and checks its version without touching the disk. 0 turns it off; it must
   * be 0 when other processes write the same folder.
   */
  readonly cachedRecords?: number;
}

interface CachedRecord {
  readonly version: number;
  readonly json: string;
}

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
  /** The last record written or read per id, oldest first (evicted in that order); see cachedRecords. */
  readonly #cache = new Map<string, CachedRecord>();
  readonly #cacheLimit: number;

  constructor(directory: string, options: FileInfoStoreOptions = { fsync: true }) {
    this.#directory = path.resolve(directory);
    this.#fsync = options.fsync;
    this.#cacheLimit = options.cachedRecords ?? 0;
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
    const file = this.#file(id);
    const cached = this.#cache.get(id);
    // Parsed afresh on every get: callers own (and change) the record they are given.
    if (cached !== undefined) return JSON.parse(cached.json) as UploadRecord;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const record = JSON.parse(text) as UploadRecord;
    this.#remember(id, record.version, text);
    return record;
  }

  #remember(id: string, version: number, json: string): void {
    if (this.#cacheLimit === 0) return;
    this.#cache.delete(id);
    this.#cache.set(id, { version, json });
    if (this.#cache.size > this.#cacheLimit) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
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
    const currentVersion = this.#cache.get(record.id)?.version ?? (await this.get(record.id))?.version;
    if (expectedVersion === null ? currentVersion !== undefined : currentVersion !== expectedVersion) {
      throw new InfoConflictError(record.id);
    }
    const stored = { ...record, version: (currentVersion ?? 0) + 1 };
    const json = JSON.stringify(stored);
    const target = this.#file(record.id);
    const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(json);
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
    this.#remember(record.id, stored.version, json);
    record.version = stored.version;
  }

  async remove(id: string): Promise<void> {
    const file = this.#file(id);
    this.#cache.delete(id);
    await rm(file, { force: true });
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
