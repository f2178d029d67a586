// Hook overhead: small uploads per second (the `small` scenario of load.mjs: create + one PATCH each)
// with no hooks, with a blocking HTTP pre-create hook, and with every post hook on an HTTP target.
// The hook receiver is a separate process answering 200 at once, so the figures are Wharf's own cost.
// Modes run in turn (A B C A B C ...), BENCH_ROUNDS rounds, the median reported.
//
// Usage: node bench/hooks-overhead.mjs [--results FILE]   (BENCH_ROUNDS, BENCH_SMALL_COUNT as in run.sh)
// Prints one line per run and a summary; with --results, appends run records for report.mjs (run.sh does).
import { spawn } from 'node:child_process';
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

const receiverSource = `
  const http = require('node:http');
  http.createServer((req, res) => { req.resume(); req.on('end', () => res.end()); })
    .listen(Number(process.argv[1]), '127.0.0.1');
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
        const result = await runLoad(port);
        // Server CPU per upload: unlike uploads/s, it does not depend on what else shares the machine.
        const cpuMsPerUpload = ((await cpuSeconds(child.pid)) - cpuBefore) * 1000 / result.uploads;
        results.push({ mode, round, ...result, cpuMsPerUpload });
        console.log(
          `hooks: round ${round} ${mode.padEnd(24)} ${result.uploadsPerSecond.toFixed(1)} uploads/s, p50 ${result.p50Ms.toFixed(1)} ms, server CPU ${cpuMsPerUpload.toFixed(2)} ms/upload`,
        );
      } catch (error) {
        results.push({ mode, round, error: String(error) });
        console.log(`hooks: round ${round} ${mode.padEnd(24)} ERROR ${error}`);
      } finally {
        await stop(child);
        await rm(dataDir, { recursive: true, force: true });
      }
    }
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
const cpu = (mode) => median(results.filter((r) => r.mode === mode && !r.error).map((r) => r.cpuMsPerUpload));
console.log('\nhooks: median uploads/s (ratio to no hooks), server CPU ms per upload (ratio to no hooks)');
for (const mode of Object.keys(modes)) {
  const value = median(ok(mode));
  console.log(
    `hooks: ${mode.padEnd(24)} ${value?.toFixed(1).padStart(8)} x${(value / base).toFixed(2)}  ` +
      `${cpu(mode)?.toFixed(2).padStart(6)} ms x${(cpu(mode) / cpu('no hooks')).toFixed(2)}`,
  );
}
