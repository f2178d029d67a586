// What a bench script allocates, garbage included, by function: V8's sampling heap profiler started with the
// objects the collector takes back (`--heap-prof` keeps only what is alive at exit), around a bench run in this
// process. Meant for bench/hook-event-path.mjs with two builds: the bytes are also summed per build (by the
// folder of the code that allocated them), so A and B compare in one run.
//
// Usage: node bench/heap-sample.mjs BENCH_SCRIPT [ARGS...]   (e.g. bench/hook-event-path.mjs A_ROOT B_ROOT)
//   HEAP_SAMPLE_INTERVAL (512 bytes): the mean bytes between samples. HEAP_SAMPLE_OUT=FILE also writes the
//   profile (.heapprofile, for Chrome's DevTools). HEAP_SAMPLE_TOP (30): how many functions to list.
//   HEAP_SAMPLE_PROMOTED=1: only what outlived the young generation (objects a scavenge took back are left out):
//   what was promoted to the old generation, to be collected there by a mark-compact, or is still alive at the end.
// Divide a build's bytes by the events it ran (hook-event-path: 2 x (warm-up + rounds x batch)) for bytes per event.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const script = process.argv[2];
if (script === undefined) {
  console.error('usage: node bench/heap-sample.mjs BENCH_SCRIPT [ARGS...]');
  process.exit(2);
}
// Code of a build is under its dist/ (the bench script itself, whichever build it drives, is not).
const roots = process.argv.slice(3).map((root) => `${path.resolve(root)}/dist/`);
// The bench reads its own arguments from argv[2...].
process.argv.splice(1, 1);
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: Number(process.env.HEAP_SAMPLE_INTERVAL ?? 512),
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: process.env.HEAP_SAMPLE_PROMOTED !== '1',
});
await import(pathToFileURL(path.resolve(script)).href);
const { profile } = await session.post('HeapProfiler.stopSampling');
if (process.env.HEAP_SAMPLE_OUT) writeFileSync(process.env.HEAP_SAMPLE_OUT, JSON.stringify(profile));

const byFunction = new Map();
const byRoot = new Map();
let total = 0;
const rootOf = (url) => roots.find((root) => url.includes(root));
const walk = (node, inherited) => {
  const frame = node.callFrame;
  const root = rootOf(frame.url) ?? inherited;
  const key = `${frame.functionName || '(anonymous)'} ${frame.url}:${frame.lineNumber + 1}`;
  total += node.selfSize;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
  byRoot.set(root ?? 'elsewhere', (byRoot.get(root ?? 'elsewhere') ?? 0) + node.selfSize);
  for (const child of node.children) walk(child, root);
};
walk(profile.head, undefined);
console.log(`sampled ${(total / 1e6).toFixed(1)} MB in all`);
for (const [root, bytes] of byRoot) console.log(`  ${(bytes / 1e6).toFixed(1)} MB allocated under ${root}`);
const top = Number(process.env.HEAP_SAMPLE_TOP ?? 30);
for (const [key, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((bytes / total) * 100).toFixed(1).padStart(5)}% ${key}`);
}
