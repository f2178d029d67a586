// Hook overhead: small uploads per second (the `small` scenario of load.mjs: create + one PATCH each)
// with no hooks, with a blocking HTTP pre-create hook, and with every post hook on an HTTP target.
// Wharf always runs; rustus runs beside it when bench/setup.sh installed it, with the same hooks.
// The hook receiver is a separate process answering 200 at once, so the figures are the servers' cost.
//
// Usage: node bench/hooks-overhead.mjs            (BENCH_ROUNDS, BENCH_SMALL_COUNT as in run.sh)
// Prints one line per run and a summary table; appends the JSON to bench/out/hooks-overhead.jsonl.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const bench = import.meta.dirname;
const root = path.resolve(bench, '..');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const rustusBin = path.join(bench, '.peers/bin/rustus');

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

function startServer(name, port, dataDir, hookArgs) {
  const args =
    name === 'wharf'
      ? [path.join(root, 'bin/wharf.js'), '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir,
         '--info-dir', dataDir, '--no-access', '--log-level', 'error', ...hookArgs]
      : ['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--info-dir', dataDir,
         '--log-level', 'ERROR', ...hookArgs];
  const command = name === 'wharf' ? process.execPath : rustusBin;
  return spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([new Promise((resolve) => child.once('exit', resolve)), sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
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

const servers = ['wharf', ...(existsSync(rustusBin) ? ['rustus'] : [])];
if (servers.length === 1) console.error('hooks-overhead: rustus not installed (bash bench/setup.sh); Wharf only');
const receiverPort = await freePort();
const receiver = spawn(process.execPath, ['-e', receiverSource, String(receiverPort)], { stdio: 'inherit' });
await waitForPort(receiverPort, receiver);
const hookUrl = `http://127.0.0.1:${receiverPort}/hooks`;
await mkdir(path.join(bench, 'out'), { recursive: true });
const results = [];
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [mode, hookArgs] of Object.entries(modes)) {
      for (const server of servers) {
        const port = await freePort();
        const dataDir = await mkdtemp(path.join(bench, 'out', 'hooks-data-'));
        const child = startServer(server, port, dataDir, hookArgs(hookUrl));
        try {
          await waitForPort(port, child);
          const result = await runLoad(port);
          results.push({ server, mode, round, ...result });
          console.log(
            `round ${round} ${server.padEnd(6)} ${mode.padEnd(24)} ${result.uploadsPerSecond.toFixed(1)} uploads/s p50 ${result.p50Ms.toFixed(1)} ms`,
          );
        } finally {
          await stop(child);
          await rm(dataDir, { recursive: true, force: true });
        }
      }
    }
  }
} finally {
  await stop(receiver);
}

const stamp = new Date().toISOString();
await appendFile(
  path.join(bench, 'out', 'hooks-overhead.jsonl'),
  `${results.map((result) => JSON.stringify({ stamp, ...result })).join('\n')}\n`,
);
console.log('\nmedian uploads/s (ratio to the same server without hooks)');
for (const server of servers) {
  const base = median(results.filter((r) => r.server === server && r.mode === 'no hooks').map((r) => r.uploadsPerSecond));
  for (const mode of Object.keys(modes)) {
    const value = median(results.filter((r) => r.server === server && r.mode === mode).map((r) => r.uploadsPerSecond));
    console.log(`${server.padEnd(6)} ${mode.padEnd(24)} ${value.toFixed(1).padStart(8)}  ×${(value / base).toFixed(2)}`);
  }
}
if (servers.includes('rustus')) {
  console.log('\nWharf ÷ rustus, same hooks');
  for (const mode of Object.keys(modes)) {
    const of = (server) =>
      median(results.filter((r) => r.server === server && r.mode === mode).map((r) => r.uploadsPerSecond));
    console.log(`${mode.padEnd(24)} ×${(of('wharf') / of('rustus')).toFixed(2)}`);
  }
}
