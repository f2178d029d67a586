import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startWharf } from '../support/wharf-process.ts';

/*
 * What a start loads is most of what it costs (docs/architecture.md, "Start cost"); the test suite alone starts
 * Wharf about 900 times per run. This checks the modules rather than the CPU time, which load would blur: a
 * preload writes, as the process exits, the Node builtins it loaded and the CommonJS files it required.
 */
const preload = `
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const loaded = { builtins: process.moduleLoadList, files: Object.keys(require.cache) };
  writeFileSync(process.env.WHARF_TEST_LOADED_FILE, JSON.stringify(loaded));
});
`;

test('a default start (file storage, no hooks, metrics on) loads neither tls, undici nor @opentelemetry/api', async () => {
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-start-cost-'));
  try {
    const preloadFile = path.join(folder, 'preload.mjs');
    const loadedFile = path.join(folder, 'loaded.json');
    await writeFile(preloadFile, preload);
    const wharf = await startWharf({
      env: {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preloadFile}`.trim(),
        WHARF_TEST_LOADED_FILE: loadedFile,
      },
    });
    const metrics = await fetch(`${wharf.origin}/metrics`);
    const text = await metrics.text();
    assert.equal(await wharf.stop(), 0);
    // The metrics are all there, the process ones included.
    assert.equal(metrics.status, 200);
    for (const series of [
      /^process_cpu_seconds_total \d/m,
      /^# TYPE nodejs_gc_duration_seconds histogram$/m,
    ]) {
      assert.ok(series.test(text), `${series} in /metrics`);
    }
    const loaded = JSON.parse(await readFile(loadedFile, 'utf8')) as { builtins: string[]; files: string[] };
    // Positive controls: the lists are real (node:http serves, prom-client and pino are required).
    assert.ok(loaded.builtins.includes('NativeModule http'), 'node:http is listed');
    assert.ok(loaded.files.some((file) => file.endsWith(path.join('prom-client', 'lib', 'registry.js'))));
    assert.ok(loaded.files.some((file) => file.endsWith(path.join('pino', 'pino.js'))));
    for (const builtin of [
      'NativeModule tls',
      'NativeModule https',
      'NativeModule internal/deps/undici/undici',
    ]) {
      assert.ok(!loaded.builtins.includes(builtin), `${builtin} is not loaded`);
    }
    for (const part of ['@opentelemetry', 'tdigest', path.join('prom-client', 'lib', 'pushgateway.js')]) {
      assert.deepEqual(
        loaded.files.filter((file) => file.includes(part)),
        [],
        `${part} is not loaded`,
      );
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
