import { connect } from 'node:net';

/** One response cut out of the bytes a server sent on a connection. */
export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Sends `requests` one after another on ONE kept-alive connection (the last asks to close it) and returns
 * every byte the server sent until it closed. What follows a response's announced Content-Length is what a
 * client reads as the next response.
 */
export function exchangeOnOneSocket(port: number, requests: readonly string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(requests.join(''));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** A request's text: `Tus-Resumable` is added, `close` marks the last request on the connection. */
export function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  close = false,
): string {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Tus-Resumable: 1.0.0',
    `Connection: ${close ? 'close' : 'keep-alive'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Reads the first response from `bytes` as a client would: the head, then exactly Content-Length bytes of
 * body (none for a HEAD). Returns it and the bytes after it, which a client reads as the next response.
 */
export function readResponse(bytes: Buffer, isHead = false): { response: RawResponse; rest: Buffer } {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(bytes.toString('latin1'))}`);
  const [statusLine = '', ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = isHead ? 0 : Number(headers['content-length'] ?? 0);
  const bodyStart = end + 4;
  return {
    response: {
      statusLine,
      status: Number(statusLine.split(' ')[1]),
      headers,
      body: bytes.subarray(bodyStart, bodyStart + length),
    },
    rest: bytes.subarray(bodyStart + length),
  };
}
