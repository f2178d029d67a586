import type { OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { urlToHttpOptions } from 'node:url';
import { validateHeaderName, validateHeaderValue } from '../../node-http.ts';

/*
 * A small HTTP/1.1 client over node:net for `http:` hook targets (issue 20: what a post hook costs the server).
 * node:http's ClientRequest, Agent and IncomingMessage cost 0.13-0.165 ms of CPU per request (streams, llhttp,
 * the agent's bookkeeping), about a fifth of a small upload's CPU with two post events. A hook exchange is one
 * small POST and one small answer, so this client writes the request in one write and parses the answer from
 * the bytes as they arrive, on kept-alive connections.
 *
 * What it does as node:http did for hooks: a pool of kept-alive connections per host and port (at most
 * `maxSockets`, later requests wait in order), idle connections unref'd (they never keep the process alive),
 * Nagle off, a request on a reused connection the target had closed sent once more on a fresh one, header names
 * and values checked by node:http's own validators, `Host` and `Authorization: Basic` (from the URL's userinfo)
 * added unless given. One thing more: the server's `Keep-Alive: timeout=N` is honoured (an idle connection is
 * not reused in its last second, so fewer requests meet a connection the server is closing); node:http's agent
 * only honours it when given a timeout of its own, which Wharf's was not. Answers: framed by Content-Length, chunked (trailers read and dropped) or the end of the
 * connection (RFC 9112 §6.3), interim 1xx skipped, repeated headers combined as node:http combines them.
 *
 * What it refuses, as the delivery's `unreachable` detail: a head over `maxHeaderBytes`, a malformed status
 * line, header or chunk size, conflicting Content-Lengths, a connection closed before the answer ended.
 * A connection is reused only when the answer was complete, framed, HTTP/1.1 without `Connection: close`, the
 * request was fully handed to the kernel, and nothing followed the answer.
 */

/** Where requests go: parsed from a URL once (a hook's target is the same for every event). */
export interface Http1Target {
  /** The pool's key: the URL's host (IPv6 literals bracketed, the port when not 80). */
  readonly key: string;
  /** What `net.connect` takes: a name or an address, IPv6 without brackets. */
  readonly hostname: string;
  readonly port: number;
  /** Path and query: what the request line carries (the fragment never leaves). */
  readonly path: string;
  /** `Basic …` from the URL's user and password, as node:http sends them (`auth`). */
  readonly authorization: string | undefined;
}

/** The target of an `http:` URL, with node:http's reading of it (`urlToHttpOptions`). */
export function http1Target(url: URL): Http1Target {
  const options = urlToHttpOptions(url);
  return {
    key: url.host,
    hostname: options.hostname ?? url.hostname,
    port: options.port === undefined || options.port === '' ? 80 : Number(options.port),
    path: options.path ?? '/',
    authorization:
      options.auth === undefined || options.auth === null
        ? undefined
        : `Basic ${Buffer.from(options.auth).toString('base64')}`,
  };
}

export interface Http1Response {
  readonly status: number;
  /**
   * Lower-case names. A repeated header is joined with `, ` except those node:http keeps the first of
   * (content-type, location, retry-after, …), so a caller reads what it read from IncomingMessage.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** At most `bodyLimitBytes`: the rest of a longer body is not read (its connection is dropped). */
  readonly body: Buffer;
}

/** One request in flight. */
export interface Http1Exchange {
  readonly response: Promise<Http1Response>;
  /** Stops it (a timeout, a shutdown): its connection is destroyed and `response` rejects with `error`. */
  destroy(error: Error): void;
}

export interface Http1Limits {
  /** Connections per host and port; requests beyond wait for one. */
  readonly maxSockets: number;
  /** The largest response head (status line and headers, or trailers) read before giving up. */
  readonly maxHeaderBytes: number;
  /** How much of a response body is kept. */
  readonly bodyLimitBytes: number;
}

export class Http1Client {
  readonly #pools = new Map<string, Pool>();
  /** Set by close: a pool made later (a redirect to another host) keeps no connection either. */
  #closed = false;

  constructor(readonly limits: Http1Limits) {}

  /**
   * Sends one request. Throws (as node:http does) when a header name or value cannot be sent. A body's
   * Content-Length is added when the headers have none.
   */
  request(
    target: Http1Target,
    method: string,
    headers: OutgoingHttpHeaders,
    body: Buffer | undefined,
  ): Http1Exchange {
    const { bytes, keepAlive } = requestBytes(target, method, headers, body);
    let pool = this.#pools.get(target.key);
    if (pool === undefined) {
      pool = new Pool(target, this.limits.maxSockets);
      if (this.#closed) pool.close();
      this.#pools.set(target.key, pool);
    }
    const exchange = new Exchange(pool, bytes, keepAlive, method === 'HEAD', this.limits);
    pool.acquire(exchange, false);
    return exchange;
  }

  /**
   * Destroys the idle connections (in-flight requests finish; their connections are then dropped too). Later
   * requests still go out, each on a connection dropped when it ends.
   */
  close(): void {
    this.#closed = true;
    for (const pool of this.#pools.values()) pool.close();
  }

  /** Undoes {@link close}: connections are kept between requests again. */
  reopen(): void {
    this.#closed = false;
    for (const pool of this.#pools.values()) pool.reopen();
  }
}

/** The request's bytes: the head in Latin-1 (as node:http writes headers) and the body, in one buffer. */
function requestBytes(
  target: Http1Target,
  method: string,
  headers: OutgoingHttpHeaders,
  body: Buffer | undefined,
): { bytes: Buffer; keepAlive: boolean } {
  // Names are case-insensitive: a later one replaces an earlier one in its place, as setHeader does.
  const byName = new Map<string, readonly [string, string | number | readonly string[]]>();
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    validateHeaderName(name);
    if (value === undefined) throw new TypeError(`Invalid value "undefined" for header "${name}"`);
    if (Array.isArray(value)) for (const each of value) validateHeaderValue(name, each);
    else validateHeaderValue(name, String(value));
    byName.set(name.toLowerCase(), [name, value]);
  }
  let head = `${method} ${target.path} HTTP/1.1\r\n`;
  for (const [name, value] of byName.values()) {
    if (typeof value === 'object') for (const each of value) head += `${name}: ${each}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  if (!byName.has('host')) head += `Host: ${target.key}\r\n`;
  if (target.authorization !== undefined && !byName.has('authorization'))
    head += `Authorization: ${target.authorization}\r\n`;
  if (body !== undefined && !byName.has('content-length')) head += `Content-Length: ${body.length}\r\n`;
  const connection = byName.get('connection')?.[1];
  const keepAlive = connection === undefined || !/\bclose\b/i.test(String(connection));
  if (connection === undefined) head += 'Connection: keep-alive\r\n';
  head += '\r\n';
  const bytes = Buffer.allocUnsafe(head.length + (body?.length ?? 0));
  bytes.write(head, 0, 'latin1');
  body?.copy(bytes, head.length);
  return { bytes, keepAlive };
}

/** node:http's ECONNRESET: what a request gets when the connection ends before its answer. */
function connectionReset(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

/** The connections to one host and port: idle ones last-in first-out (the warmest), waiting requests in order. */
class Pool {
  readonly #idle: Connection[] = [];
  readonly #waiting: Exchange[] = [];
  #open = 0;
  /** Set by close: a connection whose exchange ends is dropped instead of kept idle. */
  #closed = false;

  constructor(
    readonly target: Http1Target,
    readonly maxSockets: number,
  ) {}

  /** Starts `exchange` on an idle connection (unless `fresh`), a new one, or queues it. */
  acquire(exchange: Exchange, fresh: boolean): void {
    if (!fresh) {
      for (let idle = this.#idle.pop(); idle !== undefined; idle = this.#idle.pop()) {
        if (idle.expiresAt <= Date.now()) {
          this.#forget(idle);
          continue;
        }
        idle.begin(exchange);
        return;
      }
    }
    if (this.#open < this.maxSockets) {
      let socket: Socket;
      try {
        socket = connect(this.target.port, this.target.hostname);
      } catch (error) {
        // Arguments net.connect refuses at once: the request fails (as node:http's would) and takes no place.
        exchange.fail(error as Error);
        return;
      }
      this.#open++;
      new Connection(this, socket).begin(exchange);
      return;
    }
    this.#waiting.push(exchange);
  }

  /** An exchange finished with its connection reusable: the next waiting request takes it, or it idles. */
  release(connection: Connection, keepAliveMs: number | undefined): void {
    const next = this.#waiting.shift();
    if (next !== undefined) {
      connection.begin(next);
      return;
    }
    if (this.#closed) {
      this.#forget(connection);
      return;
    }
    connection.expiresAt = keepAliveMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + keepAliveMs;
    connection.socket.unref();
    this.#idle.push(connection);
  }

  /** Destroys a connection (once); its place goes to the next waiting request. */
  drop(connection: Connection): void {
    if (!this.#forget(connection)) return;
    const index = this.#idle.indexOf(connection);
    if (index >= 0) this.#idle.splice(index, 1);
    const next = this.#waiting.shift();
    if (next !== undefined) this.acquire(next, next.retrying);
  }

  /** A waiting request that stopped. */
  cancel(exchange: Exchange): void {
    const index = this.#waiting.indexOf(exchange);
    if (index >= 0) this.#waiting.splice(index, 1);
  }

  close(): void {
    this.#closed = true;
    for (const idle of this.#idle.splice(0)) this.#forget(idle);
  }

  reopen(): void {
    this.#closed = false;
  }

  #forget(connection: Connection): boolean {
    if (connection.gone) return false;
    connection.gone = true;
    connection.socket.destroy();
    this.#open--;
    return true;
  }
}

/** One socket and the exchange it serves, if any. Its listeners are added once, not per request. */
class Connection {
  exchange: Exchange | undefined;
  /** Idle until then (the server's Keep-Alive timeout less a second); infinite when it named none. */
  expiresAt = Number.POSITIVE_INFINITY;
  gone = false;
  #served = 0;

  constructor(
    readonly pool: Pool,
    readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    // Bytes, an end or an error on an idle connection: the server closed it or broke the protocol; drop it.
    socket.on('data', (chunk: Buffer) => {
      if (this.exchange === undefined) this.pool.drop(this);
      else this.exchange.received(chunk);
    });
    socket.on('end', () => {
      if (this.exchange === undefined) this.pool.drop(this);
      else this.exchange.ended();
    });
    socket.on('error', (error: Error) => {
      if (this.exchange === undefined) this.pool.drop(this);
      else this.exchange.broke(error);
    });
    socket.on('close', () => {
      if (this.exchange !== undefined) this.exchange.broke(connectionReset('socket hang up'));
      this.pool.drop(this);
    });
  }

  begin(exchange: Exchange): void {
    const reused = this.#served > 0;
    this.#served++;
    this.exchange = exchange;
    if (reused) this.socket.ref();
    exchange.start(this, reused);
  }
}

class Exchange implements Http1Exchange {
  readonly response: Promise<Http1Response>;
  /** Sent once more on a fresh connection (a reused one was closed by the target before answering). */
  retrying = false;
  #resolve!: (response: Http1Response) => void;
  #reject!: (error: Error) => void;
  #settled = false;
  #connection: Connection | undefined;
  #reused = false;
  #parser: ResponseParser | undefined;

  constructor(
    readonly pool: Pool,
    readonly bytes: Buffer,
    readonly keepAlive: boolean,
    readonly isHead: boolean,
    readonly limits: Http1Limits,
  ) {
    this.response = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  start(connection: Connection, reused: boolean): void {
    this.#connection = connection;
    this.#reused = reused;
    this.#parser = new ResponseParser(this.limits, this.isHead);
    connection.socket.write(this.bytes);
  }

  received(chunk: Buffer): void {
    const parser = this.#parser;
    if (parser === undefined) return;
    let complete: boolean;
    try {
      complete = parser.feed(chunk);
    } catch (error) {
      this.broke(error as Error);
      return;
    }
    if (complete) this.#complete(parser);
  }

  ended(): void {
    const parser = this.#parser;
    if (parser?.endOfInput()) this.#complete(parser);
    else if (parser?.started) this.broke(connectionReset('the hook target closed the connection mid-answer'));
    else this.broke(connectionReset('socket hang up'));
  }

  broke(error: Error): void {
    const connection = this.#detach();
    if (connection === undefined) return;
    const answered = this.#parser?.started ?? false;
    this.pool.drop(connection);
    // The target closed a kept-alive connection while it idled, and this request found it first: it never
    // reached the target's application, so it goes once more on a new connection (node:http's reusedSocket).
    if (this.#reused && !answered && !this.retrying) {
      this.retrying = true;
      this.pool.acquire(this, true);
      return;
    }
    this.#settle(error);
  }

  /** Fails before a connection was had. */
  fail(error: Error): void {
    this.#settle(error);
  }

  destroy(error: Error): void {
    if (this.#settled) return;
    const connection = this.#detach();
    if (connection === undefined) this.pool.cancel(this);
    else this.pool.drop(connection);
    this.#settle(error);
  }

  #complete(parser: ResponseParser): void {
    const connection = this.#detach();
    if (connection === undefined) return;
    if (this.keepAlive && parser.reusable && connection.socket.writableLength === 0)
      this.pool.release(connection, parser.keepAliveMs);
    else this.pool.drop(connection);
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(parser.response());
  }

  #detach(): Connection | undefined {
    const connection = this.#connection;
    if (connection !== undefined) connection.exchange = undefined;
    this.#connection = undefined;
    return connection;
  }

  #settle(error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }
}

const headEnd = Buffer.from('\r\n\r\n');
/** RFC 9110 §5.6.2 token: what a header name may be. */
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field value characters (RFC 9110 §5.5): no control character but tab. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const invalidValue = /[\x00-\x08\x0a-\x1f\x7f]/;
/** RFC 9112 §4: `HTTP/1.x NNN reason`; the reason may be empty or missing (as llhttp takes it), no controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
const statusLinePattern = /^HTTP\/1\.([01]) ([0-9]{3})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;
/** A chunk size line's longest allowed length (size and extensions), so a missing CRLF cannot grow forever. */
const maxChunkLineBytes = 1024;
/** Headers node:http keeps the first of when repeated (`IncomingMessage.headers`); the others are joined. */
const firstWins = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

function invalid(what: string): Error {
  return new Error(`invalid HTTP response from the hook target: ${what}`);
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** Reads one response from the bytes of a connection, however they are split. */
class ResponseParser {
  /** Whether any byte of the answer arrived (a request that got none may be sent again). */
  started = false;
  reusable = false;
  /** The server's `Keep-Alive: timeout`, less a second: how long the connection may idle. */
  keepAliveMs: number | undefined;
  #phase: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'to-end' | 'done' =
    'head';
  #input: Buffer = Buffer.alloc(0);
  /** Where to look for the end of the head next (the bytes before were searched). */
  #searchFrom = 0;
  #status = 0;
  #headers: Record<string, string> = Object.create(null) as Record<string, string>;
  #remaining = 0;
  #trailerBytes = 0;
  readonly #body: Buffer[] = [];
  #bodyBytes = 0;
  #truncated = false;

  constructor(
    readonly limits: Http1Limits,
    readonly isHead: boolean,
  ) {}

  /** Takes the next bytes; true once the response is complete. Throws on a malformed response. */
  feed(chunk: Buffer): boolean {
    this.started = true;
    if (this.#phase === 'done') {
      // Bytes after a complete answer: the connection is not reused.
      this.reusable = false;
      return true;
    }
    this.#input = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
    for (;;) {
      switch (this.#phase) {
        case 'head': {
          const end = this.#input.indexOf(headEnd, this.#searchFrom);
          if (end < 0 || end + 4 > this.limits.maxHeaderBytes) {
            if (this.#input.length > this.limits.maxHeaderBytes || end >= 0)
              throw invalid(`the response head is larger than ${this.limits.maxHeaderBytes} bytes`);
            this.#searchFrom = Math.max(0, this.#input.length - 3);
            return false;
          }
          const head = this.#input.toString('latin1', 0, end);
          this.#input = this.#input.subarray(end + 4);
          this.#searchFrom = 0;
          if (this.#readHead(head)) return this.#done();
          break;
        }
        case 'length': {
          const taken = this.#take(this.#remaining);
          this.#remaining -= taken;
          if (this.#remaining === 0) return this.#done();
          if (this.#truncated) return this.#stop();
          return false;
        }
        case 'chunk-size': {
          const line = this.#line(maxChunkLineBytes, 'a chunk size line');
          if (line === undefined) return false;
          const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line)?.[1];
          if (size === undefined) throw invalid(`the chunk size ${quoted(line)}`);
          this.#remaining = Number.parseInt(size, 16);
          this.#phase = this.#remaining === 0 ? 'trailers' : 'chunk-data';
          break;
        }
        case 'chunk-data': {
          this.#remaining -= this.#take(this.#remaining);
          if (this.#truncated) return this.#stop();
          if (this.#remaining > 0) return false;
          this.#phase = 'chunk-end';
          break;
        }
        case 'chunk-end': {
          if (this.#input.length < 2) return false;
          if (this.#input[0] !== 0x0d || this.#input[1] !== 0x0a)
            throw invalid('a chunk not followed by CRLF');
          this.#input = this.#input.subarray(2);
          this.#phase = 'chunk-size';
          break;
        }
        case 'trailers': {
          const line = this.#line(this.limits.maxHeaderBytes - this.#trailerBytes, 'the trailers');
          if (line === undefined) return false;
          this.#trailerBytes += line.length + 2;
          if (line === '') return this.#done();
          break;
        }
        case 'to-end': {
          this.#take(Number.POSITIVE_INFINITY);
          return this.#truncated ? this.#stop() : false;
        }
      }
    }
  }

  /** The connection ended: true when that ends the response (a body read to the end). */
  endOfInput(): boolean {
    if (this.#phase !== 'to-end') return false;
    this.#phase = 'done';
    this.reusable = false;
    return true;
  }

  response(): Http1Response {
    const body = this.#body.length === 1 ? (this.#body[0] as Buffer) : Buffer.concat(this.#body);
    return { status: this.#status, headers: this.#headers, body };
  }

  /** Reads a head: true when it is the whole response (no body), false when a body or the answer follows. */
  #readHead(head: string): boolean {
    const lines = head.split('\r\n');
    const statusLine = lines[0] ?? '';
    const status = statusLinePattern.exec(statusLine);
    if (status === null) throw invalid(`the status line ${quoted(statusLine)}`);
    const code = Number(status[2]);
    const headers = Object.create(null) as Record<string, string>;
    let lengths: string | undefined;
    for (let index = 1; index < lines.length; index++) {
      const line = lines[index] ?? '';
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!token.test(name)) throw invalid(`the header line ${quoted(line)}`);
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (invalidValue.test(value)) throw invalid(`the value of the header ${quoted(name)}`);
      const key = name.toLowerCase();
      if (key === 'content-length') {
        // Repeated or listed lengths must agree (RFC 9112 §6.3, item 5).
        for (const each of value.split(',')) {
          const length = each.trim();
          if (!/^[0-9]{1,15}$/.test(length) || (lengths !== undefined && length !== lengths))
            throw invalid(`the Content-Length ${quoted(value)}`);
          lengths = length;
        }
      }
      const previous = headers[key];
      if (previous === undefined) headers[key] = value;
      else if (!firstWins.has(key)) headers[key] = `${previous}, ${value}`;
    }
    if (code < 200) {
      // 100 Continue, 102, 103: the answer follows. 101 would switch protocols, which no hook asks for.
      if (code === 101) throw invalid('101 Switching Protocols');
      return false;
    }
    this.#status = code;
    this.#headers = headers;
    const connection = headers.connection;
    this.reusable = status[1] === '1' && (connection === undefined || !/\bclose\b/i.test(connection));
    const keepAlive = /\btimeout=([0-9]+)/i.exec(headers['keep-alive'] ?? '')?.[1];
    if (keepAlive !== undefined) this.keepAliveMs = Math.max(0, Number(keepAlive) * 1000 - 1000);
    const transferEncoding = headers['transfer-encoding'];
    if (this.isHead || code === 204 || code === 304) return true;
    if (transferEncoding !== undefined) {
      // RFC 9112 §6.3: chunked last frames the body (a Content-Length beside it is ignored, and the connection
      // is not reused); any other coding last: the body runs to the end of the connection.
      const codings = transferEncoding.toLowerCase().split(',');
      const chunked = codings[codings.length - 1]?.trim() === 'chunked';
      this.#phase = chunked ? 'chunk-size' : 'to-end';
      if (!chunked || lengths !== undefined) this.reusable = false;
    } else if (lengths !== undefined) {
      this.#remaining = Number(lengths);
      if (this.#remaining === 0) return true;
      this.#phase = 'length';
    } else {
      this.#phase = 'to-end';
      this.reusable = false;
    }
    return false;
  }

  /** One CRLF-ended line of at most `limit` bytes, or undefined until it is all there. */
  #line(limit: number, what: string): string | undefined {
    const end = this.#input.indexOf('\r\n');
    if (end < 0 || end > limit) {
      if (this.#input.length > limit || end >= 0) throw invalid(`${what} longer than ${limit} bytes`);
      return undefined;
    }
    const line = this.#input.toString('latin1', 0, end);
    this.#input = this.#input.subarray(end + 2);
    return line;
  }

  /** Keeps up to `wanted` bytes of the input as body (within the body limit); returns how many it consumed. */
  #take(wanted: number): number {
    const taken = Math.min(wanted, this.#input.length);
    if (taken === 0) return 0;
    const room = this.limits.bodyLimitBytes - this.#bodyBytes;
    const kept = Math.min(taken, room);
    if (kept < taken) this.#truncated = true;
    if (kept > 0) {
      this.#body.push(this.#input.subarray(0, kept));
      this.#bodyBytes += kept;
    }
    this.#input = this.#input.subarray(taken);
    return taken;
  }

  #done(): boolean {
    this.#phase = 'done';
    // Bytes after the answer (a second response nobody asked for): the connection is not reused.
    if (this.#input.length > 0) this.reusable = false;
    return true;
  }

  /** The body went past its limit: the answer is what was kept, and the connection is dropped. */
  #stop(): boolean {
    this.#phase = 'done';
    this.reusable = false;
    return true;
  }
}
