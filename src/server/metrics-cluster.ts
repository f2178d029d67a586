import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from './prom-client.ts';

/**
 * /metrics under --workers: whichever worker a scrape reaches asks the primary, which asks every worker for its
 * registry as data and sums them with prom-client's AggregatorRegistry (each metric by its own aggregator: sum,
 * max, first, ...), then hands the text back. Only a scrape sends messages; nothing runs between scrapes. The
 * messages are Wharf's own rather than prom-client's `clusterMetrics()` so that a worker that does not answer (busy,
 * starting, exiting) is left out of one scrape instead of failing it after 5 s.
 */

/** What one process's registry holds at a scrape (`registry.getMetricsAsJSON()`): what a worker sends the primary. */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

const request = 'wharf:metrics-request';
const answer = 'wharf:metrics-answer';
const collect = 'wharf:metrics-collect';
const collected = 'wharf:metrics-snapshot';
/** A worker that does not answer in this time (busy, or exiting) is left out of the sum rather than stall it. */
const workerAnswerMs = 2000;

interface MetricsMessage {
  readonly type?: string;
  readonly id?: number;
  readonly text?: string;
  readonly metrics?: MetricsSnapshot;
  /** Why the primary could not sum the workers' metrics. */
  readonly error?: string;
}

let nextRequest = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let joined = false;

/** In a worker, from the start: answers the primary's collections (scraped or not) and its sums. */
export function joinMetricsCluster(collectMetrics: () => Promise<MetricsSnapshot>): void {
  if (!cluster.isWorker || joined) return;
  joined = true;
  process.on('message', (message: MetricsMessage) => {
    if (message?.type === collect && message.id !== undefined) {
      const id = message.id;
      collectMetrics().then(
        (metrics) => process.send?.({ type: collected, id, metrics }),
        () => process.send?.({ type: collected, id, metrics: [] }),
      );
    } else if (message?.type === answer && message.id !== undefined) {
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.text ?? '');
    }
  });
}

/** In a worker: the exposition text summed over every worker. */
export function clusterExposition(): Promise<string> {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    process.send?.({ type: request, id });
  });
}

/** In the cluster primary: answers workers' /metrics requests with the sum over every live worker. */
export function serveClusterMetrics(): void {
  let nextCollection = 0;
  const pending = new Map<number, (metrics: MetricsSnapshot) => void>();
  const gather = (worker: Worker): Promise<MetricsSnapshot> =>
    new Promise((resolve) => {
      const id = nextCollection++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve([]);
      }, workerAnswerMs);
      pending.set(id, (metrics) => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(metrics);
      });
      try {
        worker.send({ type: collect, id });
      } catch {
        pending.get(id)?.([]);
      }
    });
  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type === collected && message.id !== undefined) {
      pending.get(message.id)?.(message.metrics ?? []);
    } else if (message?.type === request && message.id !== undefined) {
      const id = message.id;
      const workers = Object.values(cluster.workers ?? {}).filter(
        (one): one is Worker => one?.isConnected() === true,
      );
      void Promise.all(workers.map(gather))
        .then((all) => AggregatorRegistry.aggregate(all).metrics())
        .then(
          (text) => ({ type: answer, id, text }),
          (error: unknown) => ({
            type: answer,
            id,
            error: error instanceof Error ? error.message : String(error),
          }),
        )
        .then((reply) => {
          if (worker.isConnected()) worker.send(reply);
        });
    }
  });
}
