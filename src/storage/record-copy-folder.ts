import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fixedDirPrefix, layoutPattern } from './dir-structure.ts';

/** Where file storage keeps the record copies, under --data-dir: a dot folder no upload location can name. */
export const recordCopyFolderName = '.wharf-records';

/** Record copies as `<folder>/<id>.json`, each replaced whole (written aside, then renamed over). */
export class RecordCopyFolder {
  readonly #folder: string;
  readonly #fsync: boolean;

  constructor(folder: string, fsync: boolean) {
    this.#folder = folder;
    this.#fsync = fsync;
  }

  #file(id: string): string {
    // Ids are validated before any store sees them; this keeps a bad one from leaving the folder all the same.
    if (id.includes('/') || id.includes('\\') || id.startsWith('.'))
      throw new Error(`invalid upload id: ${id}`);
    return path.join(this.#folder, `${id}.json`);
  }

  async write(id: string, copy: string): Promise<void> {
    await mkdir(this.#folder, { recursive: true });
    const file = this.#file(id);
    const temporary = `${file}.${randomUUID()}.tmp`;
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(copy, 'utf8');
      if (this.#fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async read(id: string): Promise<string | undefined> {
    try {
      return await readFile(this.#file(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async remove(id: string): Promise<void> {
    await rm(this.#file(id), { force: true });
  }

  async *ids(): AsyncIterable<string> {
    let names: string[];
    try {
      names = await readdir(this.#folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) if (name.endsWith('.json')) yield name.slice(0, -'.json'.length);
  }
}

/**
 * The upload files the store's own layout placed under `root` (see {@link layoutPattern}), and when each last
 * changed. Nothing else under the root is listed: other endpoints' folders, dot folders, records.
 */
export async function* uploadFiles(
  root: string,
  dirStructure: string,
): AsyncIterable<{ location: string; modifiedAt: number }> {
  const { pattern, depth } = layoutPattern(dirStructure);
  const start = fixedDirPrefix(dirStructure);
  const pending = [{ relative: start, level: start === '' ? 0 : start.split('/').length }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(root, next.relative), { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw error;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const location = next.relative === '' ? entry.name : `${next.relative}/${entry.name}`;
      if (entry.isDirectory() && next.level + 1 < depth)
        pending.push({ relative: location, level: next.level + 1 });
      else if (entry.isFile() && pattern.test(location) && !/\.(info|tmp|json)$/.test(entry.name)) {
        const info = await stat(path.join(root, location)).catch(() => undefined);
        if (info) yield { location, modifiedAt: info.mtimeMs };
      }
    }
  }
}
