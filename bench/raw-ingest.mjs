// Node without node:http's body path (issue 20, the concurrent row): a bench prototype, not a product. A raw
// `net` server parses each request head itself and writes PATCH bodies straight from the socket's reads to the
// file, so none of node:http's per-piece body copies (`Buffer::Copy` in the parser's on_body) is made. It speaks
// what the sink and the pipe speak (bench/load.mjs drives it like them): POST creates an empty file (201 with
// Location), PATCH writes its Content-Length body at Upload-Offset (204 with the new offset), HEAD reports the
// file's size; HTTP/1.1 keep-alive and pipelining, `Expect: 100-continue`, Content-Length bodies only (chunked
// bodies get 501), a 16 KiB head limit. It validates, locks and records nothing else.
//
// Modes (RAW_MODE, or the third argument):
//   alloc       the socket's 'data' chunks (one Buffer allocated per read, outside the V8 heap, as node:http's
//               own reads are) gathered and written with one fs.writev at a time per connection; reading pauses
//               while more than RAW_PENDING_BYTES (1 MiB) wait.
//   reuse       no allocation per read: each connection's socket reads into its own RAW_BUFFER_BYTES (64 KiB)
//               buffer (`onread`), stops reading while the bytes of a read are written (fs.write on the thread
//               pool) and reads again once they are.
//   reuse-sync  the same buffer, written with fs.writeSync in the read callback itself: what the Go sink does
//               (one read, one write, no thread pool hop), at the price of the event loop waiting for each
//               page-cache write.
//   shared-sync as reuse-sync, but ONE buffer (RAW_BUFFER_BYTES, 64 KiB) for all sockets, and every file call
//               synchronous (open, create, stat, write): nothing of a read outlives its callback, so the next read,
//               whichever socket it is for, can take the same buffer.
//   hijack      node:http for the heads, the body taken off its parser (see hijackServer below).
//
// Node gives `onread` only to sockets it is asked to create, and a server's accepted sockets are created inside
// net.Server. The `reuse` modes therefore listen with `pauseOnConnect` (the accepted socket has not read a byte)
// and build their own net.Socket around the accepted socket's handle (`socket._handle`, and the `handle` option
// of the constructor, both undocumented), which calls `useUserBuffer` on it as a client socket gets.
//
// Usage: node bench/raw-ingest.mjs [port] [dataDir] [alloc|reuse|reuse-sync|shared-sync|hijack]
//        (or PORT / DATA_DIR / RAW_MODE; RAW_BUFFER_BYTES, RAW_PENDING_BYTES, RAW_THREADS as above)
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { isMainThread, Worker } from 'node:worker_threads';

const port = Number(process.argv[2] ?? process.env.PORT ?? 1093);
const directory = process.argv[3] ?? process.env.DATA_DIR ?? './bench/out/raw-data';
const mode = process.argv[4] ?? process.env.RAW_MODE ?? 'reuse';
const host = process.env.HOST ?? '127.0.0.1';
const bufferBytes = Number(process.env.RAW_BUFFER_BYTES ?? 64 * 1024);
// shared-sync: one read buffer for every socket. libuv reads one socket at a time on the event loop's thread and
// hands each read to its callback before the next, and a synchronous write is done before the callback returns,
// so the buffer is free again by the next read whichever socket it is for.
const sharedBuffer = mode === 'shared-sync' ? Buffer.allocUnsafeSlow(bufferBytes) : null;
const pendingLimit = Number(process.env.RAW_PENDING_BYTES ?? 1024 * 1024);
// RAW_THREADS=N: N event loops in one process, each a worker thread (the main thread one of them) listening on
// the same port with `reusePort` (SO_REUSEPORT, Node >= 22.12 on Linux), so the kernel spreads connections over
// them: a second core for the reads and writes, at the cost of one more V8 isolate, not one more process.
const threads = Number(process.env.RAW_THREADS ?? 1);
const prefix = '/files/';
const headLimit = 16 * 1024;
if (!['alloc', 'reuse', 'reuse-sync', 'shared-sync', 'hijack'].includes(mode)) throw new Error(`unknown mode ${mode}`);
if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new Error(`loopback only, not ${host}`);

await mkdir(directory, { recursive: true });

const CRLF2 = Buffer.from('\r\n\r\n');

/** The request line and the few headers the prototype acts on; null when the head is not HTTP/1.x. */
function parseHead(text) {
  const lines = text.split('\r\n');
  const match = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0] ?? '');
  if (!match) return null;
  const request = {
    method: match[1],
    path: match[2],
    close: match[3] === '0',
    contentLength: 0,
    offset: 0,
    chunked: false,
    expectContinue: false,
  };
  let lengthSeen = null;
  for (let index = 1; index < lines.length; index += 1) {
    const line = lines[index];
    const colon = line.indexOf(':');
    // No obs-fold, no space before the colon: either could let a proxy and this server read different heads.
    if (colon <= 0 || line[colon - 1] === ' ' || line[0] === ' ' || line[0] === '\t') return null;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      // Digits only, and never two different lengths (RFC 9112 6.3: the classic smuggling vector).
      if (!/^\d{1,15}$/.test(value) || (lengthSeen !== null && lengthSeen !== value)) return null;
      lengthSeen = value;
      request.contentLength = Number(value);
    } else if (name === 'transfer-encoding') request.chunked = true;
    else if (name === 'upload-offset') request.offset = /^\d{1,15}$/.test(value) ? Number(value) : -1;
    else if (name === 'connection') {
      const tokens = value.toLowerCase();
      if (tokens.includes('close')) request.close = true;
      else if (tokens.includes('keep-alive')) request.close = false;
    } else if (name === 'expect') request.expectContinue = value.toLowerCase() === '100-continue';
  }
  return request;
}

function fileOf(path) {
  const id = path.startsWith(prefix) ? path.slice(prefix.length) : '';
  return /^[0-9a-f-]{36}$/.test(id) ? join(directory, id) : null;
}

function response(status, reason, headers = {}) {
  let text = `HTTP/1.1 ${status} ${reason}\r\nTus-Resumable: 1.0.0\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  // 204 and 1xx carry no length; every other answer here has an empty body.
  if (status !== 204 && status !== 200) text += 'Content-Length: 0\r\n';
  return `${text}\r\n`;
}

/**
 * One connection's requests in turn. `feed(view)` takes the bytes of one read and returns true when it is done
 * with them, or false when it went asynchronous: it then calls `resume()` once the bytes are no longer needed
 * (written or copied) and it wants the next read. In the `alloc` mode the views are the socket's own chunks
 * and body bytes are only referenced, never copied; in the `reuse` modes a view is the connection's one buffer,
 * which the socket overwrites on its next read.
 */
class Connection {
  constructor(socket, resume) {
    this.socket = socket;
    this.resume = resume;
    this.head = []; // the head's bytes so far (copied: a reused buffer is overwritten by the next read)
    this.headBytes = 0;
    this.request = null;
    this.fd = -1;
    this.position = 0;
    this.remaining = 0;
    this.failed = false;
    // alloc mode: body chunks waiting for the write in flight
    this.batch = [];
    this.batchBytes = 0;
    this.writing = false;
    this.ending = false;
    this.paused = false;
    this.gone = false; // closed or failed: the file closes once the write in flight is done
  }

  /** Processes `view`; true when done with it, false when `resume()` will be called later. */
  feed(view) {
    let at = 0;
    while (at < view.length && !this.failed) {
      if (this.request === null) {
        at = this.readHead(view, at);
        if (at < 0) return false; // waiting for an open, a stat or a create: rest of the view kept
        continue;
      }
      const take = Math.min(this.remaining, view.length - at);
      const piece = view.subarray(at, at + take);
      at += take;
      this.remaining -= take;
      if (!this.body(piece, view, at)) return false;
    }
    return true;
  }

  /** Reads head bytes from view[at..]; returns the index after the head, view.length, or -1 (went async). */
  readHead(view, at) {
    const rest = view.subarray(at);
    // The terminator may straddle two reads: search the last 3 bytes of the previous piece too.
    const joined = this.headBytes > 0 ? Buffer.concat([this.head.at(-1).subarray(-3), rest]) : rest;
    const back = this.headBytes > 0 ? Math.min(3, this.head.at(-1).length) : 0;
    const found = joined.indexOf(CRLF2);
    if (found < 0) {
      this.head.push(Buffer.from(rest));
      this.headBytes += rest.length;
      if (this.headBytes > headLimit) this.fail(431, 'Request Header Fields Too Large');
      return view.length;
    }
    const used = found + 4 - back;
    this.head.push(Buffer.from(rest.subarray(0, used)));
    const text = Buffer.concat(this.head).toString('latin1');
    this.head = [];
    this.headBytes = 0;
    if (text.length > headLimit) return this.fail(431, 'Request Header Fields Too Large'), view.length;
    const request = parseHead(text.slice(0, -4));
    if (request === null) return this.fail(400, 'Bad Request'), view.length;
    if (request.chunked) return this.fail(501, 'Not Implemented'), view.length;
    this.request = request;
    this.remaining = request.contentLength;
    const next = at + used;
    if (sharedBuffer !== null) {
      // The shared buffer would be another socket's by the time an asynchronous open returned: everything of
      // this mode is synchronous, so nothing that follows the head has to be copied out of it.
      this.startSync(request);
      return next;
    }
    this.start(request, view, next);
    return -1;
  }

  /** `start` with synchronous file calls (shared-sync): open, create or stat, then answer. */
  startSync(request) {
    const path = fileOf(request.path);
    try {
      if (request.method === 'PATCH' && path !== null && request.offset >= 0) {
        this.fd = fs.openSync(path, 'r+');
        this.position = request.offset;
        if (request.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        if (this.remaining === 0) this.finishBody();
      } else if (request.contentLength > 0) this.fail(request.method === 'PATCH' ? 400 : 405, 'Unexpected Body');
      else if (request.method === 'POST' && request.path === prefix) {
        const id = randomUUID();
        fs.writeFileSync(join(directory, id), '');
        this.answer(response(201, 'Created', { Location: prefix + id, 'Upload-Offset': '0' }));
      } else if (request.method === 'HEAD' && path !== null) {
        const { size } = fs.statSync(path);
        this.answer(response(200, 'OK', { 'Upload-Offset': String(size), 'Cache-Control': 'no-store' }));
      } else this.answer(response(path === null ? 404 : 405, path === null ? 'Not Found' : 'Method Not Allowed'));
    } catch {
      this.fail(request.method === 'POST' ? 500 : 404, 'Failed');
    }
  }

  /** Answers what needs no body, or opens the PATCH's file, then goes on with view[next..]. */
  start(request, view, next) {
    const go = () => this.continueWith(view, next);
    const path = fileOf(request.path);
    if (request.method === 'PATCH' && path !== null && request.offset >= 0) {
      fs.open(path, 'r+', (error, fd) => {
        if (error) return this.fail(404, 'Not Found');
        if (this.gone) return fs.close(fd, () => {});
        this.fd = fd;
        this.position = request.offset;
        if (request.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        if (this.remaining === 0) this.finishBody();
        go();
      });
      return;
    }
    if (request.contentLength > 0) return this.fail(request.method === 'PATCH' ? 400 : 405, 'Unexpected Body');
    if (request.method === 'POST' && request.path === prefix) {
      const id = randomUUID();
      fs.writeFile(join(directory, id), '', (error) => {
        if (error) return this.fail(500, 'Internal Server Error');
        this.answer(response(201, 'Created', { Location: prefix + id, 'Upload-Offset': '0' }));
        go();
      });
      return;
    }
    if (request.method === 'HEAD' && path !== null) {
      fs.stat(path, (error, stats) => {
        if (error) this.answer(response(404, 'Not Found'));
        else this.answer(response(200, 'OK', { 'Upload-Offset': String(stats.size), 'Cache-Control': 'no-store' }));
        go();
      });
      return;
    }
    this.answer(response(path === null ? 404 : 405, path === null ? 'Not Found' : 'Method Not Allowed'));
    queueMicrotask(go);
  }

  continueWith(view, next) {
    if (this.failed) return;
    if (this.feed(view.subarray(next))) this.resume();
  }

  /** One piece of a PATCH body; `view`/`next` are where to go on once it is written. True when done with it. */
  body(piece, view, next) {
    if (mode === 'reuse-sync' || mode === 'shared-sync') {
      this.position += fs.writeSync(this.fd, piece, 0, piece.length, this.position);
      if (this.remaining === 0) this.finishBody();
      return true;
    }
    if (mode === 'reuse') {
      this.writing = true;
      fs.write(this.fd, piece, 0, piece.length, this.position, (error, written) => {
        this.writing = false;
        if (this.gone) return this.closeFile();
        if (error || written !== piece.length) return this.fail(500, 'Internal Server Error');
        this.position += written;
        if (this.remaining === 0) this.finishBody();
        this.continueWith(view, next);
      });
      return false;
    }
    // alloc: the chunk is ours (a fresh Buffer per read); gather while a write is in flight.
    this.batch.push(piece);
    this.batchBytes += piece.length;
    if (this.remaining === 0) this.ending = true;
    if (!this.writing) this.flush();
    if (this.ending) {
      // The next request's head (pipelining) waits until this body is on disk and answered.
      this.after = () => this.continueWith(view, next);
      return false;
    }
    if (this.batchBytes > pendingLimit && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    return true;
  }

  flush() {
    const chunks = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.writing = true;
    fs.writev(this.fd, chunks, this.position, (error, written) => {
      this.writing = false;
      if (error || written !== bytes) return this.fail(500, 'Internal Server Error');
      this.position += written;
      // A cut connection's last chunks are still written: what reached the server is kept.
      if (this.batch.length > 0) return this.flush();
      if (this.gone) return this.closeFile();
      if (this.ending) {
        // Reading resumes only once the rest of the last chunk (a pipelined head) has been taken.
        this.ending = false;
        this.paused = false;
        this.finishBody();
        const after = this.after;
        this.after = null;
        after();
      } else if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
    });
  }

  finishBody() {
    const request = this.request;
    this.closeFile();
    this.request = null;
    const headers = { 'Upload-Offset': String(this.position) };
    if (mode === 'hijack') headers.Connection = 'close';
    this.socket.write(response(204, 'No Content', headers));
    if (request.close) this.socket.end();
  }

  answer(text) {
    const request = this.request;
    this.request = null;
    this.socket.write(text);
    if (request.close) this.socket.end();
  }

  /** Closes the PATCH's file once no write uses its descriptor (a number closed early could be reused). */
  closeFile() {
    if (this.fd < 0 || this.writing) return;
    fs.close(this.fd, () => {});
    this.fd = -1;
  }

  fail(status, reason) {
    if (this.failed) return;
    this.failed = true;
    this.gone = true;
    this.closeFile();
    // The connection cannot be trusted to frame another request.
    if (!this.socket.destroyed) this.socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  closed() {
    this.failed = true;
    this.gone = true;
    this.closeFile();
  }
}

function serveAlloc(socket) {
  const connection = new Connection(socket, () => {
    if (!connection.paused) socket.resume();
  });
  socket.on('data', (chunk) => {
    if (!connection.feed(chunk)) socket.pause();
  });
  socket.on('error', () => {});
  socket.on('close', () => connection.closed());
}

function serveReuse(accepted) {
  const handle = accepted._handle;
  // The accepted socket gives its handle up: it never read (pauseOnConnect) and must not close it.
  accepted._handle = null;
  const buffer = sharedBuffer ?? Buffer.allocUnsafeSlow(bufferBytes);
  let connection;
  const socket = new net.Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer,
      // false stops reading (readStop) until socket.resume(): the buffer is not reused before its bytes are out.
      callback: (nread, bytes) => connection.feed(bytes.subarray(0, nread)),
    },
  });
  connection = new Connection(socket, () => socket.resume());
  socket.on('error', () => {});
  socket.on('close', () => connection.closed());
}

/**
 * The `hijack` mode: node:http reads every head (and answers POST and HEAD), and a PATCH's body is taken off its
 * parser, as node:http itself does for 'upgrade': once the bytes the parser already took are out of `req`, the
 * parser gives the socket's stream back (`socket.parser.unconsume()`), its 'data' listener is removed and the
 * handle is told to read again (`socket._handle.readStart()`), all undocumented, and the body is read from the
 * socket's own chunks as in `alloc`. The parser is left mid-body, so
 * the connection cannot carry another request: the 204 says `Connection: close`.
 */
function hijackServer() {
  return http.createServer((req, res) => {
    const path = fileOf(req.url ?? '');
    if (req.method === 'POST' && req.url === prefix) {
      const id = randomUUID();
      fs.writeFile(join(directory, id), '', () =>
        res.writeHead(201, { Location: prefix + id, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0' }).end());
      return;
    }
    if (req.method === 'HEAD' && path !== null) {
      fs.stat(path, (error, stats) => {
        if (error) res.writeHead(404).end();
        else res.writeHead(200, { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(stats.size) }).end();
      });
      return;
    }
    if (req.method !== 'PATCH' || path === null) return void res.writeHead(404).end();
    const socket = req.socket;
    // The 'request' event fires inside the parser's execute(): the rest of the same read is parsed into req
    // after it returns, so the parser is taken off on the next tick, before the event loop reads again.
    req.pause();
    process.nextTick(() => {
      const early = [];
      for (let chunk = req.read(); chunk !== null; chunk = req.read()) early.push(chunk);
      socket.parser.unconsume();
      for (const listener of socket.listeners('data')) if (listener.name === 'bound socketOnData') socket.off('data', listener);
      const connection = new Connection(socket, () => {
        if (!connection.paused) socket.resume();
      });
      const remaining = Number(req.headers['content-length'] ?? 0);
      connection.request = { method: 'PATCH', path: req.url, close: true, contentLength: remaining, offset: 0 };
      connection.remaining = remaining;
      // Chunks that arrive before the file is open wait in `early` (a flowing socket drops what nobody takes).
      let open = false;
      socket.on('data', (chunk) => {
        if (!open) return void early.push(chunk);
        if (!connection.feed(chunk)) socket.pause();
      });
      socket.on('close', () => connection.closed());
      // node:http stopped the handle while req was paused, and the socket's stream still thinks a read is
      // pending (nothing was pushed to it while the parser consumed the handle), so resume() cannot restart it.
      socket._handle.reading = true;
      socket._handle.readStart();
      fs.open(path, 'r+', (error, fd) => {
        if (error) return void socket.destroy();
        open = true;
        connection.fd = fd;
        connection.position = Number(req.headers['upload-offset'] ?? 0);
        if (early.length > 0 && !connection.feed(Buffer.concat(early))) socket.pause();
        else if (remaining === 0) connection.finishBody();
      });
    });
  });
}

if (isMainThread) for (let index = 1; index < threads; index += 1) new Worker(new URL(import.meta.url), { argv: process.argv.slice(2) });
const server =
  mode === 'hijack'
    ? hijackServer()
    : net.createServer({ pauseOnConnect: mode !== 'alloc', noDelay: true }, mode === 'alloc' ? serveAlloc : serveReuse);
server.listen({ port, host, ...(threads > 1 ? { reusePort: true } : {}) }, () => {
  if (process.env.RAW_ANNOUNCE) console.log(`raw-ingest: ${mode} listening on ${host}:${server.address().port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
