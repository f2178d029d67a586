import { InfoConflictError, type InfoStore } from '../info/info-store.ts';
import type { RecordCopyingDataStore } from '../storage/data-store.ts';
import { isComplete, type UploadRecord } from './upload.ts';

export interface RecordCopyOptions {
  /**
   * Which record store the copies belong to (a digest of its address and key prefix or schema): deployments that
   * share a data folder or bucket but not a record namespace never rebuild, or sweep, each other's uploads.
   */
  readonly owner: string;
  /** 0 = uploads never expire. */
  readonly expirationMs: number;
  readonly now: () => number;
  readonly logger: {
    warn(object: object, message: string): void;
    error(object: object, message: string): void;
  };
}

/**
 * The copy kept with the bytes: the record without what every PATCH changes (an unfinished upload's offset,
 * its expiry, the version), so a PATCH that only adds bytes does not rewrite it. `offset` is null until the
 * upload is complete.
 */
function copyOf(record: UploadRecord, owner: string): string {
  const kept = Object.fromEntries(
    Object.entries(record).filter(([key]) => key !== 'version' && key !== 'expiresAt' && key !== 'offset'),
  );
  return JSON.stringify({ ...kept, offset: isComplete(record) ? record.offset : null, copyOwner: owner });
}

type RecordCopy = Omit<UploadRecord, 'offset'> & { offset: number | null; copyOwner?: unknown };

/** The fields of a copy, checked enough that a damaged one is refused rather than served. */
function parseCopy(id: string, text: string): RecordCopy | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const copy = parsed as Partial<UploadRecord> & { offset?: unknown };
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    copy.id !== id ||
    typeof copy.path !== 'string' ||
    typeof copy.storage !== 'string' ||
    typeof copy.createdAt !== 'number' ||
    !(copy.length === null || typeof copy.length === 'number') ||
    !(copy.offset === null || typeof copy.offset === 'number')
  ) {
    return undefined;
  }
  return parsed as RecordCopy;
}

/**
 * The info store, with a copy of each record kept beside the upload's bytes (a DataStore capability), so that
 * a record store that loses its data (Redis or PostgreSQL back empty) loses no upload. The copy is written when
 * the record changes in a way the bytes cannot tell (creation, length, metadata, finish, failure, pending
 * finals), not on every PATCH; a missing record is rebuilt from it on first access, its offset read from the
 * stored bytes.
 */
export class RecordCopyingInfoStore implements InfoStore {
  readonly #inner: InfoStore;
  readonly #data: RecordCopyingDataStore;
  readonly #options: RecordCopyOptions;
  /** The copy as it was when each record object was read or written: a put writes it only when it changed. */
  readonly #copied = new WeakMap<UploadRecord, string>();

  constructor(inner: InfoStore, data: RecordCopyingDataStore, options: RecordCopyOptions) {
    this.#inner = inner;
    this.#data = data;
    this.#options = options;
  }

  prepare(): Promise<void> {
    return this.#inner.prepare();
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const record = (await this.#inner.get(id)) ?? (await this.#rebuild(id));
    // A record an older Wharf wrote has no copy yet: it gets one when it next changes beyond its offset.
    if (record) this.#copied.set(record, copyOf(record, this.#options.owner));
    return record;
  }

  async put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    await this.#inner.put(record, expectedVersion);
    const copy = copyOf(record, this.#options.owner);
    if (this.#copied.get(record) === copy) return;
    try {
      await this.#data.writeRecordCopy(record.id, copy);
      this.#copied.set(record, copy);
    } catch (error) {
      // The record is written, which is what the request needs; the copy only guards against losing it.
      this.#options.logger.error(
        { err: error, id: record.id },
        'writing the copy of an upload record failed',
      );
    }
  }

  /** The copy goes first: a removal cut in between leaves a record to remove again, never a copy to revive. */
  async remove(id: string): Promise<void> {
    await this.#data.removeRecordCopy(id);
    await this.#inner.remove(id);
  }

  list(): AsyncIterable<UploadRecord> {
    return this.#inner.list();
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }

  /**
   * Where upload `id`'s bytes are, when its copy was written by another record store (a deployment sharing this
   * folder or bucket with its own Redis prefix, PostgreSQL schema or server): they are that deployment's to keep.
   * Undefined for our own uploads and for ids without a readable copy.
   */
  async foreignPath(id: string): Promise<string | undefined> {
    const text = await this.#data.readRecordCopy(id);
    if (text === undefined) return undefined;
    const copy = parseCopy(id, text);
    if (copy === undefined || copy.copyOwner === undefined || copy.copyOwner === this.#options.owner) {
      return undefined;
    }
    return copy.path;
  }

  /**
   * The record from its copy, stored again. An unfinished upload's offset is what its storage holds; one that
   * holds every byte resumes one byte short, so that the last chunk's request runs again and finishes it
   * (pre-finish and post-finish included: the copy cannot tell whether they ran). Expiry restarts from the last
   * change of the bytes.
   */
  async #rebuild(id: string): Promise<UploadRecord | undefined> {
    const text = await this.#data.readRecordCopy(id);
    if (text === undefined) return undefined;
    const copy = parseCopy(id, text);
    if (copy === undefined) {
      this.#options.logger.warn(
        { id },
        'the copy of an upload record is unreadable; the upload is not rebuilt',
      );
      return undefined;
    }
    // Another deployment's upload (same folder or bucket, another record store): not ours to bring back.
    if (copy.copyOwner !== undefined && copy.copyOwner !== this.#options.owner) return undefined;
    const stored = await this.#data.stored(copy.path);
    if (stored === undefined) return undefined;
    const { expirationMs, now } = this.#options;
    let offset: number;
    let expiresAt: number | null = null;
    if (copy.offset !== null) {
      offset = copy.offset;
    } else {
      offset = copy.length === null ? stored.length : Math.min(stored.length, Math.max(0, copy.length - 1));
      if (expirationMs > 0) expiresAt = (stored.modifiedAt ?? copy.createdAt) + expirationMs;
    }
    const { copyOwner: _owner, ...fields } = copy;
    const record: UploadRecord = { ...fields, offset, expiresAt, version: 0 };
    try {
      await this.#inner.put(record, null);
    } catch (error) {
      // Another request rebuilt it first.
      if (error instanceof InfoConflictError) return this.#inner.get(id);
      throw error;
    }
    this.#options.logger.warn(
      { id, offset, length: record.length, at: now() },
      'upload record rebuilt from the copy kept with its bytes (the record store had lost it)',
    );
    return record;
  }
}
