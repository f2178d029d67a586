import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AggregatorRegistry, Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { redactTarget } from '../../../src/hooks/delivery/target-guard.ts';
import type { RunRecord } from '../../../src/hooks/history/run-log.ts';
import type { UploadRecord } from '../../../src/info/upload-record.ts';
import { Metrics } from '../../../src/server/metrics.ts';
import { uploadRecord } from '../../support/upload-record.ts';

function upload(length: number | null, offset = 0): UploadRecord {
  return uploadRecord({ id: 'u', offset, length, version: 1 });
}

/**
 * A sample line with its labels sorted: the exposition format does not order labels (prom-client writes `le`
 * first), so lines compare by name, label set and value.
 */
function canonical(line: string): string {
  const match = /^([^{\s]+)\{(.*)\} (\S+)$/.exec(line);
  if (!match) return line;
  const labels = (match[2] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
  return `${match[1]}{${[...labels].sort().join(',')}} ${match[3]}`;
}

function run(overrides: Partial<RunRecord>): RunRecord {
  return {
    eventId: 'e',
    event: 'post-finish',
    hook: 'post-finish',
    target: 'http:https://user:secret@hooks.test/a',
    uploadId: 'u',
    blocking: false,
    status: 'completed',
    startedAt: 0,
    durationMs: 30,
    ...overrides,
  };
}

test('metrics: rustus upload counters, cumulative histograms, escaped labels, masked passwords', async () => {
  const metrics = new Metrics();
  metrics.uploads.created(upload(3));
  metrics.uploads.created(upload(1000));
  metrics.uploads.created(upload(null));
  metrics.uploads.received(upload(3, 3), 3);
  metrics.uploads.finished(upload(3, 3));
  metrics.uploads.terminated(upload(1000, 10));
  metrics.request('PATCH', 204);
  metrics.request('PATCH', 204);
  metrics.request('BREW', 418);
  metrics.run(run({ status: 'pending' }));
  metrics.run(run({}));
  metrics.run(run({ status: 'failed', durationMs: 2000 }));
  metrics.run(run({ target: 'module:say "hi"\\', status: 'skipped' }));
  metrics.outboxFrom(() => ({ depth: 2, oldestPendingAt: 1000, dropped: 1, deadLettersDropped: 4 }));
  const text = await metrics.render(11_000);
  const lines = new Set(text.trimEnd().split('\n').map(canonical));
  for (const expected of [
    'started_uploads 3',
    'finished_uploads 1',
    'terminated_uploads 1',
    'active_uploads 1',
    'uploads_sizes_bucket{le="2"} 0',
    'uploads_sizes_bucket{le="4"} 1',
    'uploads_sizes_bucket{le="1024"} 2',
    'uploads_sizes_bucket{le="+Inf"} 2',
    'uploads_sizes_sum 1003',
    'uploads_sizes_count 2',
    'wharf_received_bytes_total 3',
    'wharf_http_requests_total{method="PATCH",status="204"} 2',
    'wharf_http_requests_total{method="other",status="418"} 1',
    'wharf_hook_runs_total{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)",status="completed"} 1',
    'wharf_hook_runs_total{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)",status="failed"} 1',
    'wharf_hook_run_duration_seconds_bucket{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)",le="0.025"} 0',
    'wharf_hook_run_duration_seconds_bucket{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)",le="0.05"} 1',
    'wharf_hook_run_duration_seconds_bucket{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)",le="2.5"} 2',
    'wharf_hook_run_duration_seconds_count{event="post-finish",target="http:https://hooks.test:443 (c1a5e7a0)"} 2',
    'wharf_hook_runs_total{event="post-finish",target="module:say \\"hi\\"\\\\",status="skipped"} 1',
    'wharf_hook_outbox_depth 2',
    'wharf_hook_outbox_oldest_pending_age_seconds 10',
    'wharf_hook_outbox_dropped_total 1',
    'wharf_hook_dead_letters_dropped_total 4',
    '# TYPE wharf_hook_run_duration_seconds histogram',
  ]) {
    assert.ok(lines.has(canonical(expected)), `missing: ${expected}\n${text}`);
  }
  assert.equal(text.includes('secret'), false);
  assert.equal(text.includes('user'), false);
  assert.equal(text.includes('/a'), false);
});

test('metrics: targets are labelled by scheme, host, port and hook name, never by path, query or folder', async () => {
  const metrics = new Metrics();
  for (const target of [
    'http:http://127.0.0.1:8080/hooks/path-secret?token=query-secret',
    'file:/srv/folder-secret/notify.sh',
    'dir:/srv/folder-secret/hooks.d/post-finish',
    'amqp:amqp://wharf:***@broker.test/vhost-secret#wharf/wharf.post-finish',
    'http:https://hooks.test/',
  ]) {
    metrics.run(run({ target, status: 'completed' }));
  }
  const text = await metrics.render(0);
  for (const label of [
    'target="http:http://127.0.0.1:8080 (',
    'target="file:notify.sh"',
    'target="dir:post-finish"',
    'target="amqp:amqp://broker.test:5672#wharf/wharf.post-finish"',
    'target="http:https://hooks.test:443"',
  ]) {
    assert.ok(text.includes(label), `missing ${label}\n${text}`);
  }
  assert.equal(/secret|wharf:|\/srv/.test(text), false, text);
});

test('metrics: an upload removed by the expiration sweep is no longer active and is counted as expired', async () => {
  const metrics = new Metrics();
  metrics.uploads.created(upload(100));
  metrics.uploads.created(upload(100));
  metrics.uploads.expired(upload(100, 40));
  const lines = new Set((await metrics.render()).trimEnd().split('\n').map(canonical));
  assert.ok(lines.has(canonical('active_uploads 1')));
  assert.ok(lines.has(canonical('wharf_expired_uploads_total 1')));
});

test('metrics: families of several workers sum, the oldest pending age takes the largest, labelled series stay apart', async () => {
  const first = new Metrics();
  const second = new Metrics();
  first.uploads.created(upload(3));
  second.uploads.created(upload(3));
  second.uploads.created(upload(5000));
  first.request('PATCH', 204);
  second.request('PATCH', 204);
  second.request('HEAD', 200);
  first.outboxFrom(() => ({ depth: 1, oldestPendingAt: 9_000, dropped: 0, deadLettersDropped: 0 }));
  second.outboxFrom(() => ({ depth: 2, oldestPendingAt: 4_000, dropped: 3, deadLettersDropped: 0 }));
  // What the cluster primary does with the workers' snapshots.
  const text = await AggregatorRegistry.aggregate([
    await first.collect(10_000),
    await second.collect(10_000),
  ]).metrics();
  const lines = new Set(text.trimEnd().split('\n').map(canonical));
  for (const expected of [
    'started_uploads 3',
    'active_uploads 3',
    'uploads_sizes_bucket{le="4"} 2',
    'uploads_sizes_bucket{le="8192"} 3',
    'uploads_sizes_count 3',
    'wharf_http_requests_total{method="PATCH",status="204"} 2',
    'wharf_http_requests_total{method="HEAD",status="200"} 1',
    'wharf_hook_outbox_depth 3',
    'wharf_hook_outbox_oldest_pending_age_seconds 6',
    'wharf_hook_outbox_dropped_total 3',
  ]) {
    assert.ok(lines.has(canonical(expected)), `missing: ${expected}\n${text}`);
  }
  // One HELP and TYPE per family, however many processes had it.
  assert.equal(text.split('\n').filter((line) => line === '# TYPE started_uploads counter').length, 1);
});

test('metrics: the process figures are read at the scrape (CPU, memory, event-loop delay, version)', async () => {
  const text = await new Metrics({ processMetrics: true }).render();
  for (const name of [
    'process_cpu_user_seconds_total',
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
  }
  assert.match(text, new RegExp(`^nodejs_version_info\\{version="${process.version}"[,}].* 1$`, 'm'));
  // Without the option (as in the counters' tests), none of them.
  assert.equal((await new Metrics().render()).includes('process_cpu'), false);
});

test("metrics: the process metrics are prom-client's default metrics, family for family (name, help, type, order)", async () => {
  // Wharf registers them itself so that a start skips @opentelemetry/api (server/prom-client.ts).
  const theirs = new Registry();
  collectDefaultMetrics({ register: theirs });
  const families = (metrics: readonly { name: string; help: string; type: unknown }[]) =>
    metrics.map(({ name, help, type }) => `${name} ${String(type)} ${help}`);
  const ours = (await new Metrics({ processMetrics: true }).collect()).filter(
    (metric) => metric.name.startsWith('process_') || metric.name.startsWith('nodejs_'),
  );
  const expected = families(await theirs.getMetricsAsJSON());
  assert.ok(expected.length > 10);
  assert.deepEqual(families(ours), expected);
});

test('metrics: the CPU counters add the CPU spent between scrapes, user + system = total', async () => {
  const metrics = new Metrics({ processMetrics: true });
  const seconds = async () => {
    const values = new Map<string, number>();
    for (const metric of await metrics.collect()) {
      if (metric.name.startsWith('process_cpu_'))
        values.set(metric.name, metric.values[0]?.value ?? Number.NaN);
    }
    return values;
  };
  const before = await seconds();
  const spent = process.cpuUsage();
  const until = Date.now() + 60;
  while (Date.now() < until) JSON.stringify({ spin: Math.random() });
  const used = process.cpuUsage(spent);
  const after = await seconds();
  const user = after.get('process_cpu_user_seconds_total')! - before.get('process_cpu_user_seconds_total')!;
  const system =
    after.get('process_cpu_system_seconds_total')! - before.get('process_cpu_system_seconds_total')!;
  const total = after.get('process_cpu_seconds_total')! - before.get('process_cpu_seconds_total')!;
  assert.ok(user > 0, `user ${user}`);
  // The scrape reads the clock after this test's own reading started: at least what the test saw spent.
  assert.ok(
    user + system >= (used.user + used.system) / 1e6 - 1e-6,
    `${user + system} < ${used.user + used.system}`,
  );
  assert.ok(Math.abs(total - (user + system)) < 1e-9);
});

test("metrics: prom-client's default metrics come too: the event-loop monitor's percentiles, a GC histogram, handles", async () => {
  const metrics = new Metrics({ processMetrics: true });
  // The event-loop monitor samples every 10 ms: a few samples for its percentiles (they read NaN before any).
  await new Promise((resolve) => setTimeout(resolve, 50));
  const text = await metrics.render();
  for (const series of [
    /^nodejs_eventloop_lag_p99_seconds \d/m,
    /^nodejs_eventloop_lag_max_seconds \d/m,
    /^# TYPE nodejs_gc_duration_seconds histogram$/m,
    /^nodejs_active_handles_total \d/m,
    /^process_open_fds \d/m,
  ]) {
    assert.match(text, series);
  }
});

test('one scrape reads the outbox figures once for its four gauges, and the next scrape reads them afresh', async () => {
  const metrics = new Metrics();
  let reads = 0;
  let depth = 5;
  metrics.outboxFrom(() => {
    reads += 1;
    return { depth, oldestPendingAt: 2_000, dropped: 7, deadLettersDropped: 3 };
  });
  const first = new Set((await metrics.render(5_000)).trimEnd().split('\n'));
  assert.equal(reads, 1);
  for (const line of [
    'wharf_hook_outbox_depth 5',
    'wharf_hook_outbox_oldest_pending_age_seconds 3',
    'wharf_hook_outbox_dropped_total 7',
    'wharf_hook_dead_letters_dropped_total 3',
  ]) {
    assert.ok(first.has(line), `missing: ${line}`);
  }
  depth = 6;
  const second = new Set((await metrics.render(5_000)).trimEnd().split('\n'));
  assert.equal(reads, 2);
  assert.ok(second.has('wharf_hook_outbox_depth 6'));
  const data = await metrics.collect(5_000);
  assert.equal(reads, 3);
  assert.equal(data.find((metric) => metric.name === 'wharf_hook_outbox_depth')?.values[0]?.value, 6);
});

test('labelled counts and run durations read the same as prom-client counting them itself, across scrapes', async () => {
  const metrics = new Metrics();
  // What Wharf did before it counted these series itself: prom-client's inc and observe with the labels.
  const reference = new Registry();
  const registers = [reference];
  const requests = new Counter({
    name: 'wharf_http_requests_total',
    help: 'HTTP requests answered, by method and status.',
    labelNames: ['method', 'status'],
    registers,
  });
  const runs = new Counter({
    name: 'wharf_hook_runs_total',
    help: 'Hook runs finished, by event, target and status.',
    labelNames: ['event', 'target', 'status'],
    registers,
  });
  const durations = new Histogram({
    name: 'wharf_hook_run_duration_seconds',
    help: 'Hook run durations, by event and target.',
    labelNames: ['event', 'target'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const names =
    /^(# (HELP|TYPE) )?(wharf_http_requests_total|wharf_hook_runs_total|wharf_hook_run_duration_seconds)/;
  const families = (text: string): string =>
    text
      .split('\n')
      .filter((line) => names.test(line))
      .join('\n');
  const events = ['post-create', 'post-finish', 'post-receive'] as const;
  const statuses = ['completed', 'failed', 'skipped', 'timed_out', 'pending'] as const;
  const targets = [
    'http:https://user:secret@hooks.test/a',
    'amqp:amqp://broker.test/v#x/y',
    'file:/srv/hook.sh',
  ];
  const methods = ['PATCH', 'POST', 'BREW', 'HEAD'];
  let compared = 0;
  for (let round = 0; round < 3; round++) {
    for (let index = 0; index < 300; index++) {
      const method = methods[(index * 7 + round) % methods.length] as string;
      const status = [204, 201, 418, 460][(index * 3 + round) % 4] as number;
      metrics.request(method, status);
      requests.inc({ method: method === 'BREW' ? 'other' : method, status: String(status) });
      const record = run({
        event: events[(index + round) % events.length] as (typeof events)[number],
        status: statuses[(index * 5 + round) % statuses.length] as (typeof statuses)[number],
        target: targets[(index * 11 + round) % targets.length] as string,
        // Every fourth on a bucket's bound (which counts in that bucket), the others from under a millisecond to
        // past the last bound, with fractions whose sums round.
        durationMs:
          index % 4 === 0
            ? ([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 60_000][(index / 4) % 10] as number)
            : ((index * 7919 + round) % 90_000) / 7 + 0.1,
      });
      metrics.run(record);
      if (record.status === 'pending' || record.status === 'running') continue;
      const labels = { event: record.event, target: redactTarget(record.target), status: record.status };
      runs.inc(labels);
      if (record.status !== 'skipped') {
        durations.observe({ event: labels.event, target: labels.target }, record.durationMs / 1000);
      }
    }
    const expected = families(await reference.metrics());
    assert.equal(families(await metrics.render(0)), expected);
    compared += expected.split('\n').length;
  }
  // Each scrape compares every family with series in it (96 lines by the third).
  assert.ok(compared > 250, `${compared} lines compared`);
  // The cluster's data carries the same values.
  const data = await metrics.collect(0);
  const runsData = data.find((metric) => metric.name === 'wharf_hook_runs_total');
  assert.deepEqual(runsData?.values, (await runs.get()).values);
});
