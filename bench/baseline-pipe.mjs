// The raw limit for Node: a minimal node:http server that pipes each request body to a
// file and answers 204. It speaks just enough tus for bench/load.mjs to drive it with the
// same client code as the real servers (POST creates an empty file, PATCH writes its body at
// Upload-Offset, HEAD reports the file size), but validates nothing, locks nothing and keeps
// no info file: whatever a tus server does beyond this is its own overhead.
// For small uploads (the `small` scenario: POST, then one PATCH of 64 KiB) it does the least a
// node:http server can do: the POST's file stays open for its PATCH, and a body of up to
// 1 MiB is gathered and written with one writev at its offset, then the file is closed (three
// file system calls per upload: open, writev, close).
// Usage: node bench/baseline-pipe.mjs [port] [dataDir]   (or PORT / DATA_DIR env)
import { randomUUID } from 'node:crypto';
import { close, createWriteStream, open, writev } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const port = Number(process.argv[2] ?? process.env.PORT ?? 1090);
const directory = process.argv[3] ?? process.env.DATA_DIR ?? './bench/out/pipe-data';
const host = process.env.HOST ?? '127.0.0.1';
const prefix = '/files/';
// A 1 MiB write buffer (the default is 16 KiB) lets fs.WriteStream gather socket chunks into
// larger writev calls: on this kind of machine it is the faster of the two, so the faster one
// is the limit.
const highWaterMark = Number(process.env.PIPE_HIGH_WATER_MARK ?? 1024 * 1024);
// Bodies up to this size are gathered in memory and written at once; larger ones are piped.
const gatherLimit = 1024 * 1024;
// The file descriptor each POST opened, until the upload's first PATCH takes it.
const created = new Map();

await mkdir(directory, { recursive: true });

function fileOf(url) {
  const id = url.slice(prefix.length);
  return /^[0-9a-f-]{36}$/.test(id) ? join(directory, id) : null;
}

function takeCreated(path) {
  const fd = created.get(path);
  created.delete(path);
  return fd;
}

/** The result of a callback-style fs call, without the promise API's FileHandle objects. */
function callback(call) {
  return new Promise((resolve, reject) => call((error, result) => (error ? reject(error) : resolve(result))));
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === prefix) {
      const id = randomUUID();
      const path = join(directory, id);
      created.set(path, await callback((done) => open(path, 'wx', done)));
      res.writeHead(201, { Location: prefix + id, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0' }).end();
      return;
    }
    const path = fileOf(req.url ?? '');
    if (path === null) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'PATCH') {
      const start = Number(req.headers['upload-offset'] ?? 0);
      const length = Number(req.headers['content-length']);
      if (length <= gatherLimit) {
        const chunks = [];
        for await (const chunk of req) chunks.push(chunk);
        const fd = takeCreated(path) ?? (await callback((done) => open(path, 'r+', done)));
        try {
          const written = await callback((done) => writev(fd, chunks, start, done));
          res.writeHead(204, { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(start + written) }).end();
        } finally {
          close(fd, () => {});
        }
        return;
      }
      // With the POST's descriptor when it is still open (the stream closes it), else the file opened again.
      const fd = takeCreated(path);
      const options = { flags: 'r+', start, highWaterMark, ...(fd === undefined ? {} : { fd }) };
      await pipeline(req, createWriteStream(path, options));
      const { size } = await stat(path);
      res.writeHead(204, { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(size) }).end();
      return;
    }
    if (req.method === 'HEAD') {
      const { size } = await stat(path);
      res.writeHead(200, { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(size) }).end();
      return;
    }
    res.writeHead(405).end();
  } catch {
    // A cut connection ends the pipeline with an error; what reached the file stays there.
    if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
  }
});
server.listen(port, host);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
