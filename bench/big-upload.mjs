// One 2 GiB upload (BENCH_BIG_BYTES) into Wharf in a single PATCH: throughput, and the peak
// resident memory of the server, which issue 7 requires below 200 MB (a server that buffers
// the body cannot pass). Prints one JSON line on stdout.
//
// Usage: node bench/big-upload.mjs [endpoint serverPid]
//   Without arguments it starts `node bin/wharf.js` itself on a free loopback port with a
//   temporary data dir under bench/out/, and stops it (and removes the data) when done.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { config } from './lib/config.mjs';
import { create, keepAliveAgent, MB, patch, rssSampler, send } from './lib/tus-client.mjs';

const RSS_LIMIT_MB = 200;
let [endpoint, pidArgument] = process.argv.slice(2);
let serverPid = Number(pidArgument ?? 0);
let ownServer = null;
let ownDataDir = null;

function stopOwnServer() {
  if (ownServer && ownServer.exitCode === null) ownServer.kill('SIGKILL');
  if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
  ownDataDir = null;
}
process.on('exit', stopOwnServer);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function startWharf() {
  const root = fileURLToPath(new URL('..', import.meta.url));
  ownDataDir = mkdtempSync(`${root}bench/out/big-upload-`);
  const port = await freePort();
  ownServer = spawn(
    process.execPath,
    [
      'bin/wharf.js',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data-dir',
      ownDataDir,
      '--info-dir',
      ownDataDir,
      '--no-access',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}/files/`;
  for (let i = 0; i < 150 && ownServer.exitCode === null; i++) {
    try {
      await send(url, { method: 'OPTIONS', timeoutMs: 1000 });
      return { url, pid: ownServer.pid };
    } catch {
      await sleep(100);
    }
  }
  throw new Error('bin/wharf.js did not start listening in 15 s');
}

const deadline = setTimeout(() => {
  console.log(
    JSON.stringify({ scenario: 'big-upload', error: `deadline of ${config.deadlineSeconds} s reached` }),
  );
  process.exit(2);
}, config.deadlineSeconds * 1000);

try {
  if (!endpoint) ({ url: endpoint, pid: serverPid } = await startWharf());
  const agent = keepAliveAgent(1);
  const sampler = rssSampler(serverPid);
  const started = performance.now();
  const url = await create(endpoint, agent, config.bigBytes);
  await patch(url, agent, 0, config.bigBytes, { timeoutMs: config.deadlineSeconds * 1000 });
  const seconds = (performance.now() - started) / 1000;
  const peakRssMB = sampler.stop() / MB;
  const result = {
    scenario: 'big-upload',
    bytes: config.bigBytes,
    seconds,
    mbPerSecond: config.bigBytes / MB / seconds,
    peakRssMB,
    rssLimitMB: RSS_LIMIT_MB,
    pass: peakRssMB < RSS_LIMIT_MB,
  };
  console.error(
    `big-upload: ${(config.bigBytes / 2 ** 30).toFixed(2)} GiB in ${seconds.toFixed(2)} s = ${result.mbPerSecond.toFixed(0)} MB/s, ` +
      `peak RSS ${peakRssMB.toFixed(1)} MB (${result.pass ? 'pass' : 'short'}: limit ${RSS_LIMIT_MB} MB)`,
  );
  console.log(JSON.stringify(result));
  clearTimeout(deadline);
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify({ scenario: 'big-upload', error: String(error?.message ?? error) }));
  process.exit(1);
}
