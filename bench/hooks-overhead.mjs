// Hook overhead: small uploads per second (the `small` scenario of load.mjs: create + one PATCH each)
// with no hooks, with a blocking HTTP pre-create hook, and with every post hook on an HTTP target.
// The hook receiver is a separate process answering 200 at once, so the figures are Wharf's own cost.
// Modes run in turn (A B C A B C ...), BENCH_ROUNDS rounds, the median reported.
//
// Usage: node bench/hooks-overhead.mjs [--results FILE]   (BENCH_ROUNDS, BENCH_SMALL_COUNT as in run.sh)
// Prints one line per run and a summary; with --results, appends run records for report.mjs (run.sh does).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const bench = import.meta.dirname;
const root = path.resolve(bench, '..');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const resultsAt = process.argv.indexOf('--results');
const resultsFile = resultsAt === -1 ? undefined : process.argv[resultsAt + 1];

// GET /stats tells how many hook requests arrived and their mean body size (for the client floor below).
const receiverSource = `
  const http = require('node:http');
  let count = 0, bytes = 0;
  http.createServer((req, res) => {
    if (req.method === 'GET') return res.end(JSON.stringify({ count, meanBytes: count ? bytes / count : 0 }));
    req.on('data', (chunk) => { bytes += chunk.length; });
    req.on('end', () => { count += 1; res.end(); });
  }).listen(Number(process.argv[1]), '127.0.0.1');
`;

// The floor under any HTTP hook: a bare node:http client (keep-alive, 16 requests in flight, the receiver's
// mean body size) sending the same number of requests, its own CPU per request. Prints one JSON line.
const bareClientSource = `
  const http = require('node:http');
  const [port, count, size] = process.argv.slice(1).map(Number);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = Buffer.alloc(size, 'a');
  let sent = 0;
  const one = () => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/hooks', method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': size, 'Hook-Name': 'post-finish',
        'Idempotency-Key': require('node:crypto').randomUUID() } }, (res) => { res.resume(); res.on('end', resolve); });
    req.on('error', reject);
    req.end(body);
  });
  const worker = async () => { while (sent < count) { sent += 1; await one(); } };
  const before = process.cpuUsage();
  Promise.all(Array.from({ length: 16 }, worker)).then(() => {
    const used = process.cpuUsage(before);
    console.log(JSON.stringify({ requests: count, cpuMsPerRequest: (used.user + used.system) / 1000 / count }));
    agent.destroy();
  });
`;

const postHooks = 'post-create,post-receive,post-finish,post-terminate';
const modes = {
  'no hooks': () => [],
  'HTTP pre-create': (url) => ['--hooks-http-urls', url, '--hooks', 'pre-create'],
  'all post hooks on HTTP': (url) => ['--hooks-http-urls', url, '--hooks', postHooks],
  // --admin records every run transition in the run history (files under the info dir here).
  'post hooks on HTTP + admin': (url) => ['--hooks-http-urls', url, '--hooks', postHooks, '--admin'],
};

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child) {
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on ${port}`);
}

function startServer(port, dataDir, hookArgs) {
  const args = [path.join(root, 'bin/wharf.js'), '--host', '127.0.0.1', '--port', String(port), '--data-dir',
    dataDir, '--info-dir', dataDir, '--no-access', '--log-level', 'error', ...hookArgs];
  return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** utime + stime of a process, in seconds (Linux /proc; clock ticks are 100 Hz there). */
async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function runLoad(port) {
  return new Promise((resolve, reject) => {
    const load = spawn(process.execPath, [path.join(bench, 'load.mjs'), 'small', `http://127.0.0.1:${port}/files/`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    load.stdout.on('data', (chunk) => {
      out += chunk;
    });
    load.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`load.mjs exited ${code} without a result`));
      }
    });
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const receiverPort = await freePort();
const receiver = spawn(process.execPath, ['-e', receiverSource, String(receiverPort)], { stdio: 'inherit' });
await waitForPort(receiverPort, receiver);
const hookUrl = `http://127.0.0.1:${receiverPort}/hooks`;
const receiverStats = () => fetch(`http://127.0.0.1:${receiverPort}/stats`).then((response) => response.json());
await mkdir(path.join(bench, 'out'), { recursive: true });
const results = [];
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [mode, hookArgs] of Object.entries(modes)) {
      const port = await freePort();
      const dataDir = await mkdtemp(path.join(bench, 'out', 'hooks-data-'));
      const child = startServer(port, dataDir, hookArgs(hookUrl));
      try {
        await waitForPort(port, child);
        const cpuBefore = await cpuSeconds(child.pid);
        const received = (await receiverStats()).count;
        const result = await runLoad(port);
        // Post hooks may still be on their way when the load ends; what arrived by now is near enough.
        const hookRequests = (await receiverStats()).count - received;
        // Server CPU per upload: unlike uploads/s, it does not depend on what else shares the machine.
        const cpuMsPerUpload = ((await cpuSeconds(child.pid)) - cpuBefore) * 1000 / result.uploads;
        results.push({ mode, round, ...result, cpuMsPerUpload, hookRequests });
        console.log(
          `hooks: round ${round} ${mode.padEnd(24)} ${result.uploadsPerSecond.toFixed(1)} uploads/s, p50 ${result.p50Ms.toFixed(1)} ms, server CPU ${cpuMsPerUpload.toFixed(2)} ms/upload`,
        );
      } catch (error) {
        results.push({ mode, round, error: String(error) });
        console.log(`hooks: round ${round} ${mode.padEnd(24)} ERROR ${error}`);
      } finally {
        await stop(child);
        await rm(dataDir, { recursive: true, force: true });
        // As run.sh does: the next run starts on a quiet disk, not during this one's write-back.
        spawnSync('sync');
      }
    }
  }
  const stats = await receiverStats();
  const postRuns = results.filter((r) => r.mode === 'all post hooks on HTTP' && !r.error);
  const eventsPerUpload = median(postRuns.map((r) => r.hookRequests / r.uploads)) ?? 2;
  const requests = Math.max(1000, Math.round(eventsPerUpload * (postRuns[0]?.uploads ?? 2000)));
  const floor = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', bareClientSource, String(receiverPort), String(requests),
      String(Math.round(stats.meanBytes || 1000))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out.trim()));
      } catch {
        resolve(undefined);
      }
    });
  });
  if (floor !== undefined) {
    results.push({ mode: 'bare client', round: 1, ...floor, eventsPerUpload, meanBytes: stats.meanBytes });
    console.log(
      `hooks: bare node:http client ${floor.cpuMsPerRequest.toFixed(3)} ms CPU per request ` +
        `(${eventsPerUpload.toFixed(1)} post events per upload, ${Math.round(stats.meanBytes)} bytes each)`,
    );
  }
} finally {
  await stop(receiver);
}

const slug = (mode) => `hooks-${mode.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
if (resultsFile) {
  await appendFile(
    resultsFile,
    results
      .map(({ mode, ...rest }) => JSON.stringify({ ...rest, type: 'run', server: 'wharf', scenario: slug(mode), hooks: mode }))
      .join('\n') + '\n',
  );
}
const ok = (mode) => results.filter((r) => r.mode === mode && !r.error).map((r) => r.uploadsPerSecond);
const base = median(ok('no hooks'));
const hookModes = Object.keys(modes);
const cpu = (mode) => median(results.filter((r) => r.mode === mode && !r.error).map((r) => r.cpuMsPerUpload));
console.log('\nhooks: median uploads/s (ratio to no hooks), server CPU ms per upload (ratio to no hooks)');
for (const mode of hookModes) {
  const value = median(ok(mode));
  console.log(
    `hooks: ${mode.padEnd(24)} ${value?.toFixed(1).padStart(8)} x${(value / base).toFixed(2)}  ` +
      `${cpu(mode)?.toFixed(2).padStart(6)} ms x${(cpu(mode) / cpu('no hooks')).toFixed(2)}`,
  );
}
