import cluster from 'node:cluster';
import { AggregatorRegistry, Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { OutboxStats } from '../hooks/delivery/delivery-control.ts';
import { redactTarget } from '../hooks/delivery/target-guard.ts';
import type { RunRecord } from '../hooks/history/run-log.ts';
import type { UploadRecord } from '../info/upload-record.ts';
import type { UploadActivity } from '../uploads/activity.ts';

/**
 * Prometheus metrics on prom-client: rustus's upload metrics under their rustus names, Wharf's own (`wharf_`
 * prefix), and the process's (CPU, memory, handles, event-loop delay: prom-client's defaults). Under --workers
 * each worker keeps its own registry and /metrics asks the primary for the sum over every worker (prom-client's
 * cluster aggregator), whichever worker the scrape reaches.
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
  /** prom-client's process and event-loop metrics (the server has them; unit tests of the counters need not). */
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
  readonly #requests: Counter<'method' | 'status'>;
  readonly #runs: Counter<'event' | 'target' | 'status'>;
  readonly #durations: Histogram<'event' | 'target'>;
  /** method -> status -> its labelled counter: two Map lookups per request once seen, no label hashing. */
  readonly #requestCounters = new Map<string, Map<number, { inc(): void }>>();
  /** Target name -> as shown (URL password masked): parsed once per target, not once per hook run. */
  readonly #shownTargets = new Map<string, string>();
  #outbox: OutboxStatsSource | undefined;
  /** The clock the outbox age is read with (a render at a given time, in tests). */
  #now: () => number = Date.now;
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
    this.#requests = new Counter({
      name: 'wharf_http_requests_total',
      help: 'HTTP requests answered, by method and status.',
      labelNames: ['method', 'status'],
      registers,
    });
    this.#runs = new Counter({
      name: 'wharf_hook_runs_total',
      help: 'Hook runs finished, by event, target and status.',
      labelNames: ['event', 'target', 'status'],
      registers,
    });
    this.#durations = new Histogram({
      name: 'wharf_hook_run_duration_seconds',
      help: 'Hook run durations, by event and target.',
      labelNames: ['event', 'target'],
      buckets: durationBuckets,
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
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
    let byStatus = this.#requestCounters.get(name);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#requestCounters.set(name, byStatus);
    }
    let counter = byStatus.get(status);
    if (counter === undefined) {
      counter = this.#requests.labels(name, String(status));
      byStatus.set(status, counter);
    }
    counter.inc();
  }

  /** Counts one finished hook run (pending and running transitions are not runs yet). */
  run(record: RunRecord): void {
    if (record.status === 'pending' || record.status === 'running') return;
    let targetName = this.#shownTargets.get(record.target);
    if (targetName === undefined) {
      targetName = redactTarget(record.target);
      this.#shownTargets.set(record.target, targetName);
    }
    this.#runs.inc({ event: record.event, target: targetName, status: record.status });
    if (record.status === 'skipped') return;
    this.#durations.observe({ event: record.event, target: targetName }, record.durationMs / 1000);
  }

  outboxFrom(source: OutboxStatsSource): void {
    if (this.#outbox === undefined) this.#registerOutbox();
    this.#outbox = source;
  }

  #registerOutbox(): void {
    const registers = [this.registry];
    const stats = (): OutboxStats | undefined => this.#outbox?.();
    new Gauge({
      name: 'wharf_hook_outbox_depth',
      help: 'Hook deliveries waiting in the outbox.',
      registers,
      collect() {
        this.set(stats()?.depth ?? 0);
      },
    });
    const now = (): number => this.#now();
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

  /** This process's exposition text; `now` is the clock the outbox age is read with. */
  async render(now?: number): Promise<string> {
    this.#now = now === undefined ? Date.now : () => now;
    try {
      return await this.registry.metrics();
    } finally {
      this.#now = Date.now;
    }
  }

  /**
   * What /metrics answers: under --workers the sum over every worker (asked of the primary, which runs
   * {@link serveClusterMetrics}), else this process's text.
   */
  async exposition(): Promise<string> {
    return this.#clustered ? askPrimary() : this.render();
  }

  /**
   * In a --workers worker, from the start: the primary asks every worker for its registry when any scrape
   * comes, so each must answer, scraped or not.
   */
  joinCluster(): void {
    if (!cluster.isWorker || this.#clustered) return;
    this.#clustered = true;
    AggregatorRegistry.setRegistries([this.registry]);
    // Constructing one makes prom-client answer the primary's requests for this worker's registry.
    new AggregatorRegistry();
    listenForAnswers();
  }
}

const metricsRequest = 'wharf:metrics-request';
const metricsAnswer = 'wharf:metrics-answer';
let workerListening = false;
let nextRequest = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();

function listenForAnswers(): void {
  if (!workerListening) {
    workerListening = true;
    process.on('message', (message: { type?: string; id?: number; text?: string; error?: string }) => {
      if (message?.type !== metricsAnswer || message.id === undefined) return;
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.text ?? '');
    });
  }
}

/** A worker asks the primary for the sum over all workers; the answer comes back by id. */
function askPrimary(): Promise<string> {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    process.send?.({ type: metricsRequest, id });
  });
}

/** In the cluster primary: answers workers' /metrics requests with prom-client's sum over every worker. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== metricsRequest) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: metricsAnswer, id: message.id, text }),
      (error: Error) => worker.send({ type: metricsAnswer, id: message.id, error: error.message }),
    );
  });
}
