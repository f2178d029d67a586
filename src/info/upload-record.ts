/** The persisted record of one upload. Bytes live in a DataStore; this record lives in an InfoStore. */
export interface UploadRecord {
  readonly id: string;
  /** Bytes stored so far. */
  offset: number;
  /** Declared total size; null while the length is deferred. */
  length: number | null;
  /** Where the DataStore keeps the bytes, relative to its root (file storage: a path under --data-dir). */
  readonly path: string;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /** The Upload-Metadata header exactly as the client sent it, echoed byte for byte on HEAD. */
  readonly metadataHeader: string | null;
  /** Decoded metadata (UTF-8 text values) for hooks, downloads and filters. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly isPartial: boolean;
  readonly isFinal: boolean;
  /** Ids of the partial uploads a final upload concatenates, in order. */
  readonly parts: readonly string[] | null;
  /** The Upload-Concat header as the client sent it (partial and final), echoed on HEAD. */
  readonly concatHeader: string | null;
  /** Finals created (concatenation-unfinished) before this partial finished: built when it does. */
  pendingFinals: string[];
  /** Unix milliseconds after which an unfinished upload answers 410; null = never. */
  expiresAt: number | null;
  /** Name of the data store that holds the bytes, as rustus records it (`file_storage`). */
  readonly storage: string;
  /**
   * Why the upload failed after its last byte (a pre-finish hook refused it); the bytes are kept. Absent or
   * null when it did not fail.
   */
  failure?: string | null;
  /**
   * Set while pre-finish hooks are configured and have not approved the finished bytes yet (a virus scanner
   * deciding, or an instance that died while one decided): GET refuses to serve them. Cleared once the hooks
   * approve or refuse. Absent on records written before pre-finish hooks were configured.
   */
  awaitingApproval?: boolean;
  /** Incremented on every write: the InfoStore's compare-and-set token. */
  version: number;
}

export function isComplete(record: UploadRecord): boolean {
  return record.length !== null && record.offset === record.length;
}

export function isExpired(record: UploadRecord, now: number): boolean {
  return record.expiresAt !== null && !isComplete(record) && record.expiresAt <= now;
}

/**
 * Metadata as a record without a prototype: `__proto__`, `constructor` or `toString` sent by a client are
 * plain keys, and a lookup of a key the client did not send finds nothing inherited.
 */
export function plainMetadata(metadata: Readonly<Record<string, unknown>>): Readonly<Record<string, string>> {
  const plain = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value === 'string') plain[key] = value;
  }
  return plain;
}

/** Why a final (concatenated) upload can never be built, or undefined when it has not failed. */
export function finalFailure(record: UploadRecord): string | undefined {
  if (!record.isFinal || isComplete(record)) return undefined;
  return typeof record.failure === 'string' && record.failure !== '' ? record.failure : undefined;
}

/** A finished upload whose bytes pre-finish hooks have not approved yet: nobody may download them. */
export function isAwaitingApproval(record: UploadRecord): boolean {
  return (
    record.awaitingApproval === true &&
    isComplete(record) &&
    !(typeof record.failure === 'string' && record.failure !== '')
  );
}
