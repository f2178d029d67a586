import type { UploadRecord } from '../info/upload-record.ts';

/**
 * What the upload lifecycle reports as it goes, for counters (/metrics) and live progress (the admin stream).
 * Implementations must be cheap: they run on the request path.
 */
export interface UploadActivity {
  /** A new upload's record was stored. */
  created(upload: UploadRecord): void;
  /** A request body ended: `bytes` arrived (kept or not); the record holds the new offset. */
  received(upload: UploadRecord, bytes: number): void;
  /** The upload has all its bytes (and pre-finish hooks let it finish). */
  finished(upload: UploadRecord): void;
  /** The upload was deleted by its client (tus termination). */
  terminated(upload: UploadRecord): void;
  /** The expiration sweep removed the upload (it was unfinished and its expiry passed). */
  expired(upload: UploadRecord): void;
}

/** A body being written now: its upload and the offset reached so far. */
export interface WriteInProgress {
  readonly upload: UploadRecord;
  readonly offset: number;
}

/** Tells several listeners; undefined ones are left out. */
export function allActivity(listeners: readonly (UploadActivity | undefined)[]): UploadActivity | undefined {
  const present = listeners.filter((listener): listener is UploadActivity => listener !== undefined);
  if (present.length <= 1) return present[0];
  return {
    created: (upload) => {
      for (const listener of present) listener.created(upload);
    },
    received: (upload, bytes) => {
      for (const listener of present) listener.received(upload, bytes);
    },
    finished: (upload) => {
      for (const listener of present) listener.finished(upload);
    },
    terminated: (upload) => {
      for (const listener of present) listener.terminated(upload);
    },
    expired: (upload) => {
      for (const listener of present) listener.expired(upload);
    },
  };
}
