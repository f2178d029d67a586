import { write } from 'node:fs';

/**
 * Writes `length` bytes of `buffer` at the descriptor's position (a file open for appending: its end), going on
 * after a short write, through fs.write's callback (a FileHandle's promise costs more per call, and both callers
 * write once per event or record version). Rejects on an error, or when the file system accepts no bytes (which
 * would otherwise repeat forever).
 */
export function writeAll(fd: number, buffer: Buffer, length = buffer.length): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (done: number): void => {
      write(fd, buffer, done, length - done, null, (error, written) => {
        if (error !== null) reject(error);
        else if (written === 0) reject(new Error('the file system accepted no bytes'));
        else if (done + written < length) from(done + written);
        else resolve();
      });
    };
    from(0);
  });
}
