// bench/report.mjs turns one run's results.jsonl into bench/RESULTS.md. These tests feed it a results file
// written by hand and read the Markdown it writes: the targets of issue 20 as rows with pass, short or not
// measured, every large figure as a share of the loopback sink, and how each server was started.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const report = fileURLToPath(new URL('../../bench/report.mjs', import.meta.url));

const config = {
  type: 'config',
  scale: 1,
  largeBytes: 1024 * 2 ** 20,
  largeChunkBytes: 8 * 2 ** 20,
  smallCount: 2000,
  smallClients: 32,
  smallBytes: 65536,
  hooksCount: 800,
  concurrentUploads: 200,
  concurrentBytes: 16 * 2 ** 20,
  concurrentChunkBytes: Number.MAX_SAFE_INTEGER,
  resumeCount: 5,
  resumeBytes: 8 * 2 ** 20,
  bigBytes: 2048 * 2 ** 20,
  deadlineSeconds: 300,
};

type Run = Record<string, unknown>;
const run = (server: string, scenario: string, figures: Record<string, number | string>, round = 1): Run => ({
  type: 'run',
  server,
  scenario,
  round,
  ...figures,
});
const hooks = (mode: string, uploadsPerSecond: number, round = 1): Run =>
  run('wharf', `hooks-${mode.replace(/\W+/g, '-')}`, { hooks: mode, uploadsPerSecond }, round);

/** One run of every target: concurrent MB/s short, its RSS pass, cut pass, small short on rustus, hooks mixed. */
const measured: Run[] = [
  config,
  {
    type: 'server',
    server: 'wharf',
    command: 'node bin/wharf.js --host 127.0.0.1 --port PORT --no-access --workers 2',
    added: '--workers 2',
  },
  { type: 'server', server: 'tusd', command: 'bench/.peers/bin/tusd -port PORT', added: '' },
  run('wharf', 'large-chunked', { mbPerSecond: 600, processes: 2 }),
  run('tusd', 'large-chunked', { mbPerSecond: 500, processes: 1 }),
  run('sink', 'large-chunked', { mbPerSecond: 1200 }),
  run('wharf', 'concurrent', { mbPerSecond: 900, peakRssMB: 60 }),
  run('tusd', 'concurrent', { mbPerSecond: 1000, peakRssMB: 50 }),
  run('wharf', 'small', { uploadsPerSecond: 500 }),
  run('tusd', 'small', { uploadsPerSecond: 400 }),
  run('rustus', 'small', { uploadsPerSecond: 520 }),
  run('wharf', 'resume', { keptFraction: 0.97, p50Ms: 20 }),
  hooks('no hooks', 400),
  hooks('all post hooks on AMQP', 368), // 8% lost: pass (10%)
  hooks('all post hooks on Kafka', 340), // 15% lost: short (10%)
  hooks('all post hooks on HTTP', 344), // 14% lost: pass (15%)
];

async function resultsOf(records: Run[]): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-bench-report-'));
  try {
    const input = path.join(folder, 'results.jsonl');
    const output = path.join(folder, 'RESULTS.md');
    await writeFile(input, `${records.map((record) => JSON.stringify(record)).join('\n')}\n`);
    await promisify(execFile)(process.execPath, [report, input, '--out', output]);
    return await readFile(output, 'utf8');
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** The cells of the table row whose first cell is `label`. */
function row(markdown: string, label: string): string[] {
  const line = markdown.split('\n').find((text) => text.startsWith(`| ${label} `));
  assert.ok(line, `a row "${label}" in\n${markdown}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
}

test('RESULTS.md holds each target of issue 20 as a row with its figures and pass or short', async () => {
  const markdown = await resultsOf(measured);
  assert.deepEqual(row(markdown, '200 concurrent 16 MiB uploads, MB/s'), [
    '200 concurrent 16 MiB uploads, MB/s',
    'wharf 900 MB/s, tusd 1000 MB/s (0.90×)',
    '≥ 1.0× tusd',
    '**short**',
  ]);
  assert.deepEqual(row(markdown, 'same, peak RSS').slice(1), [
    'wharf 60.0 MB, tusd 50.0 MB (1.20×)',
    '≤ 1.5× tusd',
    'pass',
  ]);
  assert.deepEqual(row(markdown, 'share of the bytes sent before a cut that the server kept').slice(1), [
    'wharf 0.97',
    '≥ 0.95',
    'pass',
  ]);
  assert.deepEqual(row(markdown, 'small uploads/s (2,000 × 64 KiB, 32 clients)').slice(1), [
    'wharf 500, rustus 520 (0.96×), tusd 400 (1.25×)',
    '≥ 1.0× rustus and tusd',
    '**short**',
  ]);
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on AMQP').slice(2), ['≤ 10%', 'pass']);
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on Kafka').slice(1), [
    '15% (340 against 400 uploads/s with no hooks)',
    '≤ 10%',
    '**short**',
  ]);
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on HTTP').slice(2), ['≤ 15%', 'pass']);
  // Not in this run: its row is there all the same, and says so.
  assert.deepEqual(row(markdown, 'post hooks with a 50,000-event backlog').slice(1), [
    'not measured',
    '≤ 10% fewer uploads/s than all post hooks on HTTP with no backlog',
    'not measured',
  ]);
});

test('a target whose server or mode did not run reads "not measured", not pass', async () => {
  const withoutPeers = measured.filter(
    (record) => !(record.server === 'rustus' || record.hooks === 'all post hooks on Kafka'),
  );
  const markdown = await resultsOf(withoutPeers);
  assert.deepEqual(row(markdown, 'small uploads/s (2,000 × 64 KiB, 32 clients)').slice(1), [
    'wharf 500, rustus not measured, tusd 400 (1.25×)',
    '≥ 1.0× rustus and tusd',
    'not measured',
  ]);
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on Kafka').slice(1), [
    'not measured',
    '≤ 10%',
    'not measured',
  ]);
  // The control: what did run still passes.
  assert.equal(row(markdown, 'uploads/s lost to all post hooks on AMQP')[3], 'pass');
});

test('a hook row gives the CPU per upload the hooks added to the server and what their receiver spent', async () => {
  const withCpu = (record: Run, cpuMsPerUpload: number, targetCpuMsPerUpload?: number): Run => ({
    ...record,
    cpuMsPerUpload,
    ...(targetCpuMsPerUpload === undefined ? {} : { targetCpuMsPerUpload }),
  });
  const markdown = await resultsOf([
    ...measured.filter((record) => record.hooks !== 'no hooks' && record.hooks !== 'all post hooks on AMQP'),
    withCpu(hooks('no hooks', 400), 1.5),
    withCpu(hooks('all post hooks on AMQP', 368), 2.1, 0.55),
    withCpu(hooks('all post hooks on AMQP', 360, 2), 2.3, 0.65),
  ]);
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on AMQP').slice(1), [
    '9% (364 against 400 uploads/s with no hooks); CPU per upload: wharf +0.70 ms (2.20 against 1.50), RabbitMQ 0.60 ms',
    '≤ 10%',
    'pass',
  ]);
  // The control: a run without the receiver's figure gives the server's alone; one without CPU figures neither.
  assert.deepEqual(row(markdown, 'uploads/s lost to all post hooks on HTTP').slice(1, 2), [
    '14% (344 against 400 uploads/s with no hooks)',
  ]);
  const serverOnly = await resultsOf([
    ...measured.filter((record) => record.hooks !== 'no hooks' && record.hooks !== 'all post hooks on AMQP'),
    withCpu(hooks('no hooks', 400), 1.5),
    withCpu(hooks('all post hooks on AMQP', 368), 2.1),
  ]);
  assert.equal(
    row(serverOnly, 'uploads/s lost to all post hooks on AMQP')[1],
    '8% (368 against 400 uploads/s with no hooks); CPU per upload: wharf +0.60 ms (2.10 against 1.50)',
  );
});

test('the backlog row reads the runs of a hooks mode named after it, against the same hooks without it', async () => {
  const within = await resultsOf([
    ...measured,
    hooks('post hooks with a 50,000-event backlog', 330),
    hooks('post hooks with a 50,000-event backlog', 320, 2),
  ]);
  assert.deepEqual(row(within, 'post hooks with a 50,000-event backlog').slice(1), [
    '325 against 344 uploads/s (6% fewer)',
    '≤ 10% fewer uploads/s than all post hooks on HTTP with no backlog',
    'pass',
  ]);
  const beyond = await resultsOf([...measured, hooks('post hooks with a 50,000-event backlog', 200)]);
  assert.equal(row(beyond, 'post hooks with a 50,000-event backlog')[3], '**short**');
});

test('every large figure is also a share of the sink, and each server says how it was started', async () => {
  const markdown = await resultsOf(measured);
  const header = row(markdown, 'Figure');
  const shares = row(markdown, '  as a share of the sink');
  assert.equal(shares[header.indexOf('wharf')], '0.50');
  assert.equal(shares[header.indexOf('tusd')], '0.42');
  assert.equal(shares[header.indexOf('sink')], '1.00');
  // Below the 8 MiB PATCH row, not elsewhere: the concurrent run had no sink, so its row has no share.
  const lines = markdown.split('\n');
  const at = lines.findIndex((line) => line.startsWith('| large: 1 GiB in 8 MiB PATCHes, MB/s'));
  assert.match(lines[at + 1] ?? '', /^\| {3}as a share of the sink/);
  assert.equal(lines.filter((line) => line.startsWith('|   as a share of the sink')).length, 1);

  // The concurrent target says how close to the limit it is, when the sink ran there.
  const withSink = await resultsOf([...measured, run('sink', 'concurrent', { mbPerSecond: 1500 })]);
  assert.equal(
    row(withSink, '200 concurrent 16 MiB uploads, MB/s')[1],
    'wharf 900 MB/s, tusd 1000 MB/s (0.90×); wharf = 0.60 of the sink',
  );

  assert.match(markdown, /tuning was passed, except `--workers 2` for wharf \(BENCH_WHARF_ARGS\)/);
  assert.ok(
    markdown.includes(
      '- wharf: `node bin/wharf.js --host 127.0.0.1 --port PORT --no-access --workers 2` (2 processes under load)',
    ),
  );
  assert.ok(markdown.includes('- tusd: `bench/.peers/bin/tusd -port PORT`\n'));
});

test('the raw reference (Node without node:http) is a column of its own and a line that compares it with tusd', async () => {
  const markdown = await resultsOf([
    ...measured,
    run('raw', 'concurrent', { mbPerSecond: 950, peakRssMB: 70 }),
  ]);
  const header = row(markdown, 'Figure');
  assert.equal(row(markdown, 'concurrent: 200 × 16 MiB, MB/s')[header.indexOf('raw')], '950');
  assert.equal(row(markdown, 'concurrent: peak RSS, MB')[header.indexOf('raw')], '70.0');
  assert.match(
    markdown,
    /- Node without node:http's body path \(raw: .*\): 950 MB\/s \(0\.95× tusd\) with 200 concurrent uploads, peak RSS 70\.0 MB \(1\.40× tusd\)/,
  );
  // The targets stay Wharf's: the reference column passes nothing in its place.
  assert.equal(
    row(markdown, '200 concurrent 16 MiB uploads, MB/s')[1],
    'wharf 900 MB/s, tusd 1000 MB/s (0.90×)',
  );
  // Without a raw run, no such line (positive control above).
  assert.doesNotMatch(await resultsOf(measured), /Node without node:http/);
});

test('the small scenario shows the node:http pipe as Node’s floor: its column, wharf/pipe, and CPU per upload', async () => {
  const withPipe = await resultsOf([
    ...measured.map((record) =>
      record.server === 'wharf' && record.scenario === 'small' ? { ...record, cpuMsPerUpload: 1.2 } : record,
    ),
    run('pipe', 'small', { uploadsPerSecond: 1000, cpuMsPerUpload: 0.5 }),
  ]);
  const header = row(withPipe, 'Figure');
  const small = row(withPipe, 'small: 2,000 × 64 KiB, 32 clients, uploads/s');
  assert.equal(small[header.indexOf('pipe')], '1000');
  assert.equal(small[header.indexOf('wharf/pipe')], '0.50×');
  const cpu = row(withPipe, 'small: server CPU per upload, ms');
  assert.equal(cpu[header.indexOf('wharf')], '1.20');
  assert.equal(cpu[header.indexOf('pipe')], '0.50');
  assert.match(
    withPipe,
    /- Node's floor for small uploads: .* took 1000 uploads\/s at 0\.50 ms of server CPU per upload; wharf 500 uploads\/s \(0\.50× the pipe\) at 1\.20 ms \(2\.40× the pipe's CPU\)\./,
  );
  // The control: a run without the pipe in small has neither the line nor a CPU row it did not measure.
  const without = await resultsOf(measured);
  assert.doesNotMatch(without, /Node's floor for small uploads/);
  assert.doesNotMatch(without, /server CPU per upload, ms/);
  assert.match(without, /\| small: 2,000 × 64 KiB, 32 clients, uploads\/s /);
});
