import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OpenFile, OpenFiles } from '../open-files.ts';
import type {
  AppendResult,
  ByteRange,
  ConcatenatingDataStore,
  FinishingDataStore,
  NewUploadPlacement,
  RecordCopyingDataStore,
  StoredData,
} from './data-store.ts';
import { expandDirStructure } from './dir-structure.ts';
import { WriteBudget, writeStreamAt } from './file-sink.ts';
import { RecordCopyFolder, recordCopyFolderName, uploadFiles } from './record-copy-folder.ts';

export interface FileDataStoreOptions {
  readonly directory: string;
  readonly dirStructure: string;
  readonly fsync: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Upload files held open between requests, at most (0, the default, closes each after its request). Only for
   * a process that is the only one removing these files: a file another process removes stays on the disk
   * while a handle holds it.
   */
  readonly idleFiles?: number;
}

/** Large enough that one upload's writes are batched (writev) without holding more than this. */
const maxWriteBufferBytes = 1024 * 1024;
/**
 * What every upload may gather for a write whatever the others hold: one socket read (64 KiB), so that no
 * write is smaller than what the network brings at once. More per upload made 200 concurrent uploads hold
 * 25 MiB beyond the budget for no measured gain in throughput.
 */
const minWriteBufferBytes = 64 * 1024;
/**
 * What the uploads in progress may hold together between their sockets and the disk (see WriteBudget): 200 at
 * once then hold 16 MiB instead of up to 200 MiB when the disk is slower than the network.
 */
const writeBufferBudgetBytes = 16 * 1024 * 1024;

/**
 * Cuts the file back to `length` when it holds more: bytes past the recorded offset are left by a write that
 * failed (full disk), a record write that failed after the data was written, or a process killed mid-PATCH,
 * and the upload's own client chose them. `size` is the file's size when this store knows it (see
 * FileDataStore.#createdEmpty and #appended); otherwise one fstat through the open descriptor finds it.
 * Truncated only when needed. Resolves to the size the file has now.
 */
async function cutTo(handle: OpenFile, length: number, size?: number): Promise<number> {
  const found = size ?? (await handle.size());
  if (found <= length) return found;
  await handle.truncate(length);
  return length;
}

/** A file name of the root folder itself: no separator, not starting with a dot. */
const plainName = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Upload bytes as plain files under --data-dir. */
export class FileDataStore implements ConcatenatingDataStore, FinishingDataStore, RecordCopyingDataStore {
  readonly name = 'file_storage';
  readonly #root: string;
  /** The root and a separator: a plain name appended to it is the file's absolute path. */
  readonly #rootPrefix: string;
  readonly #options: FileDataStoreOptions;
  /** Shared by the appends streaming now. */
  readonly #budget = new WriteBudget(writeBufferBudgetBytes, maxWriteBufferBytes, minWriteBufferBytes);
  /**
   * Upload files left open after their creation or last append, keyed by absolute path: the next PATCH writes
   * without opening the file again.
   */
  readonly #openFiles: OpenFiles<OpenFile>;
  /**
   * Files this store created (empty, `wx`) and has held open since, before their first append: nothing a failure
   * leaves past a recorded offset (a failed write, a record write that failed after one, a killed process) can be
   * in them, so that append cuts without measuring the file. With the size {@link #appended} gives the finish
   * that follows, a small upload (POST, one PATCH) needs no fstat instead of two of its ten file-system calls.
   * A later append, or one through a handle opened afresh, measures the file as before. Kept by handle: a
   * handle closed (pushed out, replaced) takes its entry with it.
   */
  readonly #createdEmpty = new WeakSet<OpenFile>();
  /**
   * The size a handle's file has after this store's last append (or cut) through it, for the finish of the same
   * request, which comes right after the append that completed the upload; taken by that finish.
   */
  readonly #appended = new WeakMap<OpenFile, number>();

  constructor(options: FileDataStoreOptions) {
    this.#options = options;
    this.#root = path.resolve(options.directory);
    this.#rootPrefix = this.#root + path.sep;
    this.#openFiles = new OpenFiles<OpenFile>(options.idleFiles ?? 0);
  }

  async prepare(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
  }

  /** Every location is resolved here and must stay inside the root, whatever produced it. */
  #absolute(location: string): string {
    // The usual location, a name in the root itself (an upload id), needs no resolving: it has no separator and
    // cannot be `.` or `..`. path.resolve was a tenth of what a small upload allocated in this store.
    if (plainName.test(location)) return this.#rootPrefix + location;
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
    const handle = await OpenFile.open(absolute, 'wx');
    this.#createdEmpty.add(handle);
    await this.#openFiles.keep(absolute, handle);
    return location;
  }

  async append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    const absolute = this.#absolute(location);
    let handle = this.#openFiles.take(absolute);
    if (handle === undefined) {
      try {
        handle = await OpenFile.open(absolute, 'r+');
      } catch (error) {
        return { bytesWritten: 0, error };
      }
    }
    let size: number;
    try {
      const known = this.#createdEmpty.delete(handle) ? 0 : undefined;
      size = await cutTo(handle, offset, known);
    } catch (error) {
      await handle.close().catch(() => undefined);
      return { bytesWritten: 0, error };
    }
    const result = await writeStreamAt(handle, offset, source, {
      budget: this.#budget,
      fsync: this.#options.fsync,
    });
    if (result.error === undefined) {
      this.#appended.set(handle, result.bytesWritten > 0 ? offset + result.bytesWritten : size);
      // The bytes are written: a failing close must not turn them into a failed append.
      await this.#openFiles.keep(absolute, handle).catch(() => undefined);
    } else await handle.close().catch(() => undefined);
    return result;
  }

  async truncate(location: string, length: number): Promise<void> {
    const absolute = this.#absolute(location);
    // Through the kept handle when there is one: the finish that may follow knows the size.
    const handle = this.#openFiles.take(absolute);
    if (handle === undefined) {
      await truncate(absolute, length);
      return;
    }
    try {
      await handle.truncate(length);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.#appended.set(handle, length);
    await this.#openFiles.keep(absolute, handle).catch(() => undefined);
  }

  /**
   * A finished upload's file is exactly its length: bytes past it (written before a crash or a failed record
   * write, then the length was declared at that offset) are cut, so they are never served.
   */
  async finish(location: string, length: number): Promise<void> {
    const absolute = this.#absolute(location);
    const handle = this.#openFiles.take(absolute) ?? (await OpenFile.open(absolute, 'r+'));
    try {
      const known = this.#appended.get(handle) ?? (this.#createdEmpty.has(handle) ? 0 : undefined);
      this.#appended.delete(handle);
      await cutTo(handle, length, known);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    await this.#openFiles.keep(absolute, handle).catch(() => undefined);
  }

  /**
   * Never: a file of exactly `length` bytes may hold the tail of a PATCH a killed process never recorded (and
   * never checked against its checksum), so only the record says a file upload is finished; a client's retry of
   * the last chunk finishes it, cheaply, as finishing only cuts the file to its length.
   */
  async isFinished(): Promise<boolean> {
    return false;
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
    const absolute = this.#absolute(location);
    await this.#openFiles.drop(absolute);
    await rm(absolute, { force: true });
  }

  describe(location: string): string {
    return this.#absolute(location);
  }

  close(): Promise<void> {
    return this.#openFiles.closeAll();
  }

  #recordCopies: RecordCopyFolder | undefined;

  /** Record copies live in `<data-dir>/.wharf-records/<id>.json` (record-copy-folder.ts). */
  get #copies(): RecordCopyFolder {
    this.#recordCopies ??= new RecordCopyFolder(
      path.join(this.#root, recordCopyFolderName),
      this.#options.fsync,
    );
    return this.#recordCopies;
  }

  writeRecordCopy(id: string, copy: string): Promise<void> {
    return this.#copies.write(id, copy);
  }

  readRecordCopy(id: string): Promise<string | undefined> {
    return this.#copies.read(id);
  }

  removeRecordCopy(id: string): Promise<void> {
    return this.#copies.remove(id);
  }

  recordCopies(): AsyncIterable<string> {
    return this.#copies.ids();
  }

  async stored(location: string): Promise<StoredData | undefined> {
    try {
      const info = await stat(this.#absolute(location));
      return { length: info.size, modifiedAt: info.mtimeMs };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  storedLocations(): AsyncIterable<{ location: string; modifiedAt: number }> {
    return uploadFiles(this.#root, this.#options.dirStructure);
  }

  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    // Written through its path below: a kept handle would no longer know its file's size.
    await this.#openFiles.drop(this.#absolute(target));
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
