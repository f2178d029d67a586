// Broker hooks benchmark (issue 4): events per second Wharf delivers to RabbitMQ and to Kafka, and the latency
// broker hooks add to an upload. Needs the test brokers (scripts/services/rabbitmq.sh, kafka.sh) and a build
// (npm run build). Usage: node bench/broker-hooks.mjs   (BENCH_UPLOADS=500 BENCH_CONCURRENCY=16 to change)
//
// For each mode (no hooks, AMQP, Kafka) it starts Wharf with every event enabled, runs BENCH_UPLOADS small
// uploads (POST, two PATCHes of 1 KiB, DELETE: six events), BENCH_CONCURRENCY
// at a time, and measures each upload's latency; for the brokers it also counts the events a consumer receives
// and reports events/s from the first request to the last event consumed.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from 'amqplib';
import { Admin, Consumer } from '@platformatic/kafka';

const root = path.resolve(import.meta.dirname, '..');
const uploads = Number(process.env.BENCH_UPLOADS ?? 500);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const amqpUrl = process.env.WHARF_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5682';
const kafkaBrokers = (process.env.WHARF_TEST_KAFKA_BROKERS ?? '127.0.0.1:9192').split(',');
// pre-create, post-create, post-receive (first PATCH), post-finish (second), pre-terminate, post-terminate.
const eventsPerUpload = 6;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const body = Buffer.alloc(1024, 7);

function request(method, url, headers, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'Tus-Resumable': '1.0.0', ...headers }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function oneUpload(endpoint) {
  const started = performance.now();
  const created = await request('POST', endpoint, { 'Upload-Length': body.length * 2 });
  if (created.statusCode !== 201) throw new Error(`POST ${created.statusCode}`);
  const url = new URL(created.headers.location, endpoint).toString();
  const octets = { 'Content-Type': 'application/offset+octet-stream' };
  const first = await request('PATCH', url, { ...octets, 'Upload-Offset': 0, 'Content-Length': body.length }, body);
  const second = await request('PATCH', url, { ...octets, 'Upload-Offset': body.length, 'Content-Length': body.length }, body);
  if (first.statusCode !== 204 || second.statusCode !== 204) throw new Error('PATCH failed');
  const deleted = await request('DELETE', url, {});
  if (deleted.statusCode !== 204) throw new Error(`DELETE ${deleted.statusCode}`);
  return performance.now() - started;
}

async function startWharf(args) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-bench-'));
  const child = spawn(
    process.execPath,
    [path.join(root, 'bin/wharf.js'), '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--info-dir', dataDir, '--no-access', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line);
        if (String(entry.msg).startsWith('wharf listening')) resolve(entry.port);
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`wharf exited ${code}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}/files/`,
    /** CPU time (user + system) Wharf used so far, in ms (Linux /proc). */
    cpuMs: async () => {
      const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    },
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function run(endpoint, wharf) {
  const cpuBefore = await wharf.cpuMs();
  const latencies = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < uploads) {
        next += 1;
        latencies.push(await oneUpload(endpoint));
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    started,
    p50: at(0.5),
    p95: at(0.95),
    uploadsPerSecond: uploads / ((performance.now() - started) / 1000),
    wharf,
    cpuBefore,
  };
}

async function amqpMode() {
  const tag = randomUUID().slice(0, 8);
  const queue = `bench-${tag}`;
  const connection = await connect(amqpUrl);
  const channel = await connection.createChannel();
  let received = 0;
  let lastAt = 0;
  const wharf = await startWharf([
    '--hooks-amqp-url', amqpUrl, '--hooks-amqp-exchange', queue, '--hooks-amqp-routing-key', queue,
    '--hooks-amqp-declare-exchange', '--hooks-amqp-declare-queues', '--hooks-amqp-durable-exchange', '--hooks-amqp-durable-queues',
  ]);
  for (;;) {
    const probe = await connection.createChannel();
    probe.on('error', () => {});
    if (await probe.checkQueue(queue).then(() => true, () => false)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await channel.consume(queue, () => { received += 1; lastAt = performance.now(); }, { noAck: true });
  const result = await run(wharf.endpoint, wharf);
  const expected = uploads * eventsPerUpload;
  while (received < expected) await new Promise((resolve) => setTimeout(resolve, 20));
  result.cpuPerUpload = ((await wharf.cpuMs()) - result.cpuBefore) / uploads;
  await wharf.stop();
  await channel.deleteQueue(queue);
  await channel.deleteExchange(queue);
  await connection.close();
  return { ...result, eventsPerSecond: expected / ((lastAt - result.started) / 1000) };
}

async function kafkaMode() {
  const topic = `bench-${randomUUID().slice(0, 8)}`;
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: kafkaBrokers });
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
  const consumer = new Consumer({ clientId: 'bench', groupId: `bench-${topic}`, bootstrapBrokers: kafkaBrokers });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  let received = 0;
  let lastAt = 0;
  stream.on('data', () => {
    received += 1;
    lastAt = performance.now();
  });
  const wharf = await startWharf(['--hooks-kafka-urls', kafkaBrokers.join(','), '--hooks-kafka-topic', topic]);
  const result = await run(wharf.endpoint, wharf);
  const expected = uploads * eventsPerUpload;
  while (received < expected) await new Promise((resolve) => setTimeout(resolve, 20));
  result.cpuPerUpload = ((await wharf.cpuMs()) - result.cpuBefore) / uploads;
  await wharf.stop();
  await stream.close();
  await consumer.close();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
  return { ...result, eventsPerSecond: expected / ((lastAt - result.started) / 1000) };
}

const rows = [];
const plain = await startWharf([]);
const plainResult = await run(plain.endpoint, plain);
plainResult.cpuPerUpload = ((await plain.cpuMs()) - plainResult.cpuBefore) / uploads;
rows.push(['no hooks', plainResult]);
await plain.stop();
rows.push(['AMQP (RabbitMQ, confirms, durable)', await amqpMode()]);
rows.push(['Kafka (acks=all)', await kafkaMode()]);

const fixed = (value, digits = 1) => (value === undefined ? '–' : value.toFixed(digits));
console.log(`${uploads} uploads (POST, 2 PATCH of 1 KiB, DELETE = ${eventsPerUpload} events each), ${concurrency} at a time\n`);
console.log('| mode | upload p50 ms | upload p95 ms | uploads/s | events/s delivered | Wharf CPU ms per upload |');
console.log('|---|---|---|---|---|---|');
for (const [mode, row] of rows) {
  console.log(`| ${mode} | ${fixed(row.p50, 2)} | ${fixed(row.p95, 2)} | ${fixed(row.uploadsPerSecond)} | ${fixed(row.eventsPerSecond, 0)} | ${fixed(row.cpuPerUpload, 2)} |`);
}
agent.destroy();
