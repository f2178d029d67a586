import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AppendResult, ByteRange, ConcatenatingDataStore, NewUploadPlacement } from './data-store.ts';
import { expandDirStructure } from './dir-structure.ts';

export interface FileDataStoreOptions {
  readonly directory: string;
  readonly dirStructure: string;
  readonly fsync: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Large enough that one upload's fs writes are batched (writev) without holding more than this. */
const maxWriteBufferBytes = 1024 * 1024;
/** Below this, writes get small enough to cost throughput (a socket read is 64 KiB). */
const minWriteBufferBytes = 64 * 1024;
/**
 * What the write buffers of all uploads in progress may hold together: one upload gets the full 1 MiB, and 200
 * at once get 80 KiB each instead of holding up to 200 MiB when the disk is slower than the network.
 */
const writeBufferBudgetBytes = 16 * 1024 * 1024;

/** Upload bytes as plain files under --data-dir. */
export class FileDataStore implements ConcatenatingDataStore {
  readonly name = 'file_storage';
  readonly #root: string;
  readonly #options: FileDataStoreOptions;
  /** Appends streaming now: they share {@link writeBufferBudgetBytes}. */
  #appending = 0;

  constructor(options: FileDataStoreOptions) {
    this.#options = options;
    this.#root = path.resolve(options.directory);
  }

  async prepare(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
  }

  /** Every location is resolved here and must stay inside the root, whatever produced it. */
  #absolute(location: string): string {
    const absolute = path.resolve(this.#root, location);
    if (absolute !== this.#root && !absolute.startsWith(this.#root + path.sep)) {
      throw new Error(`location escapes the data folder: ${location}`);
    }
    return absolute;
  }

  async create(placement: NewUploadPlacement): Promise<string> {
    const folder = expandDirStructure(this.#options.dirStructure, placement.createdAt, this.#options.env);
    const location = placement.location ?? (folder === '' ? placement.id : `${folder}/${placement.id}`);
    const absolute = this.#absolute(location);
    if (location.includes('/')) await mkdir(path.dirname(absolute), { recursive: true });
    // 'wx' fails if the file exists: two uploads can never share bytes.
    const handle = await open(absolute, 'wx');
    await handle.close();
    return location;
  }

  append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    this.#appending += 1;
    const share = Math.floor(writeBufferBudgetBytes / this.#appending);
    const sink = createWriteStream(this.#absolute(location), {
      flags: 'r+',
      start: offset,
      highWaterMark: Math.max(minWriteBufferBytes, Math.min(maxWriteBufferBytes, share)),
      flush: this.#options.fsync,
    });
    return new Promise((resolve) => {
      let failure: unknown;
      const stop = (error: unknown): void => {
        failure ??= error;
        source.unpipe(sink);
        // end(), not destroy(): bytes already handed to the sink are still written and counted.
        sink.end();
      };
      source.once('error', stop);
      sink.once('error', (error) => {
        failure ??= error;
        source.unpipe(sink);
      });
      sink.once('close', () => {
        this.#appending -= 1;
        source.off('error', stop);
        resolve(
          failure === undefined
            ? { bytesWritten: sink.bytesWritten }
            : { bytesWritten: sink.bytesWritten, error: failure },
        );
      });
      source.pipe(sink);
    });
  }

  async truncate(location: string, length: number): Promise<void> {
    await truncate(this.#absolute(location), length);
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    // Opened first so that a missing file fails here, before any response header is sent.
    const handle = await open(this.#absolute(location), 'r');
    return handle.createReadStream({
      autoClose: true,
      highWaterMark: 256 * 1024,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async remove(location: string): Promise<void> {
    await rm(this.#absolute(location), { force: true });
  }

  describe(location: string): string {
    return this.#absolute(location);
  }

  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    const sink = createWriteStream(this.#absolute(target), {
      flags: 'r+',
      start: 0,
      highWaterMark: maxWriteBufferBytes,
    });
    try {
      for (const source of sources) {
        if (source.length === 0) continue;
        const reader = createReadStream(this.#absolute(source.location), {
          start: 0,
          end: source.length - 1,
          highWaterMark: maxWriteBufferBytes,
        });
        await pipeline(reader, sink, { end: false });
      }
    } finally {
      await new Promise<void>((resolve, reject) => {
        sink.once('error', reject);
        sink.end(() => resolve());
      });
    }
    if (this.#options.fsync) {
      const handle = await open(this.#absolute(target), 'r+');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
  }
}
