import type { IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable, Writable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

/** A Node request/response handler, as `createTusHandler()` returns. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Where a Web `Request` came from, when the host knows (Bun's `server.requestIP()`, Deno's `info.remoteAddr`). */
export interface FetchPeer {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/** Statuses whose response has no body (the Response constructor refuses one). */
const bodiless = new Set([101, 103, 204, 205, 304]);

/**
 * The request side: the Web body as a Node Readable (no buffering: Node pulls from the Web stream as the store
 * reads), with the fields the tus handler reads from an IncomingMessage.
 */
function nodeRequest(request: Request, peer: FetchPeer): IncomingMessage {
  const body = request.body
    ? Readable.fromWeb(request.body as unknown as NodeReadableStream<Uint8Array>)
    : Readable.from([]);
  const url = new URL(request.url);
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  request.headers.forEach((value, name) => {
    headers[name] = value;
    rawHeaders.push(name, value);
  });
  let timer: NodeJS.Timeout | undefined;
  const req = Object.assign(body, {
    method: request.method,
    url: `${url.pathname}${url.search}`,
    headers,
    rawHeaders,
    httpVersion: '1.1',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    complete: false,
    socket: {
      remoteAddress: peer.remoteAddress,
      remotePort: peer.remotePort,
      encrypted: url.protocol === 'https:',
    },
    // The host's server owns the socket; an idle body still ends through this timer (reset on each chunk).
    setTimeout(ms: number, onTimeout?: () => void) {
      clearTimeout(timer);
      timer = undefined;
      if (ms > 0 && onTimeout) {
        const arm = (): void => {
          clearTimeout(timer);
          timer = setTimeout(onTimeout, ms);
          timer.unref();
        };
        arm();
        body.on('data', arm);
        body.once('close', () => {
          clearTimeout(timer);
          body.off('data', arm);
        });
      }
      return req;
    },
  });
  body.once('end', () => {
    req.complete = true;
  });
  // A client that went away aborts the Request: the body errors, the handler sees an unfinished body.
  request.signal?.addEventListener('abort', () => body.destroy(), { once: true });
  return req as unknown as IncomingMessage;
}

/**
 * The response side: a Writable whose head resolves the Response once written, and whose bytes feed the
 * Response's ReadableStream with backpressure (a write waits until the reader pulls).
 */
class FetchResponse extends Writable {
  statusCode = 200;
  statusMessage = '';
  readonly req: IncomingMessage;
  readonly #headers = new Map<string, OutgoingHttpHeader>();
  #sent = false;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #pulled: (() => void) | undefined;
  readonly #resolve: (response: Response) => void;

  constructor(req: IncomingMessage, resolve: (response: Response) => void) {
    super();
    this.req = req;
    this.#resolve = resolve;
  }

  get headersSent(): boolean {
    return this.#sent;
  }
  setHeader(name: string, value: OutgoingHttpHeader): this {
    this.#headers.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): OutgoingHttpHeader | undefined {
    return this.#headers.get(name.toLowerCase());
  }
  getHeaders(): OutgoingHttpHeaders {
    return Object.fromEntries(this.#headers);
  }
  hasHeader(name: string): boolean {
    return this.#headers.has(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.#headers.delete(name.toLowerCase());
  }
  writeHead(status: number, ...rest: (string | OutgoingHttpHeaders | undefined)[]): this {
    this.statusCode = status;
    for (const part of rest) {
      if (typeof part === 'string') this.statusMessage = part;
      else if (part)
        for (const [name, value] of Object.entries(part))
          if (value !== undefined) this.setHeader(name, value);
    }
    this.#sendHead();
    return this;
  }
  /** 100 Continue is the host server's business (most answer it themselves). */
  writeContinue(): void {}
  flushHeaders(): void {
    this.#sendHead();
  }

  #sendHead(): void {
    if (this.#sent) return;
    this.#sent = true;
    const headers = new Headers();
    for (const [name, value] of this.#headers) {
      for (const one of Array.isArray(value) ? value : [value]) headers.append(name, String(one));
    }
    const noBody = bodiless.has(this.statusCode) || this.req.method === 'HEAD';
    const body = noBody
      ? null
      : new ReadableStream<Uint8Array>(
          {
            start: (controller) => {
              this.#controller = controller;
            },
            pull: () => {
              const pulled = this.#pulled;
              this.#pulled = undefined;
              pulled?.();
            },
            // The client stopped reading (went away): like a closed socket.
            cancel: () => {
              this.#controller = undefined;
              this.destroy();
            },
          },
          { highWaterMark: 1 },
        );
    this.#resolve(new Response(body, { status: this.statusCode, statusText: this.statusMessage, headers }));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#sendHead();
    const controller = this.#controller;
    if (!controller) {
      callback();
      return;
    }
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) > 0) callback();
    else this.#pulled = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#sendHead();
    this.#controller?.close();
    this.#controller = undefined;
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error) this.#controller?.error(error);
    else if (this.#controller) this.#controller.close();
    this.#controller = undefined;
    this.#pulled = undefined;
    if (!this.#sent) {
      this.#sent = true;
      this.#resolve(new Response(null, { status: 500 }));
    }
    callback(error);
  }
}

/** Runs a Node handler for one Web `Request`, streaming both bodies. */
export function toFetchHandler(
  handler: NodeHandler,
): (request: Request, peer?: FetchPeer) => Promise<Response> {
  return (request, peer = {}) =>
    new Promise<Response>((resolve) => {
      const req = nodeRequest(request, peer);
      const res = new FetchResponse(req, resolve);
      handler(req, res as unknown as ServerResponse);
    });
}
