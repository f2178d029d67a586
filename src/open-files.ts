import type { FileHandle } from 'node:fs/promises';
import { OldestFirst } from './oldest-first.ts';

/**
 * Files kept open between uses, at most `limit` (plus one batch being closed), the least recently kept closed
 * first: on ext4 an open and a close cost more than a small write. A handle in use is taken out first, so no two
 * users ever share one. Used by file storage (upload files) and the file info store (record files).
 */
export class OpenFiles {
  readonly #handles = new Map<string, FileHandle>();
  /** Finds the least recently kept handle (one kept iterator: see OldestFirst). */
  readonly #oldest = new OldestFirst(this.#handles);
  /**
   * Handles closed together once this many are kept past the limit. Each close is a round trip through libuv's
   * thread pool; closes sent in one turn of the event loop keep a pool thread busy without sleeping between them
   * and come back together, so the main thread wakes once for several instead of once each.
   */
  readonly #closeBatch: number;

  /** `limit` 0 keeps nothing: every handle given back is closed. */
  constructor(readonly limit: number) {
    this.#closeBatch = Math.max(1, Math.floor(limit / 4));
  }

  /** The handle kept for `key`, now the caller's, or undefined when none is kept. */
  take(key: string): FileHandle | undefined {
    const handle = this.#handles.get(key);
    if (handle !== undefined) this.#handles.delete(key);
    return handle;
  }

  /**
   * Gives `handle` back for the next use of `key`, or closes it when nothing is kept. A handle it replaces is
   * closed before this resolves: two uses of one file overlap when a PATCH takes over from a stalled one, and
   * the later keeps its own. Those pushed out by the limit are closed without waiting (FileHandle.close lets a
   * write still running on it finish first).
   */
  async keep(key: string, handle: FileHandle): Promise<void> {
    if (this.limit === 0) {
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

  /** Closes every handle kept. */
  async closeAll(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
  }
}
