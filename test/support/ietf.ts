import { RawConnection, type RawResponse } from './raw-http.ts';

/** A request head only (no Content-Length added): the body is written later, or framed by the caller. */
export function rawHead(
  method: string,
  target: string,
  headers: Readonly<Record<string, string | number>>,
): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** One request on its own connection with an exact Content-Length body; the answer with its 1xx responses. */
export async function exchange(
  port: number,
  method: string,
  target: string,
  headers: Readonly<Record<string, string | number>>,
  body: Buffer | string = Buffer.alloc(0),
): Promise<RawResponse> {
  const connection = await RawConnection.open(port);
  try {
    const bytes = Buffer.from(body);
    const framed =
      bytes.length > 0 || method === 'POST' || method === 'PATCH' || method === 'PUT'
        ? { ...headers, 'Content-Length': bytes.length }
        : headers;
    connection.write(Buffer.concat([Buffer.from(rawHead(method, target, framed), 'latin1'), bytes]));
    return await connection.read(method === 'HEAD');
  } finally {
    connection.close();
  }
}

/** The body as chunked transfer coding (one chunk per piece, then the last chunk). */
export function chunked(pieces: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const piece of pieces) {
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`, 'latin1'), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** The path of an absolute upload URL (what raw requests target). */
export function pathOf(location: string | undefined): string {
  if (location === undefined) throw new Error('no Location');
  return new URL(location).pathname;
}

/** The parsed `application/problem+json` body of an answer. */
export function problemOf(response: RawResponse): Record<string, unknown> {
  if (response.headers['content-type'] !== 'application/problem+json') {
    throw new Error(`not a problem: ${response.headers['content-type']} ${response.body.toString()}`);
  }
  return JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
}

export const problemBase = 'https://iana.org/assignments/http-problem-types#';
