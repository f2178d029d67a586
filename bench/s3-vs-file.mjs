// Throughput of one large upload into Wharf with the local file store, with --storage s3 and with
// --storage hybrid-s3 (MinIO from bench/minio.sh, on 127.0.0.1:19020), plus MinIO alone (one PutObject of the same
// bytes from this process) as the ceiling of the S3 path. Each round starts a fresh Wharf per store and
// alternates the stores; medians are reported with the S3/file ratio and the server's peak RSS.
//
// Usage: bash bench/minio.sh start && npm run build && node bench/s3-vs-file.mjs
//   BENCH_S3_BYTES (default 512 MiB) bytes per upload; BENCH_S3_ROUNDS (3);
//   BENCH_S3_CHUNK (6 MiB) chunk size of the chunked scenario (tus-js-client with chunkSize);
//   BENCH_S3_ARGS extra flags for the S3 stores, e.g. "--s3-part-size 16MiB --s3-part-concurrency 4";
//   WHARF_TEST_S3_URL / _BUCKET / _ACCESS_KEY / _SECRET_KEY as for the tests.
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { median, runRounds, scenariosFor } from './lib/store-rounds.mjs';
import { MB, MiB } from './lib/tus-client.mjs';

// The SDK's notice about Node 20 support would interleave with the figures.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const bytes = Number(process.env.BENCH_S3_BYTES ?? 512 * MiB);
const rounds = Number(process.env.BENCH_S3_ROUNDS ?? 3);
const chunk = Number(process.env.BENCH_S3_CHUNK ?? 6 * MiB);
const s3Url = process.env.WHARF_TEST_S3_URL ?? 'http://127.0.0.1:19020';
const bucket = process.env.WHARF_TEST_S3_BUCKET ?? 'wharf-test';
const accessKey = process.env.WHARF_TEST_S3_ACCESS_KEY ?? 'wharf-test';
const secretKey = process.env.WHARF_TEST_S3_SECRET_KEY ?? 'wharf-test-secret';

const s3Flags = [
  '--s3-url',
  s3Url,
  '--s3-bucket',
  bucket,
  '--s3-access-key',
  accessKey,
  '--s3-secret-key',
  secretKey,
  '--s3-force-path-style',
  '--dir-structure',
  'bench',
  ...(process.env.BENCH_S3_ARGS ?? '').split(' ').filter(Boolean),
];
const stores = {
  file: [],
  s3: ['--storage', 's3', ...s3Flags],
  'hybrid-s3': ['--storage', 'hybrid-s3', ...s3Flags],
};

/** MinIO alone: one PutObject of the same number of bytes, streamed from this process. */
async function minioPut() {
  const client = new S3Client({
    endpoint: s3Url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  const piece = Buffer.alloc(MiB, 7);
  async function* body() {
    for (let sent = 0; sent < bytes; sent += MiB) yield sent + MiB <= bytes ? piece : piece.subarray(0, bytes - sent);
  }
  const started = performance.now();
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: 'bench/minio-put', Body: Readable.from(body()), ContentLength: bytes }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.destroy();
  return { mbPerSecond: bytes / MB / seconds, peakRssMB: Number.NaN };
}

const scenarios = scenariosFor(bytes, chunk);

const results = await runRounds({
  rounds,
  scenarios,
  stores,
  bytes,
  label: 's3',
  storeWidth: 10,
  async afterRound(round, record) {
    const raw = await minioPut();
    record('raw|minio', raw);
    console.error(`round ${round} MinIO PutObject alone ${raw.mbPerSecond.toFixed(0)} MB/s`);
  },
});

const lines = [
  `Upload of ${(bytes / MiB).toFixed(0)} MiB, median of ${rounds} rounds (MB = 10^6 bytes).`,
  '',
  '| scenario | store | MB/s | vs file | server peak RSS (MB) |',
  '|---|---|---:|---:|---:|',
];
for (const scenario of scenarios) {
  const file = median(results.get(`${scenario.name}|file`).map((r) => r.mbPerSecond));
  for (const store of Object.keys(stores)) {
    const runs = results.get(`${scenario.name}|${store}`);
    const speed = median(runs.map((r) => r.mbPerSecond));
    const rss = median(runs.map((r) => r.peakRssMB));
    lines.push(`| ${scenario.name} | ${store} | ${speed.toFixed(0)} | ${(speed / file).toFixed(2)} | ${rss.toFixed(0)} |`);
  }
}
lines.push(
  `| one PutObject | MinIO alone | ${median(results.get('raw|minio').map((r) => r.mbPerSecond)).toFixed(0)} | | |`,
);
console.log(lines.join('\n'));
