import type { UploadRecord } from './upload-record.ts';

/** Holds upload records. Writes are compare-and-set on the record's version. */
export interface InfoStore {
  prepare(): Promise<void>;
  get(id: string): Promise<UploadRecord | undefined>;
  /**
   * Stores the record. `expectedVersion` null means "create": it fails if the id exists. Otherwise the stored
   * version must equal it. On success the record's version is the stored one plus one.
   * Throws {@link InfoConflictError} when the expectation does not hold.
   */
  put(record: UploadRecord, expectedVersion: number | null): Promise<void>;
  remove(id: string): Promise<void>;
  /** Every record, for sweeps; order unspecified. */
  list(): AsyncIterable<UploadRecord>;
  /** Lets go of what the store holds between requests (open files); called once, after the last request. */
  close?(): Promise<void>;
}

export class InfoConflictError extends Error {
  readonly code = 'ERR_INFO_CONFLICT';
  constructor(id: string) {
    super(`upload ${id} was changed concurrently`);
    this.name = 'InfoConflictError';
  }
}
