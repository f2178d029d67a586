/** PATCH helpers the storage e2e suites share: one chunk, a run of chunks checked as they go, the stored offset. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import * as tus from 'tus-js-client';
import { octets, send, tus as tusHeaders } from './http.ts';

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The upload id: the last segment of its URL. */
export function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop() ?? '';
}

export async function patch(
  url: string,
  offset: number,
  body: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; offset: string | undefined; text: string }> {
  const reply = await send('PATCH', url, {
    headers: { ...tusHeaders, ...octets, 'Upload-Offset': offset, ...headers },
    body,
  });
  const uploadOffset = reply.headers['upload-offset'];
  return {
    status: reply.status,
    offset: typeof uploadOffset === 'string' ? uploadOffset : undefined,
    text: reply.text,
  };
}

export async function headOffset(url: string): Promise<number> {
  const reply = await send('HEAD', url, { headers: tusHeaders });
  assert.equal(reply.status, 200);
  return Number(reply.headers['upload-offset']);
}

/** Sends `sizes` as consecutive PATCHes of `data`, checking the offset after each. */
export async function sendChunks(
  url: string,
  data: Buffer,
  sizes: readonly number[],
  from = 0,
): Promise<number> {
  let offset = from;
  for (const size of sizes) {
    const reply = await patch(url, offset, data.subarray(offset, offset + size));
    assert.equal(reply.status, 204, reply.text);
    offset += size;
    assert.equal(reply.offset, String(offset));
  }
  return offset;
}

/**
 * A PATCH that announces all of `data` but goes away mid-body: its first `sent` bytes reach the server's socket,
 * then the client drops the connection.
 */
export async function patchThenDrop(url: string, data: Buffer, sent: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = request(url, {
      method: 'PATCH',
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0, 'Content-Length': data.length },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    req.write(data.subarray(0, sent), () => setTimeout(() => req.destroy(), 500));
  });
}

/** The offset once the server stored something after a dropped PATCH (it may take a moment); 0 after 5 s. */
export async function offsetAfterDrop(url: string): Promise<number> {
  let offset = await headOffset(url);
  for (let attempt = 0; attempt < 50 && offset === 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    offset = await headOffset(url);
  }
  return offset;
}

/** Uploads `data` with tus-js-client in `chunkSize` chunks (as `big.bin`); resolves to the upload's URL. */
export function uploadWithTusJs(
  endpoint: string,
  data: Buffer,
  chunkSize = 6 * 1024 * 1024,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const task = new tus.Upload(data, {
      endpoint,
      chunkSize,
      retryDelays: [0, 200, 500],
      metadata: { filename: 'big.bin' },
      onSuccess: () => resolve(task.url ?? ''),
      onError: reject,
    });
    task.start();
  });
}
