import cluster from 'node:cluster';
import type { OutboxStats } from '../hooks/delivery/delivery-control.ts';
import { redactTarget } from '../hooks/delivery/target-guard.ts';
import type { RunRecord } from '../hooks/history/run-log.ts';
import type { UploadRecord } from '../info/upload-record.ts';
import type { UploadActivity } from '../uploads/activity.ts';
import { clusterExposition, joinMetricsCluster } from './metrics-cluster.ts';
import { type Family, Histogram, labelValue, renderFamilies, type Sample } from './metrics-families.ts';
import { processFamilies } from './metrics-process.ts';

export { serveClusterMetrics } from './metrics-cluster.ts';

/**
 * Prometheus metrics (text exposition format 0.0.4): rustus's upload metrics under their rustus names, Wharf's
 * own (`wharf_` prefix), and the process's (CPU, memory, event-loop delay, read at the scrape). Everything on the
 * request path is a number bump or a Map lookup; families are built only when /metrics is scraped. Under
 * --workers, /metrics asks the primary for the sum over every worker, whichever worker the scrape reaches.
 *
 * Written by hand rather than on prom-client: prom-client's module graph and default metrics added about 1 MB
 * to the heap every process keeps, which took Wharf's old generation past V8's 8 MB incremental-marking
 * threshold; from there each body chunk's buffer counted against the old-generation limit and a 512 MiB PATCH
 * ran about 20 full mark-compacts instead of one (docs/architecture.md, "Metrics").
 */

/** rustus's `uploads_sizes` buckets: 2^1 … 2^40 bytes. */
const sizeBuckets = Array.from({ length: 40 }, (_, index) => 2 ** (index + 1));
/** Hook run durations, seconds. */
const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Methods counted by name; anything else is `other` (bounded label values). */
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'PUT']);

/** Where the outbox figures come from (the delivery control when the engine has one). */
export type OutboxStatsSource = () => OutboxStats;

export interface MetricsOptions {
  /** The process's CPU, memory and event-loop figures (the server has them; unit tests of the counters need not). */
  readonly processMetrics?: boolean;
}

function counter(name: string, help: string, value: number): Family {
  return { name, type: 'counter', help, merge: 'sum', samples: [[name, value]] };
}

export class Metrics {
  readonly #processMetrics: boolean;
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
  #clustered = false;

  constructor(options: MetricsOptions = {}) {
    this.#processMetrics = options.processMetrics === true;
  }

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

  /** This process's families; `now` is the clock the outbox age is read with. */
  async collect(now = Date.now()): Promise<Family[]> {
    const requests: Sample[] = [];
    for (const [method, byStatus] of this.#requests) {
      for (const [status, count] of byStatus) {
        requests.push([`wharf_http_requests_total{method="${method}",status="${status}"}`, count]);
      }
    }
    const runs: Sample[] = [];
    for (const { event, target, status, count } of this.#runs.values()) {
      runs.push([
        `wharf_hook_runs_total{event="${labelValue(event)}",target="${labelValue(target)}",status="${status}"}`,
        count,
      ]);
    }
    const durations: Sample[] = [];
    for (const { event, target, histogram } of this.#durations.values()) {
      durations.push(
        ...histogram.samples(
          'wharf_hook_run_duration_seconds',
          `event="${labelValue(event)}",target="${labelValue(target)}"`,
        ),
      );
    }
    const families: Family[] = [
      counter('started_uploads', 'Uploads created.', this.#started),
      counter('finished_uploads', 'Uploads that received all their bytes.', this.#finished),
      counter('terminated_uploads', 'Uploads deleted by their client.', this.#terminated),
      counter(
        'wharf_expired_uploads_total',
        'Unfinished uploads removed by the expiration sweep.',
        this.#expired,
      ),
      {
        name: 'active_uploads',
        type: 'gauge',
        help: 'Uploads created and not yet finished or deleted (summed over workers; per instance).',
        merge: 'sum',
        samples: [['active_uploads', this.#active]],
      },
      {
        name: 'uploads_sizes',
        type: 'histogram',
        help: 'Declared sizes of created uploads, in bytes.',
        merge: 'sum',
        samples: this.#sizes.samples('uploads_sizes', ''),
      },
      counter('wharf_received_bytes_total', 'Upload bytes received in request bodies.', this.#receivedBytes),
      {
        name: 'wharf_http_requests_total',
        type: 'counter',
        help: 'HTTP requests answered, by method and status.',
        merge: 'sum',
        samples: requests,
      },
      {
        name: 'wharf_hook_runs_total',
        type: 'counter',
        help: 'Hook runs finished, by event, target and status.',
        merge: 'sum',
        samples: runs,
      },
      {
        name: 'wharf_hook_run_duration_seconds',
        type: 'histogram',
        help: 'Hook run durations, by event and target.',
        merge: 'sum',
        samples: durations,
      },
    ];
    const outbox = this.#outbox?.();
    if (outbox !== undefined) {
      const oldest = outbox.oldestPendingAt;
      families.push(
        {
          name: 'wharf_hook_outbox_depth',
          type: 'gauge',
          help: 'Hook deliveries waiting in the outbox.',
          merge: 'sum',
          samples: [['wharf_hook_outbox_depth', outbox.depth]],
        },
        {
          name: 'wharf_hook_outbox_oldest_pending_age_seconds',
          type: 'gauge',
          help: 'Age of the oldest delivery waiting in the outbox (0 when none waits).',
          merge: 'max',
          samples: [
            [
              'wharf_hook_outbox_oldest_pending_age_seconds',
              oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000),
            ],
          ],
        },
        {
          name: 'wharf_hook_outbox_dropped_total',
          type: 'gauge',
          help: 'Deliveries refused because the outbox was full.',
          merge: 'sum',
          samples: [['wharf_hook_outbox_dropped_total', outbox.dropped]],
        },
        {
          name: 'wharf_hook_dead_letters_dropped_total',
          type: 'gauge',
          help: 'Dead letters dropped, oldest first, to stay within --hooks-dead-letter-limit.',
          merge: 'sum',
          samples: [['wharf_hook_dead_letters_dropped_total', outbox.deadLettersDropped]],
        },
      );
    }
    if (this.#processMetrics) families.push(...(await processFamilies()));
    return families;
  }

  /** This process's exposition text; `now` is the clock the outbox age is read with. */
  async render(now?: number): Promise<string> {
    return renderFamilies(await this.collect(now));
  }

  /**
   * What /metrics answers: under --workers the sum over every worker (asked of the primary, which runs
   * {@link serveClusterMetrics}), else this process's text.
   */
  exposition(): Promise<string> {
    return this.#clustered ? clusterExposition() : this.render();
  }

  /** In a --workers worker, from the start: the primary may ask any worker for its families at any scrape. */
  joinCluster(): void {
    if (!cluster.isWorker || this.#clustered) return;
    this.#clustered = true;
    joinMetricsCluster(() => this.collect());
  }
}
