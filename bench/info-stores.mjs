// Uploads per second with each info storage: file-info-storage, redis-info-storage, db-info-storage.
// One wharf process per run (file data storage in a fresh temporary folder), runs alternating between the
// stores, medians reported. Every upload is POST + PATCH + PATCH (two compare-and-set record writes and
// two lock round trips on the write path), from BENCH_INFO_CLIENTS concurrent keep-alive clients.
//
// Usage: node bench/info-stores.mjs            (needs `npm run build` and scripts/services/{redis,postgres}.sh)
//   BENCH_INFO_UPLOADS (default 2000) BENCH_INFO_CLIENTS (32) BENCH_INFO_ROUNDS (3) BENCH_INFO_BYTES (16384)
//   BENCH_REDIS_URL, BENCH_POSTGRES_URL (defaults: the test services on loopback)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { create, keepAliveAgent, patch } from './lib/tus-client.mjs';

const uploads = Number(process.env.BENCH_INFO_UPLOADS ?? 2000);
const clients = Number(process.env.BENCH_INFO_CLIENTS ?? 32);
const rounds = Number(process.env.BENCH_INFO_ROUNDS ?? 3);
const bytes = Number(process.env.BENCH_INFO_BYTES ?? 16 * 1024);
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:16379/0';
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://wharf:wharf@127.0.0.1:15432/wharf_test';
const repo = path.resolve(import.meta.dirname, '..');

const stores = {
  file: [],
  redis: ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl],
  postgres: ['--info-storage', 'db-info-storage', '--info-db-dsn', postgresUrl],
};

async function startWharf(args) {
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-bench-info-'));
  const child = spawn(
    process.execPath,
    [
      path.join(repo, 'bin/wharf.js'),
      ...['--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--info-dir', dir, '--no-access'],
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (String(entry.msg).startsWith('wharf listening')) resolve(entry.port);
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}/files/`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function run(name) {
  const server = await startWharf(stores[name]);
  const agent = keepAliveAgent(clients);
  try {
    let next = 0;
    const half = Math.floor(bytes / 2);
    const worker = async () => {
      while (next < uploads) {
        next++;
        const url = await create(server.endpoint, agent, bytes);
        await patch(url, agent, 0, half);
        await patch(url, agent, half, bytes - half);
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, worker));
    const seconds = (performance.now() - started) / 1000;
    return uploads / seconds;
  } finally {
    agent.destroy();
    await server.stop();
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = Object.fromEntries(Object.keys(stores).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const name of Object.keys(stores)) {
    const rate = await run(name);
    results[name].push(rate);
    console.error(`round ${round + 1}: ${name} ${rate.toFixed(0)} uploads/s`);
  }
}
const fileMedian = median(results.file);
console.log(`| info storage | uploads/s (median of ${rounds}) | runs | vs file |`);
console.log('|---|---|---|---|');
for (const [name, rates] of Object.entries(results)) {
  const m = median(rates);
  console.log(
    `| ${name} | ${m.toFixed(0)} | ${rates.map((rate) => rate.toFixed(0)).join(', ')} | ${(m / fileMedian).toFixed(2)} |`,
  );
}
console.log(
  `\n${uploads} uploads of ${bytes} bytes each (POST + 2 PATCH), ${clients} concurrent clients, one instance, Node ${process.version}.`,
);
