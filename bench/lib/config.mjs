// Sizes and counts of every scenario, from the environment. BENCH_SCALE multiplies the
// defaults (sizes and counts alike); each BENCH_* variable below overrides one figure.
import { MiB } from './tus-client.mjs';

const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error(`BENCH_SCALE must be a positive number, got ${process.env.BENCH_SCALE}`);

function figure(name, base, { min = 1, scaled = true } = {}) {
  const raw = process.env[name];
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`${name} must be a positive number, got ${raw}`);
    return Math.round(value);
  }
  return Math.max(min, Math.round(scaled ? base * scale : base));
}

/** A count that may be 0 (a warm-up): not scaled, since it is about the server's compiler, not the load. */
function countOrZero(name, base) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return base;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be 0 or a positive integer, got ${raw}`);
  return value;
}

export const config = {
  scale,
  largeBytes: figure('BENCH_LARGE_BYTES', 1024 * MiB, { min: MiB }),
  largeChunkBytes: figure('BENCH_LARGE_CHUNK_BYTES', 8 * MiB, { scaled: false }),
  smallCount: figure('BENCH_SMALL_COUNT', 2000, { min: 32 }),
  smallClients: figure('BENCH_SMALL_CLIENTS', 32, { scaled: false }),
  smallBytes: figure('BENCH_SMALL_BYTES', 64 * 1024, { scaled: false }),
  // Small uploads load.mjs sends before the measured ones, not counted (nor their CPU): run.sh sets 2,000, so that
  // the small row is a server's steady state. A Node server just started spends most of its first 2,000 uploads'
  // CPU in V8's compilers (Wharf: 0.80-0.86 ms per upload cold, 0.43-0.49 after 4,000); Go and Rust servers lose
  // nothing. 0 by default: the scripts that read a server's CPU around load.mjs (ab-builds.sh, small-ab.sh,
  // hooks-overhead.mjs...) warm up on their own, and would count these uploads.
  smallWarmup: countOrZero('BENCH_SMALL_WARMUP', 0),
  // The same for every hooks mode whose targets answer (hooks-overhead.mjs; not the modes with a broker down,
  // whose warm-up events would wait in the outbox and change what those modes compare).
  hooksWarmup: countOrZero('BENCH_HOOKS_WARMUP', 1000),
  // The small scenario again for each hooks mode (hooks-overhead.mjs, Wharf alone, 5 modes × the rounds): fewer
  // than `small`, so that the whole bench stays under 15 minutes on a machine that first builds the peers.
  hooksCount: figure('BENCH_HOOKS_COUNT', 800, { min: 32 }),
  concurrentUploads: figure('BENCH_CONCURRENT_UPLOADS', 200, { scaled: false }),
  concurrentBytes: figure('BENCH_CONCURRENT_BYTES', 16 * MiB, { min: 64 * 1024 }),
  // One PATCH per upload by default (what tus-js-client does unless told a chunk size).
  concurrentChunkBytes: figure('BENCH_CONCURRENT_CHUNK_BYTES', Number.MAX_SAFE_INTEGER, { scaled: false }),
  resumeCount: figure('BENCH_RESUME_COUNT', 5, { min: 5 }),
  resumeBytes: figure('BENCH_RESUME_BYTES', 8 * MiB, { min: 64 * 1024 }),
  bigBytes: figure('BENCH_BIG_BYTES', 2048 * MiB, { min: MiB }),
  // Hard limit on one load run; the process exits by itself when it is reached.
  deadlineSeconds: figure('BENCH_DEADLINE_SECONDS', 300, { scaled: false }),
};
