import { writev } from 'node:fs';
import type { Readable } from 'node:stream';
import type { AppendResult } from './data-store.ts';

/**
 * The bytes that the uploads streaming at the same moment hold between the socket and the disk. Every stream
 * may gather `floorBytes` for its next write, so that writes stay large enough to be cheap; beyond that it
 * gathers up to `batchBytes` only while all streams together hold less than `totalBytes`. So one upload
 * writes 1 MiB at a time, and 200 at once hold about `totalBytes + 200 × (floorBytes + one socket read)`. (A
 * share per stream fixed when it starts would not bound it: the first of 200 simultaneous uploads would keep
 * 1 MiB, the second 512 KiB and so on, a harmonic sum of about 56 MiB for a 16 MiB budget, twice over with
 * one batch writing and one filling.)
 */
export class WriteBudget {
  #held = 0;

  constructor(
    readonly totalBytes: number,
    /** The most one stream gathers into one write. */
    readonly batchBytes: number,
    /** What one stream may always gather. */
    readonly floorBytes: number,
  ) {}

  /** Bytes received and not yet written, over all streams. */
  get held(): number {
    return this.#held;
  }

  hold(bytes: number): void {
    this.#held += bytes;
  }

  release(bytes: number): void {
    this.#held -= bytes;
  }

  /** Whether a stream that gathered `gathered` bytes stops reading until its running write ends. */
  full(gathered: number): boolean {
    return gathered >= this.batchBytes || (gathered >= this.floorBytes && this.#held >= this.totalBytes);
  }
}

export interface FileSinkOptions {
  readonly budget: WriteBudget;
  /** Flush the file's data to the disk before reporting (--force-fsync). */
  readonly fsync: boolean;
}

/**
 * Writes every buffer at `position`, again from where a short write stopped. The callback form of `writev` on
 * the handle's descriptor: the promise form costs a promise and a reference count per call, which showed with
 * 200 uploads writing small batches at once. `done` gets the bytes written before an error too: on a full
 * disk a short write stores what fits and the next one fails, and the bytes that fit are kept and counted.
 */
function writeAll(
  fd: number,
  buffers: Buffer[],
  position: number,
  done: (error: Error | null, bytesWritten: number) => void,
  writtenBefore = 0,
): void {
  writev(fd, buffers, position, (error, bytesWritten) => {
    if (error !== null) {
      done(error, writtenBefore);
      return;
    }
    if (bytesWritten === 0) {
      done(new Error('the file system accepted no bytes'), writtenBefore);
      return;
    }
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of buffers) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    if (rest.length === 0) done(null, writtenBefore + bytesWritten);
    else writeAll(fd, rest, position + bytesWritten, done, writtenBefore + bytesWritten);
  });
}

/**
 * Streams `source` into an open file from `offset` (the caller closes it): chunks gather into one batch while
 * the previous batch is being written (one `writev` each), and reading pauses when the budget says the batch
 * is full, so the socket and the disk both stay busy and memory stays bounded however many uploads run.
 * Never throws for a failure of the source or the file: bytes already gathered when the source fails are
 * still written and counted, and the result says what stopped it.
 */
export function writeStreamAt(
  handle: { readonly fd: number; datasync(): Promise<void> },
  offset: number,
  source: Readable,
  options: FileSinkOptions,
): Promise<AppendResult> {
  const { budget } = options;
  return new Promise<AppendResult>((resolve) => {
    let written = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let writing = false;
    let sourceDone = false;
    let settled = false;
    let sourceError: unknown;
    let fileError: unknown;

    const detach = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('close', onEnd);
      source.off('error', onError);
    };
    const settle = async (): Promise<void> => {
      if (settled) return;
      settled = true;
      detach();
      try {
        if (options.fsync && fileError === undefined && written > 0) await handle.datasync();
      } catch (error) {
        fileError = error;
      }
      const error = fileError ?? sourceError;
      resolve(error === undefined ? { bytesWritten: written } : { bytesWritten: written, error });
    };
    const flush = (): void => {
      if (batch.length === 0) {
        if (sourceDone) void settle();
        return;
      }
      const buffers = batch;
      const bytes = batchBytes;
      batch = [];
      batchBytes = 0;
      writing = true;
      // The next batch gathers while this one is written.
      if (!sourceDone) source.resume();
      writeAll(handle.fd, buffers, offset + written, (error, bytesWritten) => {
        writing = false;
        if (error === null) {
          written += bytes;
          budget.release(bytes);
          flush();
          return;
        }
        // What reached the file before the failure is stored and counted; the caller records it.
        written += bytesWritten;
        fileError = error;
        // Nothing more is written after a failed write: what follows it would leave a hole.
        sourceDone = true;
        budget.release(bytes + batchBytes);
        batch = [];
        batchBytes = 0;
        source.pause();
        void settle();
      });
    };
    // Set while a batch smaller than one socket read waits for the end of this turn of the event loop.
    let flushQueued = false;
    const flushQueuedBatch = (): void => {
      flushQueued = false;
      if (!writing) flush();
    };
    const onData = (chunk: Buffer): void => {
      batch.push(chunk);
      batchBytes += chunk.length;
      budget.hold(chunk.length);
      if (writing) {
        if (budget.full(batchBytes)) source.pause();
      } else if (batchBytes >= budget.floorBytes) flush();
      else if (!flushQueued) {
        // The socket reads of one poll come one after the other (a request's first read also holds its
        // headers, so a 64 KiB body arrives as two chunks): written together, they cost one write, not two.
        flushQueued = true;
        setImmediate(flushQueuedBatch);
      }
    };
    const onEnd = (): void => {
      if (sourceDone) return;
      sourceDone = true;
      detach();
      if (!writing) flush();
    };
    const onError = (error: unknown): void => {
      sourceError ??= error;
      onEnd();
    };
    source.on('data', onData);
    source.once('end', onEnd);
    // A source destroyed without an error or an end (the caller gave up on it) ends the append as well.
    source.once('close', onEnd);
    source.once('error', onError);
  });
}
