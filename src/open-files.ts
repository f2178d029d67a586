import { close, fdatasync, fstat, fsync, ftruncate, open } from 'node:fs';
import { OldestFirst } from './oldest-first.ts';

/** What OpenFiles keeps: anything it can close (an {@link OpenFile}, or a FileHandle of node:fs/promises). */
export interface Closable {
  close(): Promise<void>;
}

/** What a closed OpenFile's `fd` reads: valid for node:fs, above any descriptor limit, so the kernel answers EBADF. */
const closedDescriptor = 2 ** 31 - 1;

/** Settles a promise from a node:fs callback. */
function settle<T>(resolve: (value: T) => void, reject: (error: Error) => void) {
  return (error: Error | null, value: T): void => {
    if (error === null) resolve(value);
    else reject(error);
  };
}

/**
 * A file open by its descriptor, with the few operations the file stores use on the files they keep open. It
 * replaces node:fs/promises' FileHandle on the small-upload path, where each upload opens two files: a
 * FileHandle is a second native object per open (on top of the request's), an event emitter set up per file,
 * and its close a promise request of its own; the callback calls here make one request each. Unlike a
 * FileHandle it is not closed when collected, so every path that opens one closes it or hands it to OpenFiles;
 * and its user must not close it while an operation on it runs (a handle in use is never in OpenFiles, and the
 * stores close one only after their last call on it settled).
 */
export class OpenFile implements Closable {
  #closed: Promise<void> | undefined;
  readonly #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * The descriptor; once {@link OpenFile.close} was called, a number no process has open (the largest node:fs
   * takes), so that a call made through a closed file fails with EBADF, as a FileHandle's would, instead of reaching
   * whatever file the kernel gave the number to since. (-1 would make node:fs throw at the call, synchronously.)
   */
  get fd(): number {
    return this.#closed === undefined ? this.#fd : closedDescriptor;
  }

  static open(path: string, flags: string): Promise<OpenFile> {
    return new Promise((resolve, reject) => {
      open(path, flags, (error, fd) => {
        if (error === null) resolve(new OpenFile(fd));
        else reject(error);
      });
    });
  }

  /** Closes once: a second call gets the first's outcome, so a descriptor number reused since is never closed. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve, reject) => close(this.#fd, settle(resolve, reject)));
    return this.#closed;
  }

  /** The file's size now. */
  size(): Promise<number> {
    return new Promise((resolve, reject) =>
      fstat(this.fd, (error, stats) => {
        if (error === null) resolve(stats.size);
        else reject(error);
      }),
    );
  }

  truncate(length: number): Promise<void> {
    return new Promise((resolve, reject) => ftruncate(this.fd, length, settle(resolve, reject)));
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, settle(resolve, reject)));
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fsync(this.fd, settle(resolve, reject)));
  }
}

/**
 * Files kept open between uses, at most `limit` (plus one batch being closed), the least recently kept closed
 * first: on ext4 an open and a close cost more than a small write. A handle in use is taken out first, so no two
 * users ever share one. Used by file storage (upload files) and the file info store (record files).
 */
export class OpenFiles<H extends Closable = Closable> {
  readonly #handles = new Map<string, H>();
  /** Finds the least recently kept handle (one kept iterator: see OldestFirst). */
  readonly #oldest = new OldestFirst(this.#handles);
  /**
   * Handles closed together once this many are kept past the limit. Each close is a round trip through libuv's
   * thread pool; closes sent in one turn of the event loop keep a pool thread busy without sleeping between them
   * and come back together, so the main thread wakes once for several instead of once each.
   */
  readonly #closeBatch: number;
  /**
   * Set by closeAll: from then on nothing is kept. A use in flight at the store's close (a PATCH that the shutdown
   * interrupted, its record write) gives its handle back after closeAll, and an OpenFile is not closed when
   * collected: kept by a closed store, its descriptor stayed open as long as the process.
   */
  #closed = false;

  /** `limit` 0 keeps nothing: every handle given back is closed. */
  constructor(readonly limit: number) {
    this.#closeBatch = Math.max(1, Math.floor(limit / 4));
  }

  /** The handle kept for `key`, now the caller's, or undefined when none is kept. */
  take(key: string): H | undefined {
    const handle = this.#handles.get(key);
    if (handle !== undefined) this.#handles.delete(key);
    return handle;
  }

  /**
   * Gives `handle` back for the next use of `key`, or closes it when nothing is kept. A handle it replaces is
   * closed before this resolves: two uses of one file overlap when a PATCH takes over from a stalled one, and
   * the later keeps its own. Those pushed out by the limit are closed without waiting: a kept handle is idle (its
   * user gave it back after its last call settled), so nothing runs on it. After closeAll it closes `handle`.
   */
  async keep(key: string, handle: H): Promise<void> {
    if (this.limit === 0 || this.#closed) {
      await handle.close();
      return;
    }
    const previous = this.take(key);
    this.#handles.set(key, handle);
    if (this.#handles.size >= this.limit + this.#closeBatch) {
      while (this.#handles.size > this.limit) {
        const oldest = this.#oldest.evict();
        if (oldest === undefined) break;
        void oldest[1].close().catch(() => undefined);
      }
    }
    if (previous !== undefined && previous !== handle) await previous.close().catch(() => undefined);
  }

  /** Closes the handle kept for `key` (its file is about to be replaced or removed). */
  async drop(key: string): Promise<void> {
    await this.take(key)
      ?.close()
      .catch(() => undefined);
  }

  /** Closes every handle kept, and every handle given back from now on. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
  }
}
