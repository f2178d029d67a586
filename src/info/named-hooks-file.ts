import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NamedHooksStore, StoredNamedHooks } from './named-hooks-store.ts';

const fileName = '.wharf-named-hooks.json';

/**
 * The admin API's named hooks in `<info-dir>/.wharf-named-hooks.json` (a name no upload id can take: ids never
 * start with a dot). A write is a temp file and a rename, so a reader sees the old document or the new one.
 * `shared` (under --workers, where every worker reads the folder): a version check looks at the file's
 * size, time and inode and reads it again only when they changed.
 */
export class FileNamedHooksStore implements NamedHooksStore {
  readonly shared: boolean;
  readonly #file: string;
  /** Writes of this process, one at a time: the compare-and-set is read, compare, rename. */
  #writing: Promise<unknown> = Promise.resolve();
  #seen: { readonly stamp: string; readonly stored: StoredNamedHooks } | undefined;

  constructor(folder: string, options: { readonly shared: boolean }) {
    this.#file = path.join(folder, fileName);
    this.shared = options.shared;
  }

  async version(): Promise<number> {
    return (await this.read()).version;
  }

  async read(): Promise<StoredNamedHooks> {
    const stamped = await stat(this.#file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (stamped === undefined) return { version: 0, document: undefined };
    const stamp = `${stamped.ino}:${stamped.size}:${stamped.mtimeMs}`;
    if (this.#seen?.stamp === stamp) return this.#seen.stored;
    const parsed = JSON.parse(await readFile(this.#file, 'utf8')) as {
      version?: unknown;
      document?: unknown;
    };
    const stored = {
      version: typeof parsed.version === 'number' ? parsed.version : 0,
      document: parsed.document,
    };
    this.#seen = { stamp, stored };
    return stored;
  }

  write(document: unknown, expected: number): Promise<boolean> {
    const written = this.#writing.then(async () => {
      if ((await this.read()).version !== expected) return false;
      await mkdir(path.dirname(this.#file), { recursive: true });
      const temp = `${this.#file}.${process.pid}.${randomUUID()}.tmp`;
      try {
        await writeFile(temp, JSON.stringify({ version: expected + 1, document }));
        await rename(temp, this.#file);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      return true;
    });
    this.#writing = written.catch(() => undefined);
    return written;
  }
}
