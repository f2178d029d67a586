// What the store benchmarks (s3-vs-file.mjs, cloud-vs-s3.mjs) share: a fresh Wharf per store and upload, one
// upload timed with the server's peak RSS, and rounds that alternate the stores' order.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { create, keepAliveAgent, MB, MiB, patchAll, rssSampler, send } from './tus-client.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts bin/wharf.js with `args` on a free port and a fresh data folder named `wharf-bench-<label>-...`. */
export async function startWharf(args, label) {
  const dataDir = mkdtempSync(path.join(tmpdir(), `wharf-bench-${label}-`));
  const child = spawn(
    process.execPath,
    ['bin/wharf.js', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--info-dir', dataDir, '--no-access', ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
  );
  const port = await new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (data) => {
      buffered += data;
      const match = /"port":(\d+)/.exec(buffered);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code}`)));
  });
  child.stdout.resume();
  return {
    endpoint: `http://127.0.0.1:${port}/files/`,
    pid: child.pid,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One upload of `bytes` in PATCHes of `chunkBytes` into a fresh Wharf; returns MB/s and the server's peak RSS. */
export async function uploadOnce(storeArgs, bytes, chunkBytes, label) {
  const wharf = await startWharf(storeArgs, label);
  const agent = keepAliveAgent(1);
  try {
    const sampler = rssSampler(wharf.pid);
    const started = performance.now();
    const url = await create(wharf.endpoint, agent, bytes);
    await patchAll(url, agent, bytes, chunkBytes);
    const seconds = (performance.now() - started) / 1000;
    const peakRss = sampler.stop();
    // Termination removes what was stored, so rounds do not fill the bucket or the emulators.
    await send(url, { method: 'DELETE', agent });
    return { mbPerSecond: bytes / MB / seconds, peakRssMB: peakRss / MB };
  } finally {
    agent.destroy();
    await wharf.stop();
  }
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** The two scenarios: the whole upload in one PATCH, and PATCHes of `chunk` bytes. */
export function scenariosFor(bytes, chunk) {
  return [
    { name: 'one PATCH', chunk: bytes },
    { name: `${chunk / MiB} MiB PATCHes`, chunk },
  ];
}

/**
 * Runs `rounds` rounds of every scenario on every store (name -> Wharf flags), then `afterRound(round, record)`
 * for each round's extra measurements. Returns the results by `<scenario>|<store>` (or the key given to record).
 */
export async function runRounds({ rounds, scenarios, stores, bytes, label, storeWidth, afterRound }) {
  const results = new Map();
  const record = (key, value) => results.set(key, [...(results.get(key) ?? []), value]);
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      // Alternate the order each round so neither store always runs on a warmer disk cache.
      const order = round % 2 === 1 ? Object.keys(stores) : Object.keys(stores).reverse();
      for (const store of order) {
        const result = await uploadOnce(stores[store], bytes, scenario.chunk, label);
        record(`${scenario.name}|${store}`, result);
        console.error(
          `round ${round} ${scenario.name.padEnd(16)} ${store.padEnd(storeWidth)} ${result.mbPerSecond.toFixed(0).padStart(5)} MB/s  peak RSS ${result.peakRssMB.toFixed(0)} MB`,
        );
        await sleep(200);
      }
    }
    await afterRound(round, record);
  }
  return results;
}
