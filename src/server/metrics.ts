import type { OutboxStats } from '../hooks/delivery/delivery-control.ts';
import { redactTarget } from '../hooks/delivery/target-guard.ts';
import type { RunRecord } from '../hooks/history/run-log.ts';
import type { UploadRecord } from '../info/upload-record.ts';
import type { UploadActivity } from '../uploads/activity.ts';

/**
 * Prometheus metrics (text exposition format 0.0.4), written by hand: rustus's upload metrics under their
 * rustus names, plus Wharf's own (`wharf_` prefix). Everything on the request path is a counter bump or a Map
 * lookup; the text is built only when /metrics is scraped.
 */

/** rustus's `uploads_sizes` buckets: 2^1 … 2^40 bytes. */
const sizeBuckets = Array.from({ length: 40 }, (_, index) => 2 ** (index + 1));
/** Hook run durations, seconds. */
const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Methods counted by name; anything else is `other` (bounded label values). */
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'PUT']);

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    for (let index = 0; index < this.buckets.length; index++) {
      if (value <= (this.buckets[index] ?? 0)) {
        this.counts[index] = (this.counts[index] ?? 0) + 1;
        return;
      }
    }
  }

  lines(name: string, labels: string): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    const separator = labels === '' ? '' : ',';
    for (const [index, bound] of this.buckets.entries()) {
      cumulative += this.counts[index] ?? 0;
      lines.push(`${name}_bucket{${labels}${separator}le="${bound}"} ${cumulative}`);
    }
    lines.push(`${name}_bucket{${labels}${separator}le="+Inf"} ${this.count}`);
    const braces = labels === '' ? '' : `{${labels}}`;
    lines.push(`${name}_sum${braces} ${this.sum}`, `${name}_count${braces} ${this.count}`);
    return lines;
  }
}

function labelValue(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function header(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
}

/** Where the outbox figures come from (the delivery control when the engine has one). */
export type OutboxStatsSource = () => OutboxStats;

export class Metrics {
  #started = 0;
  #finished = 0;
  #terminated = 0;
  #expired = 0;
  #active = 0;
  #receivedBytes = 0;
  readonly #sizes = new Histogram(sizeBuckets);
  /** method -> status -> count: two Map lookups per request, no key string built. */
  readonly #requests = new Map<string, Map<number, number>>();
  /** `event target status` -> count. */
  readonly #runs = new Map<string, { event: string; target: string; status: string; count: number }>();
  readonly #durations = new Map<string, { event: string; target: string; histogram: Histogram }>();
  /** Target name -> as shown (URL password masked): parsed once per target, not once per hook run. */
  readonly #shownTargets = new Map<string, string>();
  #outbox: OutboxStatsSource | undefined;

  /** The upload lifecycle's counters. */
  readonly uploads: UploadActivity = {
    created: (upload: UploadRecord) => {
      this.#started += 1;
      this.#active += 1;
      if (upload.length !== null) this.#sizes.observe(upload.length);
    },
    received: (_upload: UploadRecord, bytes: number) => {
      this.#receivedBytes += bytes;
    },
    finished: () => {
      this.#finished += 1;
      this.#active -= 1;
    },
    terminated: (upload: UploadRecord) => {
      this.#terminated += 1;
      if (upload.length === null || upload.offset < upload.length) this.#active -= 1;
    },
    expired: () => {
      // Only unfinished uploads expire, so each one was still counted as active.
      this.#expired += 1;
      this.#active -= 1;
    },
  };

  /** Counts one answered request. */
  request(method: string | undefined, status: number): void {
    const name = method !== undefined && knownMethods.has(method) ? method : 'other';
    let byStatus = this.#requests.get(name);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#requests.set(name, byStatus);
    }
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  /** Counts one finished hook run (pending and running transitions are not runs yet). */
  run(record: RunRecord): void {
    if (record.status === 'pending' || record.status === 'running') return;
    let targetName = this.#shownTargets.get(record.target);
    if (targetName === undefined) {
      targetName = redactTarget(record.target);
      this.#shownTargets.set(record.target, targetName);
    }
    const key = `${record.event} ${targetName} ${record.status}`;
    const counted = this.#runs.get(key);
    if (counted !== undefined) counted.count += 1;
    else this.#runs.set(key, { event: record.event, target: targetName, status: record.status, count: 1 });
    if (record.status === 'skipped') return;
    const durationKey = `${record.event} ${targetName}`;
    let timed = this.#durations.get(durationKey);
    if (timed === undefined) {
      timed = { event: record.event, target: targetName, histogram: new Histogram(durationBuckets) };
      this.#durations.set(durationKey, timed);
    }
    timed.histogram.observe(record.durationMs / 1000);
  }

  outboxFrom(source: OutboxStatsSource): void {
    this.#outbox = source;
  }

  /** The exposition text. */
  render(now = Date.now()): string {
    const lines: string[] = [
      ...header('started_uploads', 'counter', 'Uploads created.'),
      `started_uploads ${this.#started}`,
      ...header('finished_uploads', 'counter', 'Uploads that received all their bytes.'),
      `finished_uploads ${this.#finished}`,
      ...header('terminated_uploads', 'counter', 'Uploads deleted by their client.'),
      `terminated_uploads ${this.#terminated}`,
      ...header(
        'wharf_expired_uploads_total',
        'counter',
        'Unfinished uploads removed by the expiration sweep.',
      ),
      `wharf_expired_uploads_total ${this.#expired}`,
      ...header(
        'active_uploads',
        'gauge',
        'Uploads created and not yet finished or deleted (per process: sum over instances).',
      ),
      `active_uploads ${this.#active}`,
      ...header('uploads_sizes', 'histogram', 'Declared sizes of created uploads, in bytes.'),
      ...this.#sizes.lines('uploads_sizes', ''),
      ...header('wharf_received_bytes_total', 'counter', 'Upload bytes received in request bodies.'),
      `wharf_received_bytes_total ${this.#receivedBytes}`,
      ...header('wharf_http_requests_total', 'counter', 'HTTP requests answered, by method and status.'),
    ];
    for (const [method, byStatus] of this.#requests) {
      for (const [status, count] of byStatus) {
        lines.push(`wharf_http_requests_total{method="${method}",status="${status}"} ${count}`);
      }
    }
    lines.push(
      ...header('wharf_hook_runs_total', 'counter', 'Hook runs finished, by event, target and status.'),
    );
    for (const { event, target, status, count } of this.#runs.values()) {
      lines.push(
        `wharf_hook_runs_total{event="${labelValue(event)}",target="${labelValue(target)}",status="${status}"} ${count}`,
      );
    }
    lines.push(
      ...header('wharf_hook_run_duration_seconds', 'histogram', 'Hook run durations, by event and target.'),
    );
    for (const { event, target, histogram } of this.#durations.values()) {
      lines.push(
        ...histogram.lines(
          'wharf_hook_run_duration_seconds',
          `event="${labelValue(event)}",target="${labelValue(target)}"`,
        ),
      );
    }
    const outbox = this.#outbox?.();
    if (outbox !== undefined) {
      lines.push(
        ...header('wharf_hook_outbox_depth', 'gauge', 'Hook deliveries waiting in the outbox.'),
        `wharf_hook_outbox_depth ${outbox.depth}`,
        ...header(
          'wharf_hook_outbox_oldest_pending_age_seconds',
          'gauge',
          'Age of the oldest delivery waiting in the outbox (0 when none waits).',
        ),
        `wharf_hook_outbox_oldest_pending_age_seconds ${
          outbox.oldestPendingAt === undefined ? 0 : Math.max(0, (now - outbox.oldestPendingAt) / 1000)
        }`,
        ...header(
          'wharf_hook_outbox_dropped_total',
          'counter',
          'Deliveries refused because the outbox was full.',
        ),
        `wharf_hook_outbox_dropped_total ${outbox.dropped}`,
        ...header(
          'wharf_hook_dead_letters_dropped_total',
          'counter',
          'Dead letters dropped, oldest first, to stay within --hooks-dead-letter-limit.',
        ),
        `wharf_hook_dead_letters_dropped_total ${outbox.deadLettersDropped}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}
