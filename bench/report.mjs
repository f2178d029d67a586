// Turns one run's results.jsonl into the tables: the targets of issue 20 (pass, short or not measured), then
// medians per server with the ratio subject/peer for every peer, every large-upload figure also as a share of
// the loopback sink (the physical limit), and how each server was started. Prints them and writes
// bench/RESULTS.md with the date, the machine and the versions.
//
// Usage: node bench/report.mjs <results.jsonl> [--subject wharf] [--rounds 3] [--elapsed s]
//          [--data-root dir] [--out bench/RESULTS.md]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { config as configFromEnvironment } from './lib/config.mjs';
import { issueTargets, median } from './lib/targets.mjs';
import { MiB } from './lib/tus-client.mjs';

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    subject: { type: 'string', default: 'wharf' },
    rounds: { type: 'string', default: '' },
    elapsed: { type: 'string', default: '' },
    'data-root': { type: 'string', default: '.' },
    out: { type: 'string', default: '' },
  },
});
const resultsPath = positionals[0];
if (!resultsPath) {
  console.error('usage: node bench/report.mjs <results.jsonl> [--subject wharf] [--out bench/RESULTS.md]');
  process.exit(64);
}
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const rootDir = fileURLToPath(new URL('..', import.meta.url));
const subject = options.subject;

const records = readFileSync(resultsPath, 'utf8')
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => JSON.parse(line));
// The figures the run used (written by run.sh), else those of this environment.
const config = records.find((record) => record.type === 'config') ?? configFromEnvironment;
const runs = records.filter((record) => record.type === 'run');
const unavailable = records.filter((record) => record.type === 'unavailable');
const commands = records.filter((record) => record.type === 'server');

const SERVER_ORDER = ['wharf', 'tusd', 'rustus', 'tus-node', 'sink', 'pipe'];
const rank = (server) => (SERVER_ORDER.includes(server) ? SERVER_ORDER.indexOf(server) : SERVER_ORDER.length);
const servers = [...new Set(runs.map((run) => run.server))]
  .filter((server) => !server.startsWith('dd-'))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
const peers = servers.filter((server) => server !== subject);

function cell(scenario, server, key) {
  const mine = runs.filter((run) => run.scenario === scenario && run.server === server);
  const good = mine.filter((run) => !run.error && typeof run[key] === 'number');
  return { value: median(good.map((run) => run[key])), ok: good.length, total: mine.length };
}

const bytes = (n) =>
  n >= 2 ** 30
    ? `${+(n / 2 ** 30).toFixed(2)} GiB`
    : n >= MiB
      ? `${+(n / MiB).toFixed(2)} MiB`
      : `${+(n / 1024).toFixed(1)} KiB`;
const count = (n) => n.toLocaleString('en-US');
const large = bytes(config.largeBytes);
const higher = 'higher';
const lower = 'lower';
const largeTargets = [
  ['pipe', 0.9],
  ['tusd', 1.0],
  ['rustus', 1.0],
];
// `limit`: a throughput row that is followed by every server's figure as a share of the sink's.
const rows = [
  {
    scenario: 'large-chunked',
    key: 'mbPerSecond',
    better: higher,
    limit: true,
    targets: largeTargets,
    label: `large: ${large} in ${bytes(config.largeChunkBytes)} PATCHes, MB/s`,
  },
  {
    scenario: 'large-single',
    key: 'mbPerSecond',
    better: higher,
    limit: true,
    targets: largeTargets,
    label: `large: ${large} in one PATCH, MB/s`,
  },
  { scenario: 'large-single', key: 'peakRssMB', better: lower, label: 'large, one PATCH: peak RSS, MB' },
  {
    scenario: 'small',
    key: 'uploadsPerSecond',
    better: higher,
    targets: [
      ['rustus', 1.0],
      ['tusd', 1.0],
    ],
    label: `small: ${count(config.smallCount)} × ${bytes(config.smallBytes)}, ${config.smallClients} clients, uploads/s`,
  },
  { scenario: 'small', key: 'p50Ms', better: lower, label: 'small: p50 latency, ms' },
  { scenario: 'small', key: 'p99Ms', better: lower, label: 'small: p99 latency, ms' },
  // Only from runs that measured it (load.mjs gives it since the pipe joined the small scenario).
  { scenario: 'small', key: 'cpuMsPerUpload', better: lower, optional: true, label: 'small: server CPU per upload, ms' },
  {
    scenario: 'concurrent',
    key: 'mbPerSecond',
    better: higher,
    limit: true,
    targets: [['tusd', 1.0]],
    label: `concurrent: ${config.concurrentUploads} × ${bytes(config.concurrentBytes)}, MB/s`,
  },
  {
    scenario: 'concurrent',
    key: 'peakRssMB',
    better: lower,
    targets: [['tusd', 1.5]],
    label: `concurrent: peak RSS, MB`,
  },
  { scenario: 'concurrent', key: 'idleRssMB', better: lower, label: 'idle RSS before the first request, MB' },
  {
    scenario: 'resume',
    key: 'p50Ms',
    better: lower,
    label: `resume: HEAD + PATCH after a cut (${bytes(config.resumeBytes)}), p50 ms`,
  },
  { scenario: 'resume', key: 'keptFraction', better: higher, label: 'resume: share of the sent half kept' },
].filter((row) =>
  runs.some((run) => run.scenario === row.scenario && (!row.optional || typeof run[row.key] === 'number')),
);

const format = (value) =>
  value === undefined
    ? '—'
    : Math.abs(value) >= 100
      ? value.toFixed(0)
      : Math.abs(value) >= 10
        ? value.toFixed(1)
        : value.toFixed(2);

function verdict(row, values) {
  if (!row.targets?.some(([peer]) => peer !== subject)) return '';
  const parts = [];
  let short = false;
  let missing = false;
  for (const [peer, factor] of row.targets.filter(([peer]) => peer !== subject)) {
    const mine = values[subject];
    const theirs = values[peer];
    if (mine === undefined || theirs === undefined || theirs === 0) {
      parts.push(`${peer}: n/a`);
      missing = true;
      continue;
    }
    const ratio = mine / theirs;
    const ok = row.better === higher ? ratio >= factor : ratio <= factor;
    if (!ok) short = true;
    parts.push(
      `${row.better === higher ? '≥' : '≤'}${factor}× ${peer}${ok ? '' : ` (${ratio.toFixed(2)}×)`}`,
    );
  }
  return `${short ? '**short**' : missing ? 'n/a' : 'pass'}: ${parts.join(', ')}`;
}

const header = ['Figure', ...servers, ...peers.map((peer) => `${subject}/${peer}`), 'Target'];
const table = [header];
for (const row of rows) {
  const values = {};
  const cells = servers.map((server) => {
    const { value, ok, total } = cell(row.scenario, server, row.key);
    values[server] = value;
    if (total === 0) return '';
    return ok === total ? format(value) : ok === 0 ? 'error' : `${format(value)} (${ok}/${total} ok)`;
  });
  const ratios = peers.map((peer) =>
    values[subject] !== undefined && values[peer] ? `${(values[subject] / values[peer]).toFixed(2)}×` : '',
  );
  table.push([row.label, ...cells, ...ratios, verdict(row, values)]);
  // The same figures as a share of the physical limit, so "close to the limit" is a number for every server.
  if (row.limit && values.sink) {
    const shares = servers.map((server) => (values[server] === undefined ? '' : (values[server] / values.sink).toFixed(2)));
    table.push(['  as a share of the sink', ...shares, ...peers.map(() => ''), '']);
  }
}

// --- the targets of issue 20 --------------------------------------------------------------
const targetRows = issueTargets(runs, subject, {
  concurrent: `${config.concurrentUploads} concurrent ${bytes(config.concurrentBytes)} uploads, MB/s`,
  small: `small uploads/s (${count(config.smallCount)} × ${bytes(config.smallBytes)}, ${config.smallClients} clients)`,
});
const targetTable = [
  ['Target (issue 20)', 'Measured', 'Goal', 'Verdict'],
  ...targetRows.map(({ target, measured, goal, verdict }) => [target, measured, goal, verdict]),
];

function markdownTable(rowsOfCells) {
  const widths = rowsOfCells[0].map((_, column) =>
    Math.max(...rowsOfCells.map((cells) => String(cells[column]).length)),
  );
  const line = (cells) =>
    `| ${cells.map((text, column) => String(text).padEnd(widths[column])).join(' | ')} |`;
  return [
    line(rowsOfCells[0]),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...rowsOfCells.slice(1).map(line),
  ].join('\n');
}

// --- raw limit, big upload, errors --------------------------------------------------------
const extra = [];
const ddSync = median(
  runs.filter((run) => run.server === 'dd-fdatasync' && run.mbPerSecond).map((run) => run.mbPerSecond),
);
const ddCache = median(
  runs.filter((run) => run.server === 'dd-cache' && run.mbPerSecond).map((run) => run.mbPerSecond),
);
if (ddSync !== undefined) {
  const subjectLarge = cell('large-chunked', subject, 'mbPerSecond').value;
  const pipeLarge = cell('large-chunked', 'pipe', 'mbPerSecond').value;
  extra.push(
    `- Raw limit, ${large} of zeros: \`dd bs=8M conv=fdatasync\` ${format(ddSync)} MB/s (the disk, flushed); ` +
      `\`dd bs=8M\` without the flush ${format(ddCache)} MB/s (the page cache). None of the servers flushes, so they ` +
      `can beat the flushed figure.` +
      (subjectLarge && pipeLarge
        ? ` ${subject} large (8 MiB PATCHes) = ${(subjectLarge / pipeLarge).toFixed(2)}× the node:http pipe, ` +
          `${(subjectLarge / ddCache).toFixed(2)}× dd to the page cache, ${(subjectLarge / ddSync).toFixed(2)}× dd flushed.`
        : ''),
  );
}
const sinkFigures = ['large-chunked', 'large-single', 'concurrent']
  .map((scenario) => [scenario, cell(scenario, 'sink', 'mbPerSecond').value])
  .filter(([, value]) => value !== undefined);
if (sinkFigures.length) {
  extra.push(
    `- Physical limit: the loopback sink (bench/sink, Go, standard library: each PATCH body is read from the socket ` +
      `and written into the page cache through a 64 KiB buffer, nothing validated, locked or recorded) took ` +
      `${sinkFigures.map(([scenario, value]) => `${format(value)} MB/s in ${scenario}`).join(', ')}. The ` +
      `"as a share of the sink" rows divide every server's figure by it.`,
  );
}
const pipeSmall = cell('small', 'pipe', 'uploadsPerSecond').value;
const subjectSmall = cell('small', subject, 'uploadsPerSecond').value;
if (pipeSmall !== undefined && subjectSmall !== undefined) {
  const pipeCpu = cell('small', 'pipe', 'cpuMsPerUpload').value;
  const subjectCpu = cell('small', subject, 'cpuMsPerUpload').value;
  extra.push(
    `- Node's floor for small uploads: the node:http pipe (the POST opens the file, the PATCH gathers its body and ` +
      `writes it with one writev, then closes it; nothing validated, locked or recorded) took ${format(pipeSmall)} ` +
      `uploads/s` +
      (pipeCpu === undefined ? '' : ` at ${format(pipeCpu)} ms of server CPU per upload`) +
      `; ${subject} ${format(subjectSmall)} uploads/s (${(subjectSmall / pipeSmall).toFixed(2)}× the pipe)` +
      (pipeCpu === undefined || subjectCpu === undefined
        ? '.'
        : ` at ${format(subjectCpu)} ms (${(subjectCpu / pipeCpu).toFixed(2)}× the pipe's CPU).`),
  );
}
const subjectIdle = cell('concurrent', subject, 'idleRssMB').value;
const pipeConcurrent = cell('concurrent', 'pipe', 'peakRssMB').value;
if (subjectIdle !== undefined && pipeConcurrent !== undefined) {
  const tusdPeak = cell('concurrent', 'tusd', 'peakRssMB').value;
  extra.push(
    `- Memory floor: ${subject} holds ${format(subjectIdle)} MB before its first request, and the node:http pipe ` +
      `peaks at ${format(pipeConcurrent)} MB with ${config.concurrentUploads} concurrent uploads` +
      (tusdPeak !== undefined && tusdPeak < subjectIdle
        ? `; tusd's peak (${format(tusdPeak)} MB) is below what this Node process holds idle.`
        : '.'),
  );
}
// The raw reference (raw-ingest.mjs): Node reading PATCH bodies without node:http, one round, no target of its own.
const rawRate = cell('concurrent', 'raw', 'mbPerSecond').value;
const rawPeak = cell('concurrent', 'raw', 'peakRssMB').value;
if (rawRate !== undefined && rawPeak !== undefined) {
  const tusdRate = cell('concurrent', 'tusd', 'mbPerSecond').value;
  const tusdPeak = cell('concurrent', 'tusd', 'peakRssMB').value;
  extra.push(
    `- Node without node:http's body path (raw: bench/raw-ingest.mjs shared-sync, its own HTTP/1.1 head parser, ` +
      `every socket read into one 64 KiB buffer and written to the file before the next read; one round): ` +
      `${format(rawRate)} MB/s${tusdRate ? ` (${(rawRate / tusdRate).toFixed(2)}× tusd)` : ''} with ` +
      `${config.concurrentUploads} concurrent uploads, peak RSS ${format(rawPeak)} MB` +
      `${tusdPeak ? ` (${(rawPeak / tusdPeak).toFixed(2)}× tusd)` : ''}: the ceiling for a Node server that ` +
      `reads bodies without node:http (bench/README.md, "Node without node:http").`,
  );
}
const big = runs.find((run) => run.scenario === 'big-upload');
if (big) {
  extra.push(
    big.error
      ? `- Big upload (${bytes(config.bigBytes)}, one PATCH, ${big.server}): **error**: ${big.error}`
      : `- Big upload (${bytes(big.bytes)}, one PATCH, ${big.server}): ${format(big.mbPerSecond)} MB/s, peak RSS ` +
          `${format(big.peakRssMB)} MB: ${big.pass ? 'pass' : '**short**'} (target < ${big.rssLimitMB} MB).`,
  );
}
const hookModes = ['no hooks', 'HTTP pre-create', 'all post hooks on HTTP', 'all post hooks on AMQP', 'all post hooks on Kafka'];
const hookRuns = runs.filter((run) => run.hooks !== undefined && !run.error && !run.skipped);
if (hookRuns.length) {
  const of = (mode) => median(hookRuns.filter((run) => run.hooks === mode).map((run) => run.uploadsPerSecond));
  const off = of('no hooks');
  const parts = hookModes
    .filter((mode) => of(mode) !== undefined)
    .map((mode) => `${mode} ${format(of(mode))} uploads/s (×${(of(mode) / off).toFixed(2)})`);
  extra.push(
    `- Hooks on versus off (${subject} alone, ${count(config.hooksCount ?? config.smallCount)} small uploads per ` +
      `run${config.hooksWarmup > 0 ? ` after ${count(config.hooksWarmup)} not counted (not with a broker down)` : ''}; the HTTP target is a minimal HTTP/1.1 responder answering 200 at once, RabbitMQ and Kafka are the test brokers on the same machine): ${parts.join('; ')}.`,
  );
  const skipped = [...new Set(runs.filter((run) => run.hooks !== undefined && run.skipped).map((run) => run.hooks))];
  if (skipped.length) extra.push(`  - Not run: ${skipped.join(', ')} (the broker did not answer).`);
  const failed = [...new Set(runs.filter((run) => run.hooks !== undefined && run.error).map((run) => `${run.hooks}: ${run.error}`))];
  if (failed.length) extra.push(`  - **Errors**: ${failed.join('; ')}.`);
  const cpu = (mode) => median(hookRuns.filter((run) => run.hooks === mode).map((run) => run.cpuMsPerUpload));
  const bare = hookRuns.find((run) => run.hooks === 'bare client');
  const targetCpu = (mode) =>
    median(hookRuns.filter((run) => run.hooks === mode && typeof run.targetCpuMsPerUpload === 'number').map((run) => run.targetCpuMsPerUpload));
  const receivers = { 'all post hooks on HTTP': 'the HTTP receiver', 'all post hooks on AMQP': 'RabbitMQ', 'all post hooks on Kafka': 'Kafka' };
  const cpuParts = hookModes
    .filter((mode) => cpu(mode) !== undefined)
    .map(
      (mode) =>
        `${mode}: ${subject} ${format(cpu(mode))} ms` +
        (targetCpu(mode) === undefined ? '' : `, ${receivers[mode] ?? 'its target'} ${format(targetCpu(mode))} ms`),
    );
  if (cpuParts.length > 1) {
    extra.push(
      `- CPU per upload, each process's own (/proc), over the same span: ${cpuParts.join('; ')}. The receiver and the ` +
        `brokers run on the same cores as the server and the load generator, so their CPU is taken from the uploads too.`,
    );
  }
  const floor = bare === undefined ? undefined : bare.cpuMsPerRequest * bare.eventsPerUpload;
  if (cpu('no hooks') !== undefined && floor !== undefined) {
    extra.push(
      `- A bare node:http client spends ${bare.cpuMsPerRequest.toFixed(3)} ms of CPU per request, so through ` +
        `node:http's client the ${bare.eventsPerUpload.toFixed(1)} post events of an upload would cost at least ` +
        `${floor.toFixed(2)} ms (×${((cpu('no hooks') + floor) / cpu('no hooks')).toFixed(2)} of the server's CPU with no hooks); ` +
        `Wharf sends to http: targets with its own client (hooks/transports/http1-client.ts), which costs less.`,
    );
  }
}
const resumeRetries = servers
  .map((server) => [
    server,
    runs
      .filter((run) => run.scenario === 'resume' && run.server === server)
      .reduce((sum, run) => sum + (run.retries ?? 0), 0),
  ])
  .filter(([, retries]) => retries > 0);
if (resumeRetries.length) {
  extra.push(
    `- Resume retries (HEAD + PATCH repeated after a 409/423/5xx, summed over rounds): ${resumeRetries.map(([s, n]) => `${s} ${n}`).join(', ')}.`,
  );
}
for (const { server, reason } of unavailable) extra.push(`- **${server} not run**: ${reason}`);

// --- how each server was started ----------------------------------------------------------
// The most processes the subject's tree had under load: its workers (its default, unless BENCH_WHARF_ARGS).
const processesOf = (server) =>
  Math.max(0, ...runs.filter((run) => run.server === server && typeof run.processes === 'number').map((run) => run.processes));
const started = commands.map(({ server, command }) => {
  const processes = processesOf(server);
  return `- ${server}: \`${command}\`${server === subject ? ` (${processes} process${processes === 1 ? '' : 'es'} under load)` : ''}`;
});
const errors = runs.filter((run) => run.error);
for (const run of errors)
  extra.push(`- error: ${run.scenario} on ${run.server}, round ${run.round}: ${run.error}`);

// --- machine and versions -----------------------------------------------------------------
function tryRun(command, args, fallback = 'unknown') {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      cwd: rootDir,
    }).trim();
  } catch {
    return fallback;
  }
}
function packageVersion(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8')).version;
  } catch {
    return 'not installed';
  }
}
const disk = tryRun('df', ['-hT', options['data-root']]).split('\n').at(-1)?.split(/\s+/) ?? [];
const gitRevision = tryRun('git', ['rev-parse', '--short', 'HEAD'], 'no commit yet');
const gitDirty = tryRun('git', ['status', '--porcelain'], '') ? ' + uncommitted changes' : '';
const tusdVersion = /\bmod\s+github\.com\/tus\/tusd\/v2\s+(\S+)/.exec(
  tryRun('go', ['version', '-m', `${benchDir}.peers/bin/tusd`], ''),
)?.[1];
const rustusVersion = tryRun(`${benchDir}.peers/bin/rustus`, ['--version'], '').replace(/^Rustus /, '');
const machine = [
  `${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'})`,
  `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory`,
  disk.length >= 3
    ? `disk ${disk[0]} (${disk[1]}, ${disk[2]}, ${disk[4]} free) mounted at ${disk.at(-1)}`
    : 'disk unknown',
  `Linux ${os.release()}`,
  `Node ${process.versions.node}`,
].join('; ');
const versions = [
  `Wharf ${packageVersion(`${rootDir}package.json`)} (git ${gitRevision}${gitDirty})`,
  `tusd ${tusdVersion ?? 'not installed'}`,
  `rustus ${rustusVersion || 'not installed'}`,
  `@tus/server ${packageVersion(`${benchDir}node_modules/@tus/server/package.json`)}`,
  `@tus/file-store ${packageVersion(`${benchDir}node_modules/@tus/file-store/package.json`)}`,
].join(', ');
const loadAtStart = records.find((record) => record.type === 'load')?.loadavg;
const servicesRunning = records.find((record) => record.type === 'services')?.running;
const loadNow = os
  .loadavg()
  .map((load) => load.toFixed(2))
  .join(' ');
const rounds = options.rounds || String(Math.max(0, ...runs.map((run) => run.round)));
// The bench itself keeps about two processes busy (client and server).
const busy = Number(loadNow.split(' ')[2]) > os.availableParallelism() + 1;
const settings =
  `${rounds} round${rounds === '1' ? '' : 's'}, median reported; BENCH_SCALE=${config.scale}` +
  (options.elapsed ? `; whole run ${Math.floor(options.elapsed / 60)} min ${options.elapsed % 60} s` : '') +
  `; load average (1/5/15 min) ${loadAtStart ? `at the start ${loadAtStart}, ` : ''}at the end ${loadNow}` +
  (busy ? ` on ${os.availableParallelism()} cores: other work shared the machine` : '') +
  (config.smallWarmup > 0
    ? `; each server took ${count(config.smallWarmup)} small uploads before the measured ones of the small rows ` +
      `(not counted, nor their CPU: a steady state, not V8 compiling; BENCH_SMALL_WARMUP)`
    : '; small rows measured on servers just started (BENCH_SMALL_WARMUP=0)') +
  (servicesRunning ? `; **test services were running** (${servicesRunning}), taking CPU from the servers` : '');

const body = [
  `Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
  `Machine: ${machine}`,
  `Versions: ${versions}`,
  `Settings: ${settings}`,
  '',
  markdownTable(targetTable),
  '',
  markdownTable(table),
  '',
  ...extra,
  ...(started.length
    ? [
        '',
        `Every server ran with its defaults: no worker count, buffer size or other tuning was passed${
          commands.some(({ added }) => added)
            ? `, except ${commands
                .filter(({ added }) => added)
                .map(({ server, added }) => `\`${added}\` for ${server} (BENCH_WHARF_ARGS)`)
                .join(', ')}`
            : ''
        }. Each got a ` +
          'loopback address, a port and a fresh folder, and each had its per-request log turned off (no server ' +
          'pays for lines the others do not write); rustus also needs `--max-body-size`, as its default (256 KiB) ' +
          'refuses larger PATCH bodies. The commands as they ran (PORT and DIR stand for the port and the folder):',
        '',
        ...started,
      ]
    : []),
].join('\n');

console.log(`\n${body}\n`);
if (options.out) {
  writeFileSync(
    options.out,
    `# Benchmark results\n\nWritten by \`npm run bench\` (bench/run.sh); see bench/README.md for what each row means.\n` +
      `Compare figures only as ratios within this one run, never absolute figures across runs or machines.\n\n${body}\n`,
  );
  console.log(`bench: wrote ${options.out}`);
}
