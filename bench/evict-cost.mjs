// The cost of one eviction from an insertion-ordered Map used as an LRU (issue 20), at the sizes Wharf uses:
// 64 (open upload and record files), 1,000 (last failure per upload), 10,000 (the file info store's record
// cache) and 100,000 (event numbers). "new iterator" is what the code did before src/oldest-first.ts:
// `map.keys().next()` per eviction, which steps over every key deleted since the Map last compacted; "kept
// iterator" is OldestFirst from dist/. Each use of a key deletes and re-inserts it (as the caches do on a
// hit), then evicts the oldest when over the limit; each new upload is used twice and evicts one key. Reported:
// CPU ns per eviction (the two uses and the eviction of one upload) past 100,000 uploads.
// Usage: node bench/evict-cost.mjs [rounds]   (after npm run build)
import { OldestFirst } from '../dist/oldest-first.js';

const rounds = Number(process.argv[2] ?? 5);
const warmUses = 100_000;
const measuredUses = 200_000;

function newIterator(map) {
  return () => {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  };
}

function keptIterator(map) {
  const oldest = new OldestFirst(map);
  return () => oldest.evict();
}

/** CPU ns per upload past `warmUses`: keys are new uploads, and each is used twice (as a POST then a PATCH do). */
function run(limit, makeEvict) {
  const map = new Map();
  const evict = makeEvict(map);
  const use = (key) => {
    map.delete(key);
    map.set(key, key);
    if (map.size > limit) evict();
  };
  let started;
  for (let upload = 0; upload < warmUses + measuredUses; upload++) {
    if (upload === warmUses) started = process.cpuUsage();
    const key = `upload-${upload}`;
    use(key);
    use(key);
  }
  const spent = process.cpuUsage(started);
  // CPU time, not wall time: the machine is shared, and a descheduled process spends none.
  return ((spent.user + spent.system) * 1000) / measuredUses;
}

const median = (values) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)];
for (const limit of [64, 1000, 10_000, 100_000]) {
  const before = [];
  const after = [];
  // Interleaved, so drift on a shared machine hits both alike.
  for (let round = 0; round < rounds; round++) {
    before.push(run(limit, newIterator));
    after.push(run(limit, keptIterator));
  }
  console.log(
    `limit ${String(limit).padStart(6)}: new iterator ${median(before).toFixed(0).padStart(6)} ns/eviction` +
      ` (${before.map((v) => v.toFixed(0)).join(' ')}), kept iterator ${median(after).toFixed(0).padStart(5)} ns/eviction` +
      ` (${after.map((v) => v.toFixed(0)).join(' ')})`,
  );
}
