import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot, startWharf } from '../support/wharf-process.ts';

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
    // Positive controls: the lists are real (node:http serves; pino and prom-client are required, from the bundle's
    // vendor.cjs, scripts/bundle-cli.ts).
    assert.ok(loaded.builtins.includes('NativeModule http'), 'node:http is listed');
    assert.ok(
      loaded.files.includes(path.join(repoRoot, 'dist', 'cli-bundle', 'vendor.cjs')),
      'vendor.cjs is required',
    );
    // Not a file of node_modules: the packages a default start needs are in vendor.cjs, and Node's CommonJS loader
    // resolving ~55 files of them cost 3.5 MB of idle RSS and 25 ms of CPU per start (docs/architecture.md).
    assert.deepEqual(
      loaded.files.filter((file) => file.includes(`${path.sep}node_modules${path.sep}`)),
      [],
      'no file of node_modules is required',
    );
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
    // Nor are they bundled into vendor.cjs (esbuild heads each file it bundles with a `// <path>` comment).
    const vendor = await readFile(path.join(repoRoot, 'dist', 'cli-bundle', 'vendor.cjs'), 'utf8');
    assert.match(vendor, /^\/\/ \S*node_modules\/pino\/pino\.js$/m, 'vendor.cjs names the files it holds');
    for (const part of ['@opentelemetry', 'tdigest', 'prom-client/lib/pushgateway.js']) {
      assert.ok(!vendor.includes(part), `${part} is not in vendor.cjs`);
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

/*
 * The command runs its bundle (dist/cli-bundle/, built by scripts/bundle-cli.ts): a handful of files instead of
 * the ~170 modules of dist/, which Node would resolve, compile and link one by one at every start. Module loader
 * hooks (module.register, on Node 20, 22 and 24) append the URL of every ES module the process loads to a file.
 */
const recordModules = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(process.env.WHARF_TEST_LOADED_FILE, url + '\\n');
  return nextLoad(url, context);
}
`;

test("a start loads the command's bundle, not the separate modules of dist/", async () => {
  const folder = await mkdtemp(path.join(tmpdir(), 'wharf-start-cost-'));
  try {
    const hooksFile = path.join(folder, 'record-modules.mjs');
    const preloadFile = path.join(folder, 'register.mjs');
    const loadedFile = path.join(folder, 'loaded.txt');
    await writeFile(hooksFile, recordModules);
    await writeFile(
      preloadFile,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooksFile).href)});\n`,
    );
    // The admin API and its dashboard are on, so their modules (and the dashboard's files) are part of the start.
    const wharf = await startWharf({
      args: ['--admin', '--admin-token', 'start-cost-token'],
      env: {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preloadFile}`.trim(),
        WHARF_TEST_LOADED_FILE: loadedFile,
      },
    });
    const upload = await fetch(`${wharf.endpoint}`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3' },
    });
    const dashboard = await fetch(`${wharf.origin}/admin`);
    const page = await dashboard.text();
    assert.equal(await wharf.stop(), 0);
    assert.equal(upload.status, 201);
    assert.equal(dashboard.status, 200);
    assert.match(page, /<html/i);
    const dist = pathToFileURL(path.join(repoRoot, 'dist')).href;
    const loaded = (await readFile(loadedFile, 'utf8'))
      .split('\n')
      .filter((url) => url.startsWith(`${dist}/`));
    const bundle = `${dist}/cli-bundle/`;
    // Positive control: the recording sees the bundle's entry and its lazily imported server part.
    assert.ok(
      loaded.includes(`${bundle}main.js`),
      `dist/cli-bundle/main.js is not among the ${loaded.length} modules of dist/ loaded: ${loaded.slice(0, 3)} …`,
    );
    assert.ok(loaded.some((url) => /\/cli-bundle\/compose-[\w-]+\.js$/.test(url)));
    assert.deepEqual(
      loaded.filter((url) => !url.startsWith(bundle)),
      [],
      'no module of dist/ outside the bundle',
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

test('every class in the bundle keeps the name it has in src/ (the bundle is built without keepNames)', async () => {
  // esbuild renames apart top-level names two modules share; a class renamed so (WharfError2) would show that name
  // in logs (pino's `type` is the class's name) and in stack traces.
  const source = new Set<string>();
  const sourceFolder = path.join(repoRoot, 'src');
  for (const file of await readdir(sourceFolder, { recursive: true })) {
    if (!file.endsWith('.ts')) continue;
    const text = await readFile(path.join(sourceFolder, file), 'utf8');
    for (const match of text.matchAll(/\bclass\s+([A-Za-z_$][\w$]*)/g)) source.add(match[1] as string);
  }
  const bundleFolder = path.join(repoRoot, 'dist', 'cli-bundle');
  const bundled = new Set<string>();
  for (const file of await readdir(bundleFolder)) {
    if (!file.endsWith('.js')) continue;
    const text = await readFile(path.join(bundleFolder, file), 'utf8');
    // esbuild writes a class as `var Name = class …` (the binding gives the class its name) or `class Name`.
    for (const match of text.matchAll(
      /\b(?:var|let|const)\s+([A-Za-z_$][\w$]*)\s*=\s*class\b|\bclass\s+([A-Za-z_$][\w$]*)/g,
    ))
      bundled.add((match[1] ?? match[2]) as string);
  }
  // Positive control: the bundle's classes are found, the error class among them.
  assert.ok(bundled.has('WharfError'), `WharfError is not among the ${bundled.size} classes of the bundle`);
  assert.deepEqual(
    [...bundled].filter((name) => !source.has(name)),
    [],
    'classes of the bundle named differently from src/',
  );
});

test('vendor.cjs ships with the licence of every package whose code it holds', async () => {
  const bundle = path.join(repoRoot, 'dist', 'cli-bundle');
  const vendor = await readFile(path.join(bundle, 'vendor.cjs'), 'utf8');
  // esbuild heads each file it bundles with a `// <path>` comment: the packages are read from those.
  const held = new Set<string>();
  for (const [, name] of vendor.matchAll(/^\/\/ \S*node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\//gm)) {
    if (name !== undefined) held.add(name);
  }
  assert.ok(held.has('pino') && held.has('prom-client'), [...held].join(', '));
  const notices = await readFile(path.join(bundle, 'vendor.cjs.LICENSES.txt'), 'utf8');
  const sections = new Map<string, string>();
  for (const section of notices.split('\n---\n')) {
    const heading = /^([@\w./-]+) \d+\.\d+\.\d+\S* \(/m.exec(section);
    if (heading?.[1] !== undefined) sections.set(heading[1], section);
  }
  for (const name of held) {
    const section = sections.get(name);
    assert.ok(section !== undefined, `${name} has its licence in vendor.cjs.LICENSES.txt`);
    assert.match(
      section,
      /Permission is hereby granted|Apache License|ISC License|Redistribution and use/,
      name,
    );
  }
  assert.match(sections.get('prom-client') ?? '', /Apache License/);
});
