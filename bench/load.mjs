// Load generator: one scenario against one running server, then exit. It speaks raw tus over
// node:http with keep-alive agents, on loopback only, bounded in count (the figures in
// lib/config.mjs) and in time (BENCH_DEADLINE_SECONDS). Prints one JSON line on stdout.
//
// Usage: node bench/load.mjs <scenario> <endpoint> [serverPid]
//   scenario: large-chunked | large-single | small | concurrent | resume
//   endpoint: http://127.0.0.1:<port>/files/
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { config } from './lib/config.mjs';
import {
  create,
  head,
  keepAliveAgent,
  MB,
  patch,
  patchAll,
  percentile,
  rssSampler,
  treeCpuMs,
} from './lib/tus-client.mjs';

const [scenario, endpoint, pidArgument] = process.argv.slice(2);
const serverPid = pidArgument ? Number(pidArgument) : 0;
if (!scenario || !endpoint) {
  console.error('usage: node bench/load.mjs <scenario> <endpoint> [serverPid]');
  process.exit(64);
}
const { hostname } = new URL(endpoint);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname) && !hostname.startsWith('127.')) {
  console.error(`load.mjs only targets loopback, not ${hostname}`);
  process.exit(64);
}

const seconds = (ms) => ms / 1000;

async function largeChunked() {
  const agent = keepAliveAgent(1);
  const started = performance.now();
  const url = await create(endpoint, agent, config.largeBytes);
  await patchAll(url, agent, config.largeBytes, config.largeChunkBytes);
  const elapsed = performance.now() - started;
  return {
    bytes: config.largeBytes,
    seconds: seconds(elapsed),
    mbPerSecond: config.largeBytes / MB / seconds(elapsed),
  };
}

async function largeSingle() {
  const agent = keepAliveAgent(1);
  const started = performance.now();
  const url = await create(endpoint, agent, config.largeBytes);
  await patch(url, agent, 0, config.largeBytes);
  const elapsed = performance.now() - started;
  return {
    bytes: config.largeBytes,
    seconds: seconds(elapsed),
    mbPerSecond: config.largeBytes / MB / seconds(elapsed),
  };
}

/** The small uploads of one run (`count` of them, 32 clients); their latencies, in the order they ended. */
async function smallUploads(agent, count) {
  const latencies = [];
  let next = 0;
  const client = async () => {
    while (next < count) {
      next += 1;
      const started = performance.now();
      const url = await create(endpoint, agent, config.smallBytes);
      await patch(url, agent, 0, config.smallBytes);
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: config.smallClients }, client));
  return latencies;
}

/** BENCH_SMALL_WARMUP uploads before the measured ones (and before the server's CPU is first read). */
async function smallWarmUp() {
  if (config.smallWarmup > 0) await smallUploads(keepAliveAgent(config.smallClients), config.smallWarmup);
}

async function small() {
  const agent = keepAliveAgent(config.smallClients);
  const started = performance.now();
  const latencies = await smallUploads(agent, config.smallCount);
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    uploads: latencies.length,
    clients: config.smallClients,
    warmup: config.smallWarmup,
    seconds: seconds(elapsed),
    uploadsPerSecond: latencies.length / seconds(elapsed),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function concurrent() {
  const agent = keepAliveAgent(config.concurrentUploads);
  const chunk = Math.min(config.concurrentChunkBytes, config.concurrentBytes);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: config.concurrentUploads }, async () => {
      const url = await create(endpoint, agent, config.concurrentBytes);
      await patchAll(url, agent, config.concurrentBytes, chunk);
    }),
  );
  const elapsed = performance.now() - started;
  const bytes = config.concurrentUploads * config.concurrentBytes;
  return {
    uploads: config.concurrentUploads,
    bytes,
    seconds: seconds(elapsed),
    mbPerSecond: bytes / MB / seconds(elapsed),
  };
}

// Create, send half of one PATCH and cut the connection, then time what a client does to
// resume: HEAD for the offset and PATCH the rest. A 409/423 (the server still holds the cut
// request), an offset that moves under us or a 5xx is retried after 5 ms, and counted.
async function resume() {
  const agent = keepAliveAgent(2);
  const size = config.resumeBytes;
  const half = Math.floor(size / 2);
  const latencies = [];
  let retries = 0;
  let keptBytes = 0;
  for (let i = 0; i < config.resumeCount; i++) {
    const url = await create(endpoint, agent, size);
    const cut = await patch(url, agent, 0, size, { cutAfter: half });
    if (!cut.cut) throw new Error('resume: the cut PATCH completed');
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      if (attempt === 200) throw new Error('resume: still refused after 200 attempts');
      try {
        const offset = await head(url, agent);
        await patch(url, agent, offset, size - offset);
        keptBytes += offset;
        break;
      } catch (error) {
        // What tus-js-client retries too: a lock still held, an offset that moved, a 5xx.
        if (!/got (409|423|5\d\d)|Upload-Offset/.test(String(error))) throw error;
        retries += 1;
        await sleep(5);
      }
    }
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  return {
    resumes: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    retries,
    keptFraction: keptBytes / (half * config.resumeCount),
  };
}

const scenarios = {
  'large-chunked': largeChunked,
  'large-single': largeSingle,
  small,
  concurrent,
  resume,
};
const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(64);
}

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ scenario, error: `deadline of ${config.deadlineSeconds} s reached` }));
  process.exit(2);
}, config.deadlineSeconds * 1000);

// Not measured: the server's CPU and peak RSS are read from here on.
if (scenario === 'small') await smallWarmUp();
const sampler = rssSampler(serverPid);
const cpuBefore = treeCpuMs(serverPid);
try {
  const figures = await run();
  const peakRssMB = serverPid ? sampler.stop() / MB : null;
  const processes = serverPid ? sampler.processes : null;
  // The server's CPU over the run (every process and thread of its tree), per upload where there are uploads:
  // unlike uploads/s, it does not depend on what else the machine runs at the time.
  const serverCpuMs = serverPid ? treeCpuMs(serverPid) - cpuBefore : null;
  const cpuMsPerUpload = serverCpuMs !== null && figures.uploads ? serverCpuMs / figures.uploads : null;
  console.log(JSON.stringify({ scenario, ...figures, peakRssMB, processes, serverCpuMs, cpuMsPerUpload }));
  clearTimeout(deadline);
  process.exit(0);
} catch (error) {
  sampler.stop();
  console.log(JSON.stringify({ scenario, error: String(error?.message ?? error) }));
  process.exit(1);
}
