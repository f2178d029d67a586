import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface Reply {
  readonly status: number;
  /** The reason phrase of the status line. */
  readonly statusMessage: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

export interface SendOptions {
  readonly headers?: Record<string, string | number>;
  /** A body sent in one piece (Content-Length is set), or chunks sent with chunked encoding. */
  readonly body?: Buffer | string | readonly Buffer[];
}

/** One HTTP request with node:http (no header rewriting, raw bodies), collecting the answer. */
export function send(method: string, url: string, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    const body = options.body;
    if (body !== undefined && !Array.isArray(body))
      headers['Content-Length'] ??= Buffer.byteLength(body as Buffer | string);
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        let text: string | undefined;
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: buffer,
          // Decoded when first read: most large bodies (downloads) are only hashed, and decoding MiBs of random
          // bytes as UTF-8 costs far more CPU than receiving them.
          get text() {
            text ??= buffer.toString('utf8');
            return text;
          },
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else if (body !== undefined) {
      req.end(body);
    } else {
      req.end();
    }
  });
}

export const tus = { 'Tus-Resumable': '1.0.0' } as const;
export const octets = { 'Content-Type': 'application/offset+octet-stream' } as const;

/** Creates an upload and returns its absolute URL. */
export async function createUpload(
  endpoint: string,
  headers: Record<string, string | number>,
): Promise<string> {
  const reply = await send('POST', endpoint, { headers: { ...tus, ...headers } });
  if (reply.status !== 201 || typeof reply.headers.location !== 'string') {
    throw new Error(`creation failed: ${reply.status} ${reply.text}`);
  }
  return new URL(reply.headers.location, endpoint).toString();
}

/** Sends raw bytes over a socket (for malformed requests Node's client refuses to build). */
export function sendRaw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

/** A PATCH in flight: its first part sent, `finish()` sends the rest and resolves with the status. */
export interface PatchInTwoParts {
  finish(): Promise<number>;
}

/**
 * A PATCH at offset 0 of the upload at `url` whose body goes in two parts: the first `firstPart` bytes now, the rest
 * when the test calls `finish()`. Between the two the request is in flight (it holds the upload's lock and started
 * with the hooks of that moment), which is what reload and runtime-change tests need.
 */
export function patchInTwoParts(url: string, body: Buffer, firstPart: number): PatchInTwoParts {
  const patch = httpRequest(new URL(url), {
    method: 'PATCH',
    headers: { ...tus, ...octets, 'Upload-Offset': '0', 'Content-Length': String(body.length) },
  });
  const status = new Promise<number>((resolve, reject) => {
    patch.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    patch.on('error', reject);
  });
  patch.write(body.subarray(0, firstPart));
  return {
    finish: () => {
      patch.end(body.subarray(firstPart));
      return status;
    },
  };
}
