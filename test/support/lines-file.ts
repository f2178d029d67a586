import { readFile } from 'node:fs/promises';

/** The non-empty lines of a text file a test's hooks append to; none while the file does not exist yet. */
export async function linesOf(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}
