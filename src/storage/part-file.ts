import { randomUUID } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * One S3 part being gathered on disk: bytes are appended until the part is full (or the body ends), then
 * the file is sent and removed. Memory stays at one network chunk, whatever the part size.
 */
export class PartFile {
  readonly path: string;
  #handle: FileHandle | undefined;
  #size = 0;

  private constructor(file: string, handle: FileHandle) {
    this.path = file;
    this.#handle = handle;
  }

  static async create(directory: string): Promise<PartFile> {
    const file = path.join(directory, `wharf-part-${randomUUID()}`);
    return new PartFile(file, await open(file, 'wx', 0o600));
  }

  get size(): number {
    return this.#size;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (!this.#handle) throw new Error('part file already closed');
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.#handle.write(bytes, done, bytes.length - done, this.#size);
      done += bytesWritten;
      this.#size += bytesWritten;
    }
  }

  /** Appends a whole stream (a ranged object read) and returns how many bytes it had. */
  async writeFrom(source: AsyncIterable<Uint8Array>): Promise<number> {
    const before = this.#size;
    for await (const chunk of source) await this.write(chunk);
    return this.#size - before;
  }

  /** Closes the handle; the file stays until {@link remove}, so it can be streamed out. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  async remove(): Promise<void> {
    await this.close();
    await rm(this.path, { force: true });
  }
}
