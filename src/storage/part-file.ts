import { randomUUID } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import path from 'node:path';

/** Pending bytes written to disk in one writev: bounded memory, few system calls. */
const writeBatchBytes = 1024 * 1024;

/**
 * One S3 part being gathered on disk: bytes are appended until the part is full (or the body ends), then
 * the file is sent and removed. Memory stays at one network chunk, whatever the part size.
 */
export class PartFile {
  readonly path: string;
  #handle: FileHandle | undefined;
  /** Bytes on disk. */
  #flushed = 0;
  /** Chunks not yet written: batched so the disk sees a few large writes, not one per network chunk. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Bytes taken from `#pending` by a flush and not yet on disk: still part of {@link size}. */
  #flushing = 0;

  private constructor(file: string, handle: FileHandle) {
    this.path = file;
    this.#handle = handle;
  }

  static async create(directory: string): Promise<PartFile> {
    const file = path.join(directory, `wharf-part-${randomUUID()}`);
    return new PartFile(file, await open(file, 'wx', 0o600));
  }

  /** Reopens a part file kept from an earlier request, cut to its first `length` bytes, to append to it. */
  static async reopen(file: string, length: number): Promise<PartFile> {
    const handle = await open(file, 'r+');
    try {
      await handle.truncate(length);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const part = new PartFile(file, handle);
    part.#flushed = length;
    return part;
  }

  /** Every byte written so far, wherever it is (on disk, being flushed, pending), also while it closes. */
  get size(): number {
    return this.#flushed + this.#flushing + this.#pendingBytes;
  }

  /** Keeps a reference to `bytes` until the next flush: callers must not reuse the buffer. */
  async write(bytes: Uint8Array): Promise<void> {
    if (!this.#handle) throw new Error('part file already closed');
    if (bytes.length === 0) return;
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    if (this.#pendingBytes >= writeBatchBytes) await this.#flush();
  }

  async #flush(): Promise<void> {
    const handle = this.#handle;
    if (!handle || this.#pendingBytes === 0) return;
    let buffers = this.#pending;
    let remaining = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#flushing = remaining;
    try {
      while (remaining > 0) {
        const { bytesWritten } = await handle.writev(buffers, this.#flushed);
        this.#flushed += bytesWritten;
        this.#flushing -= bytesWritten;
        remaining -= bytesWritten;
        if (remaining > 0) buffers = [Buffer.concat(buffers).subarray(bytesWritten)];
      }
    } finally {
      this.#flushing = 0;
    }
  }

  /** Appends a whole stream (a ranged object read) and returns how many bytes it had. */
  async writeFrom(source: AsyncIterable<Uint8Array>): Promise<number> {
    const before = this.size;
    for await (const chunk of source) await this.write(chunk);
    return this.size - before;
  }

  /** Writes what is pending and closes the handle; the file stays until {@link remove}, to be streamed out. */
  async close(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    try {
      await this.#flush();
    } finally {
      this.#handle = undefined;
      await handle.close();
    }
  }

  async remove(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
