import { connect, type Socket } from 'node:net';

/** One response as it came off the socket, parsed strictly by its own framing. */
export interface RawResponse {
  readonly status: number;
  /** Header names in lower case; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** The informational (1xx) responses that came before this one, in order (e.g. 104 Upload Resumption Supported). */
  readonly interim: readonly RawInterimResponse[];
}

/** An informational (1xx) response: a head without a body. */
export interface RawInterimResponse {
  readonly status: number;
  readonly reason: string;
  /** Header names in lower case; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
}

const headerEnd = Buffer.from('\r\n\r\n');

/**
 * A kept-alive HTTP/1.1 connection read byte by byte: each response is framed by its status, `Content-Length` or
 * chunked encoding, and whatever follows belongs to the next response. A server that sends more body than it
 * announced shows up here as a next "response" that is not the one asked for, or as bytes left over at the end,
 * where a pooling client such as Node's would drop the socket quietly.
 */
export class RawConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('error', (error) => {
      this.#error = error;
      this.#wake?.();
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** True once the server closed its side. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Sends one request, already serialised. */
  write(request: Buffer | string): void {
    this.#socket.write(request);
  }

  /** Sends a request and reads its response. `head` says the response has no body whatever its headers say. */
  async exchange(request: Buffer | string, head = false): Promise<RawResponse> {
    this.write(request);
    return this.read(head);
  }

  /** Reads the next response off the socket; the 1xx responses before it are in its `interim`. */
  async read(head = false): Promise<RawResponse> {
    const interim: RawInterimResponse[] = [];
    let next = await this.#readHead();
    while (next.status < 200) {
      interim.push(next);
      next = await this.#readHead();
    }
    const { status, headers } = next;
    if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), interim };
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      return { status, headers, body: await this.#chunkedBody(), interim };
    }
    const length = headers['content-length'];
    if (length === undefined) {
      // Framed by the end of the connection.
      while (!this.#ended) await this.#more('a body ended by close');
      return { status, headers, body: this.#take(this.#buffer.length), interim };
    }
    if (!/^\d+$/.test(length)) throw new Error(`bad Content-Length ${JSON.stringify(length)}`);
    return { status, headers, body: await this.#exactly(Number(length)), interim };
  }

  /** Reads one informational (1xx) response; fails if the next response on the socket is a final one. */
  async readInterim(): Promise<RawInterimResponse> {
    const response = await this.#readHead();
    if (response.status >= 200) throw new Error(`expected a 1xx response, got ${response.status}`);
    return response;
  }

  /** True when bytes of a next response have arrived and not been read yet. */
  get pending(): boolean {
    return this.#buffer.length > 0;
  }

  async #readHead(): Promise<RawInterimResponse> {
    while (this.#buffer.indexOf(headerEnd) < 0) await this.#more('a response head');
    const end = this.#buffer.indexOf(headerEnd);
    const responseHead = this.#buffer.subarray(0, end).toString('latin1');
    this.#buffer = this.#buffer.subarray(end + headerEnd.length);
    const [statusLine = '', ...lines] = responseHead.split('\r\n');
    const match = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!match) throw new Error(`not a status line: ${JSON.stringify(statusLine.slice(0, 200))}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`not a header line: ${JSON.stringify(line.slice(0, 200))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    return { status, reason: match[2] ?? '', headers };
  }

  /**
   * Asks for `Connection: close` on a last request, reads its response and then the rest of the stream: resolves
   * to the bytes the server sent after that response (none, from a server that frames its answers right).
   */
  async finish(request: Buffer | string, head = false): Promise<{ response: RawResponse; leftover: Buffer }> {
    const response = await this.exchange(request, head);
    while (!this.#ended) await this.#more('the end of the connection');
    const leftover = this.#take(this.#buffer.length);
    this.close();
    return { response, leftover };
  }

  close(): void {
    this.#socket.destroy();
  }

  async #exactly(length: number): Promise<Buffer> {
    while (this.#buffer.length < length) await this.#more(`${length} body bytes`);
    return this.#take(length);
  }

  async #chunkedBody(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      while (this.#buffer.indexOf('\r\n') < 0) await this.#more('a chunk size');
      const lineEnd = this.#buffer.indexOf('\r\n');
      const size = Number.parseInt(this.#buffer.subarray(0, lineEnd).toString('latin1'), 16);
      if (!Number.isInteger(size)) throw new Error('bad chunk size');
      this.#take(lineEnd + 2);
      if (size === 0) {
        while (this.#buffer.indexOf(headerEnd.subarray(2)) !== 0) {
          if (this.#buffer.length >= 2) throw new Error('trailers are not expected');
          await this.#more('the end of a chunked body');
        }
        this.#take(2);
        return Buffer.concat(parts);
      }
      parts.push(await this.#exactly(size));
      const crlf = await this.#exactly(2);
      if (crlf.toString('latin1') !== '\r\n') throw new Error('a chunk did not end with CRLF');
    }
  }

  #take(length: number): Buffer {
    const taken = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return Buffer.from(taken);
  }

  async #more(waitingFor: string): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#ended) throw new Error(`the server closed the connection while we waited for ${waitingFor}`);
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = undefined;
    if (this.#error) throw this.#error;
  }
}

/** Serialises one HTTP/1.1 request with an exact Content-Length for its body. */
export function rawRequest(
  method: string,
  target: string,
  headers: Readonly<Record<string, string | number>>,
  body: Buffer = Buffer.alloc(0),
): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body.length > 0 || method === 'POST' || method === 'PATCH')
    lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}
