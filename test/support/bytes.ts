import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';

export const MiB = 1024 * 1024;

/** Writes `size` random bytes to `file`, 1 MiB at a time, and returns their SHA-256 (hex). */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  async function* pieces() {
    for (let written = 0; written < size; written += MiB) {
      const piece = randomBytes(Math.min(MiB, size - written));
      hash.update(piece);
      yield piece;
    }
  }
  await pipeline(Readable.from(pieces()), createWriteStream(file));
  return hash.digest('hex');
}

/** Downloads an upload with GET (asserting 200), hashing it as it streams; returns the SHA-256 (hex). */
export async function downloadSha256(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  const hash = createHash('sha256');
  for await (const chunk of Readable.fromWeb(response.body as ReadableStream<Uint8Array>)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
