// What the hook event path costs the event loop between the upload lifecycle and a transport, A against B in
// one process (issue 20, point 4). Each build's own dist/ is loaded: the request description
// (tus/request-info.js `describeRequest`, on a stand-in request and response), the upload observer
// (uploads/hook-bridge.js), the engine, its chain and runner, and the outbox with its journal file; the target
// is a broker stand-in that confirms each event on the next turn of the event loop. Each upload is a post-create
// and a post-finish, one upload per turn (as requests come in a loaded server).
//
// hooks-overhead.mjs measures the whole server, where the file system's cost of creating each upload's files
// varies from run to run by more than this path costs; here the two builds run in turns (batches of
// BENCH_EVENT_PATH_BATCH uploads, A B B A A B ...) in one process, so what else the machine does weighs on both
// alike. Prints the median and lowest CPU microseconds per event (process.cpuUsage) of each build.
//
// Usage: node bench/hook-event-path.mjs [A_ROOT] [B_ROOT]   (two Wharf checkouts, built; both default to this one)
//   BENCH_EVENT_PATH_ROUNDS (30), BENCH_EVENT_PATH_BATCH (1000 uploads), BENCH_EVENT_PATH_WARMUP (3000 uploads per
//   build first; 101000 shows a process that has numbered more uploads than it remembers, see event-sequence.ts).
//   BENCH_EVENT_PATH_CONFIRM_MS (0: the next turn): how long the stand-in takes to confirm. The journal writes no
//   line for an event confirmed within 5 ms (outbox-journal.ts, addLineDelayMs); 10 shows the path of events
//   whose lines are written, as RabbitMQ's and Kafka's are under load.
import { EventEmitter, setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = path.resolve(import.meta.dirname, '..');
const roots = [process.argv[2] ?? here, process.argv[3] ?? here].map((root) => path.resolve(root));
const rounds = Number(process.env.BENCH_EVENT_PATH_ROUNDS ?? 30);
const batch = Number(process.env.BENCH_EVENT_PATH_BATCH ?? 1000);
const warmup = Number(process.env.BENCH_EVENT_PATH_WARMUP ?? 3000);
const confirmMs = Number(process.env.BENCH_EVENT_PATH_CONFIRM_MS ?? 0);
const quiet = { info() {}, warn() {}, error() {}, debug() {}, isLevelEnabled: (level) => level !== 'debug' };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A request as node:http gives it, with what describeRequest reads. */
function request(method, url, rawHeaders) {
  const headers = {};
  for (let index = 0; index < rawHeaders.length; index += 2) headers[rawHeaders[index].toLowerCase()] = rawHeaders[index + 1];
  return { method, url, rawHeaders, headers, socket: { remoteAddress: '127.0.0.1', remotePort: 40000, encrypted: false } };
}

/** A response that is answered (201) after the turn, as the server's are. */
function response() {
  const res = new EventEmitter();
  res.writableFinished = false;
  res.headersSent = false;
  res.statusCode = 201;
  res.closed = false;
  res.destroyed = false;
  return res;
}

async function build(root, label) {
  const load = (file) => import(pathToFileURL(path.join(root, 'dist', file)).href);
  const { HookEngine } = await load('hooks/engine.js');
  const { Outbox } = await load('hooks/delivery/outbox.js');
  const { OutboxControl } = await load('hooks/delivery/outbox-control.js');
  const { FileOutboxStore } = await load('hooks/delivery/outbox-file-store.js');
  const { RunnerLink } = await load('hooks/runner-link.js');
  const { HookObserver } = await load('uploads/hook-bridge.js');
  const { describeRequest } = await load('tus/request-info.js');
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-event-path-'));
  const broker = {
    describe: () => 'amqp://127.0.0.1:5672/wharf',
    requestHeaders: [],
    deliver: () =>
      new Promise((resolve) => {
        const confirm = () => resolve({ kind: 'delivered' });
        if (confirmMs > 0) setTimeout(confirm, confirmMs);
        else setImmediate(confirm);
      }),
  };
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  const link = new RunnerLink();
  const outbox = new Outbox(new Map([['amqp', broker]]), {
    store: new FileOutboxStore(folder),
    limit: 100_000,
    concurrency: 64,
    retryPolicy: () => ({ kind: 'backoff', initialMs: 200, maxMs: 30_000 }),
    logger: quiet,
    signal: closing.signal,
    deliver: (transport, delivery, attempt) => link.deliver(transport, delivery, attempt),
    onRetry: (transport, entry, attempt) => link.retrying(transport, entry.delivery, attempt),
  });
  const delivery = new OutboxControl(outbox, {
    httpTransport: () => {
      throw new Error('no HTTP targets here');
    },
    deliverOnce: (transport, one) => link.deliverOnce(transport, one),
    signal: closing.signal,
    onTargetsChanged: () => link.targetsChanged(),
  });
  const config = {
    enabledEvents: new Set(['post-create', 'post-receive', 'post-finish', 'post-terminate']),
    format: 'default',
    httpUrls: [],
    postConcurrency: 64,
    postQueueLimit: 10_000,
    executableTimeoutMs: 30_000,
    httpTimeoutMs: 30_000,
    httpProxyHeaders: [],
  };
  const engine = new HookEngine(config, quiet, {
    transports: [],
    brokers: [broker],
    outboxNames: new Map([[broker, 'amqp']]),
    outbox,
    delivery,
    link,
    closing,
  });
  await outbox.ready();
  const observer = new HookObserver(engine, { describe: (file) => ({ kind: 'file', path: `/data/${file}` }) }, '/files');
  const created = ['Host', '127.0.0.1:1080', 'Tus-Resumable', '1.0.0', 'Upload-Length', '65536', 'Connection', 'keep-alive'];
  const patched = ['Host', '127.0.0.1:1080', 'Tus-Resumable', '1.0.0', 'Upload-Offset', '0',
    'Content-Type', 'application/offset+octet-stream', 'Content-Length', '65536', 'Connection', 'keep-alive'];
  let serial = 0;
  const answered = [];
  const upload = () => {
    serial += 1;
    const id = `${label}${serial.toString(16).padStart(31, '0')}`;
    const record = { id, offset: 0, length: 65_536, path: id, createdAt: Date.now(), isPartial: false, isFinal: false,
      parts: null, storage: 'file', metadata: {} };
    const post = response();
    observer.notify('post-create', record, describeRequest(request('POST', '/files/', created), 'POST', false, 'tus-v1', post, engine.hookSet));
    const patch = response();
    observer.notify('post-finish', { ...record, offset: 65_536 },
      describeRequest(request('PATCH', `/files/${id}`, patched), 'PATCH', false, 'tus-v1', patch, engine.hookSet));
    answered.push(post, patch);
  };
  const answer = () => {
    for (const res of answered.splice(0)) {
      res.headersSent = true;
      res.writableFinished = true;
      res.emit('finish');
      res.closed = true;
      res.emit('close');
    }
  };
  return {
    root,
    async run(uploads) {
      for (let index = 0; index < uploads; index++) {
        upload();
        await nextTurn();
        answer();
      }
      await outbox.idle();
    },
    async close() {
      await engine.drain(1000);
      await engine.close();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

const builds = [await build(roots[0], 'a'), await build(roots[1], 'b')];
for (const one of builds) await one.run(warmup);
const perEvent = builds.map(() => []);
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
  for (const index of order) {
    const before = process.cpuUsage();
    await builds[index].run(batch);
    const used = process.cpuUsage(before);
    perEvent[index].push((used.user + used.system) / batch / 2);
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [index, one] of builds.entries()) {
  console.log(
    `${'AB'[index]} ${one.root}: ${median(perEvent[index]).toFixed(1)} us CPU per event (median of ${rounds} batches of ` +
      `${batch} uploads), lowest ${Math.min(...perEvent[index]).toFixed(1)}`,
  );
}
for (const one of builds) await one.close();
