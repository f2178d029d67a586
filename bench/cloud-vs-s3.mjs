// Throughput of one upload into Wharf with --storage gcs (fake-gcs-server) and --storage azure (Azurite),
// each against --storage s3 on MinIO on the same machine. The emulators are not the clouds, so only the
// ratio to the S3 row means anything: it shows what Wharf's own path costs per store. Each round starts a
// fresh Wharf per store and alternates the stores; medians are reported with the ratio to s3 and the
// server's peak RSS.
//
// Usage: WHARF_MINIO_PORT=19000 bash scripts/minio.sh start (or any S3 server at WHARF_TEST_S3_URL) && bash scripts/services/fake-gcs.sh start &&
//        bash scripts/services/azurite.sh start && npm run build && node bench/cloud-vs-s3.mjs
//   BENCH_CLOUD_BYTES (default 256 MiB) bytes per upload; BENCH_CLOUD_ROUNDS (3);
//   BENCH_CLOUD_CHUNK (6 MiB) chunk size of the chunked scenario;
//   WHARF_TEST_S3_*, WHARF_TEST_GCS_* and WHARF_TEST_AZURE_* as for the tests.
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { median, runRounds, scenariosFor } from './lib/store-rounds.mjs';
import { MB, MiB } from './lib/tus-client.mjs';

const bytes = Number(process.env.BENCH_CLOUD_BYTES ?? 256 * MiB);
const rounds = Number(process.env.BENCH_CLOUD_ROUNDS ?? 3);
const chunk = Number(process.env.BENCH_CLOUD_CHUNK ?? 6 * MiB);
const azureAccount = process.env.WHARF_TEST_AZURE_ACCOUNT ?? 'devstoreaccount1';

const stores = {
  s3: [
    '--storage',
    's3',
    '--s3-url',
    process.env.WHARF_TEST_S3_URL ?? 'http://127.0.0.1:19000',
    '--s3-bucket',
    process.env.WHARF_TEST_S3_BUCKET ?? 'wharf-test',
    '--s3-access-key',
    process.env.WHARF_TEST_S3_ACCESS_KEY ?? 'wharf-test',
    '--s3-secret-key',
    process.env.WHARF_TEST_S3_SECRET_KEY ?? 'wharf-test-secret',
    '--s3-force-path-style',
    '--dir-structure',
    'bench',
  ],
  gcs: [
    '--storage',
    'gcs',
    '--gcs-url',
    process.env.WHARF_TEST_GCS_URL ?? 'http://127.0.0.1:19200',
    '--gcs-bucket',
    process.env.WHARF_TEST_GCS_BUCKET ?? 'wharf-test',
    '--gcs-prefix',
    'bench/',
  ],
  azure: [
    '--storage',
    'azure',
    '--azure-url',
    process.env.WHARF_TEST_AZURE_URL ?? `http://127.0.0.1:19100/${azureAccount}`,
    '--azure-account',
    azureAccount,
    '--azure-key',
    process.env.WHARF_TEST_AZURE_KEY ??
      'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
    '--azure-container',
    process.env.WHARF_TEST_AZURE_CONTAINER ?? 'wharf-test',
    '--azure-prefix',
    'bench/',
  ],
};

/** The same bytes, 1 MiB at a time, for the emulators alone. */
function body() {
  const piece = Buffer.alloc(MiB, 7);
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < bytes; sent += MiB) yield sent + MiB <= bytes ? piece : piece.subarray(0, bytes - sent);
    })(),
  );
}

/** Each emulator alone: one upload of the same bytes from this process with the store's own client. */
const alone = {
  async s3() {
    const { PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      endpoint: stores.s3[3],
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: stores.s3[7], secretAccessKey: stores.s3[9] },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    await client.send(new PutObjectCommand({ Bucket: stores.s3[5], Key: 'bench/alone', Body: body(), ContentLength: bytes }));
    client.destroy();
  },
  async gcs() {
    const { Storage } = await import('@google-cloud/storage');
    const file = new Storage({ apiEndpoint: stores.gcs[3], projectId: 'bench' }).bucket(stores.gcs[5]).file('bench/alone');
    await pipeline(body(), file.createWriteStream({ resumable: false }));
    await file.delete();
  },
  async azure() {
    const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
    const service = new BlobServiceClient(stores.azure[3], new StorageSharedKeyCredential(stores.azure[5], stores.azure[7]));
    const blob = service.getContainerClient(stores.azure[9]).getBlockBlobClient('bench/alone');
    await blob.uploadStream(body(), 8 * MiB, 2);
    await blob.delete();
  },
};

const scenarios = scenariosFor(bytes, chunk);

const results = await runRounds({
  rounds,
  scenarios,
  stores,
  bytes,
  label: 'cloud',
  storeWidth: 6,
  async afterRound(round, record) {
    for (const store of Object.keys(alone)) {
      const started = performance.now();
      await alone[store]();
      const mbPerSecond = bytes / MB / ((performance.now() - started) / 1000);
      record(`alone|${store}`, { mbPerSecond, peakRssMB: Number.NaN });
      console.error(`round ${round} ${store} emulator alone ${mbPerSecond.toFixed(0)} MB/s`);
    }
  },
});

const lines = [
  `Upload of ${(bytes / MiB).toFixed(0)} MiB, median of ${rounds} rounds, each store's emulator on this machine.`,
  '',
  '| scenario | store | vs s3 (MinIO) | server peak RSS (MB) |',
  '|---|---|---:|---:|',
];
for (const scenario of scenarios) {
  const s3 = median(results.get(`${scenario.name}|s3`).map((r) => r.mbPerSecond));
  for (const store of Object.keys(stores)) {
    const runs = results.get(`${scenario.name}|${store}`);
    const speed = median(runs.map((r) => r.mbPerSecond));
    const rss = median(runs.map((r) => r.peakRssMB));
    lines.push(`| ${scenario.name} | ${store} | ${(speed / s3).toFixed(2)} | ${rss.toFixed(0)} |`);
  }
}
const s3Alone = median(results.get('alone|s3').map((r) => r.mbPerSecond));
for (const store of Object.keys(alone)) {
  const speed = median(results.get(`alone|${store}`).map((r) => r.mbPerSecond));
  lines.push(`| one upload, emulator alone (no Wharf) | ${store} | ${(speed / s3Alone).toFixed(2)} | |`);
}
console.log(lines.join('\n'));
