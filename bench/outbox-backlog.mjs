// Outbox backlog benchmark (issue 20): what adding and dispatching one post-hook event costs the event loop
// when the outbox already holds a backlog for a target that is down (a broker outage), against an empty
// outbox. Runs the built outbox (dist/) in this process with its default store (the journal file), one
// target that is down and one that answers at once, and every event of its own upload (one lane each: the
// worst case for a scan over lanes).
//
// For each backlog size (BENCH_BACKLOGS, default 0,50000): queue that many events for the down target and let
// it fail once (it then waits its backoff, 10 minutes here), then time BENCH_OUTBOX_EVENTS (default 1000)
// more events for the down target (add + dispatch) and as many for the up one (add + dispatch + delivery).
// Figures are CPU microseconds of this process per event (process.cpuUsage), medians over BENCH_ROUNDS.
//
// Usage: node bench/outbox-backlog.mjs [--root DIR] [--results FILE]
//   --root: the Wharf checkout whose dist/ to load (default: this one), to compare two builds.
//   --results: appends one JSON record per backlog size (scenario "outbox-backlog") for a report.
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const argument = (name) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
};
const root = path.resolve(argument('--root') ?? path.join(import.meta.dirname, '..'));
const resultsFile = argument('--results');
const backlogs = (process.env.BENCH_BACKLOGS ?? '0,50000').split(',').map(Number);
const events = Number(process.env.BENCH_OUTBOX_EVENTS ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

const load = (file) => import(pathToFileURL(path.join(root, 'dist/hooks/delivery', file)).href);
const { Outbox } = await load('outbox.js');
const { FileOutboxStore } = await load('outbox-file-store.js');

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const request = { uri: '/files/', method: 'POST', remoteAddr: null, headers: {} };
let serial = 0;
function delivery() {
  serial += 1;
  const uploadId = `u${serial.toString(16).padStart(12, '0')}`;
  return {
    eventId: `e${serial}`,
    event: 'post-finish',
    hook: 'post-finish',
    uploadId,
    sequence: 1,
    payload: JSON.stringify({ Upload: { ID: uploadId, Size: 65536, Offset: 65536 } }),
    request,
  };
}

function transport(up) {
  return {
    describe: () => (up ? 'up' : 'down'),
    async deliver() {
      return up ? { kind: 'delivered' } : { kind: 'unreachable', detail: 'down' };
    },
  };
}

const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function oneRound(backlog) {
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-bench-'));
  const controller = new AbortController();
  const outbox = new Outbox(
    new Map([
      ['down', transport(false)],
      ['up', transport(true)],
    ]),
    {
      store: new FileOutboxStore(folder),
      limit: backlog + 3 * events + 10,
      concurrency: 16,
      initialBackoffMs: 600_000,
      maxBackoffMs: 600_000,
      logger: quiet,
      signal: controller.signal,
      deliver: (t, d) => t.deliver(d),
    },
  );
  await outbox.ready();
  // The backlog: the down target fails its first attempts and then waits its backoff.
  for (let i = 0; i < backlog; i++) await outbox.add('down', delivery());
  await new Promise((resolve) => setTimeout(resolve, 50));
  const pendingBefore = outbox.pending;

  let started = cpuMicros();
  for (let i = 0; i < events; i++) await outbox.add('down', delivery());
  const downMicros = (cpuMicros() - started) / events;

  started = cpuMicros();
  const before = outbox.pending;
  for (let i = 0; i < events; i++) await outbox.add('up', delivery());
  while (outbox.pending > before) await new Promise((resolve) => setImmediate(resolve));
  const upMicros = (cpuMicros() - started) / events;

  controller.abort();
  await outbox.close();
  await rm(folder, { recursive: true, force: true });
  return { backlog, waiting: pendingBefore, downMicros, upMicros };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const byBacklog = new Map(backlogs.map((backlog) => [backlog, []]));
for (let round = 1; round <= rounds; round++) {
  for (const backlog of backlogs) {
    const run = await oneRound(backlog);
    byBacklog.get(backlog).push(run);
    console.log(
      `round ${round} backlog ${run.waiting}: add for the down target ${run.downMicros.toFixed(1)} us/event, ` +
        `add + delivery for the up target ${run.upMicros.toFixed(1)} us/event`,
    );
  }
}
for (const [backlog, runs] of byBacklog) {
  const record = {
    scenario: 'outbox-backlog',
    server: 'wharf',
    backlog,
    downAddMicros: median(runs.map((run) => run.downMicros)),
    upDeliveryMicros: median(runs.map((run) => run.upMicros)),
  };
  console.log(JSON.stringify(record));
  if (resultsFile) await appendFile(resultsFile, `${JSON.stringify(record)}\n`);
}
