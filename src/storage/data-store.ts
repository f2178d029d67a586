import type { Readable } from 'node:stream';

/** What a DataStore needs to know to place a new upload. */
export interface NewUploadPlacement {
  readonly id: string;
  /** Unix milliseconds, used by time-based folder layouts. */
  readonly createdAt: number;
  /** A relative location chosen by a hook (already validated), used instead of the store's own layout. */
  readonly location?: string;
}

export interface AppendResult {
  /** Bytes durably handed to storage by this call, counted from the offset it was given. */
  readonly bytesWritten: number;
  /** Why the source stopped early (client gone, lock takeover, limit); undefined when it ended normally. */
  readonly error?: unknown;
}

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

/** Moves bytes. It never decides offsets or lengths: the caller (uploads/) owns the record. */
export interface DataStore {
  /** The name recorded with every upload (`file_storage`), as rustus names its storages. */
  readonly name: string;
  /** Prepares the backing storage (folders, buckets). Called once at start-up. */
  prepare(): Promise<void>;
  /** Creates empty storage for an upload and returns its location (relative to the store). */
  create(placement: NewUploadPlacement): Promise<string>;
  /**
   * Streams `source` into the upload starting at `offset`, with backpressure, until it ends or fails.
   * Never throws for a source failure: it reports the bytes written and the error.
   *
   * Anything stored past `offset` is discarded first, even when the source is empty: the caller's record is
   * the truth, and bytes past it (a write that failed, a record write that failed after the bytes were
   * stored, a process killed mid-request) must never end up in the upload.
   */
  append(location: string, offset: number, source: Readable): Promise<AppendResult>;
  /** Cuts the stored bytes back to `length` (discards a rejected chunk). */
  truncate(location: string, length: number): Promise<void>;
  /** A stream of the stored bytes, whole or one inclusive range. */
  read(location: string, range?: ByteRange): Promise<Readable>;
  /** Removes the upload's bytes; a missing upload is not an error. */
  remove(location: string): Promise<void>;
  /** What hooks see as the upload's `path` (absolute file path, object key). */
  describe(location: string): string;
  /** Lets go of what the store holds between requests (open files); called once, after the last request. */
  close?(): Promise<void>;
}

/** Optional capability: build an upload from others, server-side. */
export interface ConcatenatingDataStore extends DataStore {
  concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void>;
}

export function canConcatenate(store: DataStore): store is ConcatenatingDataStore {
  return typeof (store as Partial<ConcatenatingDataStore>).concatenate === 'function';
}

/**
 * Optional capability: a store that must seal an upload once its last byte is stored (S3 completes the
 * multipart upload; hybrid-s3 sends the file to the bucket). Called before the record says "complete".
 * The sealed object holds exactly `length` bytes: anything stored past it is discarded.
 */
export interface FinishingDataStore extends DataStore {
  /**
   * Seals the upload. Safe to call again once it succeeded (a retry): it then only removes what the first
   * call may have left (tails, the local copy).
   */
  finish(location: string, length: number): Promise<void>;
  /**
   * Whether the sealed object of exactly `length` bytes is in place: {@link finish} completed, though the
   * record may not say so (the process was killed, or the record write failed, right after it).
   */
  isFinished(location: string, length: number): Promise<boolean>;
}

export function canFinish(store: DataStore): store is FinishingDataStore {
  return typeof (store as Partial<FinishingDataStore>).finish === 'function';
}

/** What an upload's storage holds now. */
export interface StoredData {
  /** Bytes stored from 0: the offset an unfinished upload reached. */
  readonly length: number;
  /** Unix milliseconds of the last change, when the store can tell. */
  readonly modifiedAt: number | undefined;
}

/**
 * Optional capability: a copy of each upload's record kept with its bytes, so the loss of the record store (a
 * Redis or PostgreSQL that comes back empty) loses no upload. The copy is text the store does not read; the
 * offset of an unfinished upload is not in it, but taken from the stored bytes ({@link stored}).
 */
export interface RecordCopyingDataStore extends DataStore {
  /** Writes (replaces, whole) the copy of upload `id`'s record. */
  writeRecordCopy(id: string, copy: string): Promise<void>;
  /** The copy of upload `id`'s record, or undefined when none is kept. */
  readRecordCopy(id: string): Promise<string | undefined>;
  /** Removes the copy; a missing copy is not an error. */
  removeRecordCopy(id: string): Promise<void>;
  /** Ids of every upload a copy is kept for. */
  recordCopies(): AsyncIterable<string>;
  /**
   * What is stored at `location`; undefined when the upload's storage is gone (a store that keeps nothing
   * for an empty upload answers a length of 0 instead).
   */
  stored(location: string): Promise<StoredData | undefined>;
  /**
   * The locations holding upload data under the fixed part of --dir-structure, and when each last changed (the
   * expiration sweep removes old data that no record names). A location may come more than once.
   */
  storedLocations(): AsyncIterable<{ readonly location: string; readonly modifiedAt: number }>;
}

export function keepsRecordCopies(store: DataStore): store is RecordCopyingDataStore {
  return typeof (store as Partial<RecordCopyingDataStore>).writeRecordCopy === 'function';
}
