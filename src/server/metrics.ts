import cluster from 'node:cluster';
import type { OutboxStats } from '../hooks/delivery/delivery-control.ts';
import { redactTarget } from '../hooks/delivery/target-guard.ts';
import type { RunRecord } from '../hooks/history/run-log.ts';
import type { UploadRecord } from '../info/upload-record.ts';
import type { UploadActivity } from '../uploads/activity.ts';
import { clusterExposition, joinMetricsCluster, type MetricsSnapshot } from './metrics-cluster.ts';
import { Counter, collectProcessMetrics, Gauge, Histogram, Registry } from './prom-client.ts';
import { type CountedSeries, CounterSeries, HistogramSeries, type ObservedSeries } from './scraped-series.ts';

export { type MetricsSnapshot, serveClusterMetrics } from './metrics-cluster.ts';

/**
 * Prometheus metrics on prom-client: rustus's upload metrics under their rustus names, Wharf's own (`wharf_`
 * prefix), and the process's (CPU, memory, handles, GC, event-loop delay: prom-client's default metrics). On the
 * request path and per hook run, a labelled count is a number bump on a series found through Maps of its label
 * values, handed to prom-client at a scrape (scraped-series.ts: prom-client builds a key from the labels at
 * every call, its labelled children too). Under
 * --workers, /metrics asks the primary for the sum over every worker (prom-client's cluster aggregator),
 * whichever worker the scrape reaches.
 *
 * prom-client takes the heap each process keeps at rest past 8 MB, where V8 started counting every body chunk's
 * buffer toward a full mark-compact; body-young-gc.ts (uploads/) keeps large bodies at one or two mark-compacts
 * whatever the heap at rest (docs/architecture.md, "Body buffers and the garbage collector").
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
  /** prom-client's process, GC and event-loop metrics (the server has them; unit tests of the counters need not). */
  readonly processMetrics?: boolean;
}

export class Metrics {
  /** This process's metrics; under --workers, the primary sums every worker's. */
  readonly registry = new Registry();
  readonly #started: Counter;
  readonly #finished: Counter;
  readonly #terminated: Counter;
  readonly #expired: Counter;
  readonly #active: Gauge;
  readonly #sizes: Histogram;
  readonly #receivedBytes: Counter;
  /** method -> status -> its series: two Map lookups per request once seen. */
  readonly #requestCounts = new Map<string, Map<number, CountedSeries<'method' | 'status'>>>();
  readonly #requestSeries = new CounterSeries<'method' | 'status'>();
  /** event -> target as shown -> status -> its series. */
  readonly #runCounts = new Map<
    string,
    Map<string, Map<string, CountedSeries<'event' | 'target' | 'status'>>>
  >();
  readonly #runSeries = new CounterSeries<'event' | 'target' | 'status'>();
  /** event -> target as shown -> its series. */
  readonly #durationCounts = new Map<string, Map<string, ObservedSeries<'event' | 'target'>>>();
  readonly #durationSeries = new HistogramSeries<'event' | 'target'>(durationBuckets);
  /** Target name -> as shown (URL password masked): parsed once per target, not once per hook run. */
  readonly #shownTargets = new Map<string, string>();
  #outbox: OutboxStatsSource | undefined;
  /** The clock the outbox age is read with (a scrape at a given time, in tests). */
  #now: () => number = Date.now;
  /** The outbox's figures read once at the start of a scrape, for its four gauges (cleared after it). */
  #outboxSnapshot: OutboxStats | undefined;
  #clustered = false;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.#started = new Counter({ name: 'started_uploads', help: 'Uploads created.', registers });
    this.#finished = new Counter({
      name: 'finished_uploads',
      help: 'Uploads that received all their bytes.',
      registers,
    });
    this.#terminated = new Counter({
      name: 'terminated_uploads',
      help: 'Uploads deleted by their client.',
      registers,
    });
    this.#expired = new Counter({
      name: 'wharf_expired_uploads_total',
      help: 'Unfinished uploads removed by the expiration sweep.',
      registers,
    });
    this.#active = new Gauge({
      name: 'active_uploads',
      help: 'Uploads created and not yet finished or deleted (summed over workers; per instance).',
      registers,
    });
    this.#sizes = new Histogram({
      name: 'uploads_sizes',
      help: 'Declared sizes of created uploads, in bytes.',
      buckets: sizeBuckets,
      registers,
    });
    this.#receivedBytes = new Counter({
      name: 'wharf_received_bytes_total',
      help: 'Upload bytes received in request bodies.',
      registers,
    });
    const requestSeries = this.#requestSeries;
    new Counter({
      name: 'wharf_http_requests_total',
      help: 'HTTP requests answered, by method and status.',
      labelNames: ['method', 'status'],
      registers,
      collect() {
        requestSeries.writeTo(this);
      },
    });
    const runSeries = this.#runSeries;
    new Counter({
      name: 'wharf_hook_runs_total',
      help: 'Hook runs finished, by event, target and status.',
      labelNames: ['event', 'target', 'status'],
      registers,
      collect() {
        runSeries.writeTo(this);
      },
    });
    const durationSeries = this.#durationSeries;
    new Histogram({
      name: 'wharf_hook_run_duration_seconds',
      help: 'Hook run durations, by event and target.',
      labelNames: ['event', 'target'],
      buckets: durationBuckets,
      registers,
      collect() {
        durationSeries.writeTo(this);
      },
    });
    if (options.processMetrics === true) collectProcessMetrics(this.registry);
  }

  /** The upload lifecycle's counters. */
  readonly uploads: UploadActivity = {
    created: (upload: UploadRecord) => {
      this.#started.inc();
      this.#active.inc();
      if (upload.length !== null) this.#sizes.observe(upload.length);
    },
    received: (_upload: UploadRecord, bytes: number) => {
      this.#receivedBytes.inc(bytes);
    },
    finished: () => {
      this.#finished.inc();
      this.#active.dec();
    },
    terminated: (upload: UploadRecord) => {
      this.#terminated.inc();
      if (upload.length === null || upload.offset < upload.length) this.#active.dec();
    },
    expired: () => {
      // Only unfinished uploads expire, so each one was still counted as active.
      this.#expired.inc();
      this.#active.dec();
    },
  };

  /** Counts one answered request. */
  request(method: string | undefined, status: number): void {
    const name = method !== undefined && knownMethods.has(method) ? method : 'other';
    let byStatus = this.#requestCounts.get(name);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#requestCounts.set(name, byStatus);
    }
    let series = byStatus.get(status);
    if (series === undefined) {
      series = this.#requestSeries.add({ method: name, status: String(status) });
      byStatus.set(status, series);
    }
    series.value += 1;
  }

  /** Counts one finished hook run (pending and running transitions are not runs yet). */
  run(record: RunRecord): void {
    if (record.status === 'pending' || record.status === 'running') return;
    let targetName = this.#shownTargets.get(record.target);
    if (targetName === undefined) {
      targetName = redactTarget(record.target);
      this.#shownTargets.set(record.target, targetName);
    }
    const { event, status } = record;
    let byTarget = this.#runCounts.get(event);
    if (byTarget === undefined) {
      byTarget = new Map();
      this.#runCounts.set(event, byTarget);
    }
    let byStatus = byTarget.get(targetName);
    if (byStatus === undefined) {
      byStatus = new Map();
      byTarget.set(targetName, byStatus);
    }
    let counted = byStatus.get(status);
    if (counted === undefined) {
      counted = this.#runSeries.add({ event, target: targetName, status });
      byStatus.set(status, counted);
    }
    counted.value += 1;
    if (status === 'skipped') return;
    let durations = this.#durationCounts.get(event);
    if (durations === undefined) {
      durations = new Map();
      this.#durationCounts.set(event, durations);
    }
    let observed = durations.get(targetName);
    if (observed === undefined) {
      observed = this.#durationSeries.add({ event, target: targetName });
      durations.set(targetName, observed);
    }
    this.#durationSeries.observe(observed, record.durationMs / 1000);
  }

  outboxFrom(source: OutboxStatsSource): void {
    if (this.#outbox === undefined) this.#registerOutbox();
    this.#outbox = source;
  }

  #registerOutbox(): void {
    const registers = [this.registry];
    const stats = (): OutboxStats | undefined => this.#outboxSnapshot ?? this.#outbox?.();
    const now = (): number => this.#now();
    new Gauge({
      name: 'wharf_hook_outbox_depth',
      help: 'Hook deliveries waiting in the outbox.',
      registers,
      collect() {
        this.set(stats()?.depth ?? 0);
      },
    });
    new Gauge({
      name: 'wharf_hook_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest delivery waiting in the outbox (0 when none waits).',
      registers,
      aggregator: 'max',
      collect() {
        const oldest = stats()?.oldestPendingAt;
        this.set(oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000));
      },
    });
    new Gauge({
      name: 'wharf_hook_outbox_dropped_total',
      help: 'Deliveries refused because the outbox was full.',
      registers,
      collect() {
        this.set(stats()?.dropped ?? 0);
      },
    });
    new Gauge({
      name: 'wharf_hook_dead_letters_dropped_total',
      help: 'Dead letters dropped, oldest first, to stay within --hooks-dead-letter-limit.',
      registers,
      collect() {
        this.set(stats()?.deadLettersDropped ?? 0);
      },
    });
  }

  /** Runs `scrape` with the outbox age read at `now` (tests), else at the real clock. */
  async #at<T>(now: number | undefined, scrape: () => Promise<T>): Promise<T> {
    this.#now = now === undefined ? Date.now : () => now;
    this.#outboxSnapshot = this.#outbox?.();
    try {
      return await scrape();
    } finally {
      this.#now = Date.now;
      this.#outboxSnapshot = undefined;
    }
  }

  /** This process's metrics as data (what a worker sends the primary); `now` is the outbox age's clock. */
  collect(now?: number): Promise<MetricsSnapshot> {
    return this.#at(now, () => this.registry.getMetricsAsJSON());
  }

  /** This process's exposition text; `now` is the clock the outbox age is read with. */
  render(now?: number): Promise<string> {
    return this.#at(now, () => this.registry.metrics());
  }

  /**
   * What /metrics answers: under --workers the sum over every worker (asked of the primary, which runs
   * {@link serveClusterMetrics}), else this process's text.
   */
  exposition(): Promise<string> {
    return this.#clustered ? clusterExposition() : this.render();
  }

  /** In a --workers worker, from the start: the primary may ask any worker for its metrics at any scrape. */
  joinCluster(): void {
    if (!cluster.isWorker || this.#clustered) return;
    this.#clustered = true;
    joinMetricsCluster(() => this.collect());
  }
}
