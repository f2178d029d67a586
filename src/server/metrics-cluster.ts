import cluster, { type Worker } from 'node:cluster';
import { type Family, mergeFamilies, renderFamilies } from './metrics-families.ts';

/**
 * /metrics under --workers: whichever worker a scrape reaches asks the primary, which asks every worker for its
 * families, sums them and hands the text back. Only a scrape sends messages; nothing runs between scrapes.
 */

const request = 'wharf:metrics-request';
const answer = 'wharf:metrics-answer';
const collect = 'wharf:metrics-collect';
const collected = 'wharf:metrics-families';
/** A worker that does not answer in this time (busy, or exiting) is left out of the sum rather than stall it. */
const workerAnswerMs = 2000;

interface MetricsMessage {
  readonly type?: string;
  readonly id?: number;
  readonly text?: string;
  readonly families?: Family[];
}

let nextRequest = 0;
const waiting = new Map<number, (text: string) => void>();
let joined = false;

/** In a worker, from the start: answers the primary's collections (scraped or not) and its sums. */
export function joinMetricsCluster(collectFamilies: () => Promise<Family[]>): void {
  if (!cluster.isWorker || joined) return;
  joined = true;
  process.on('message', (message: MetricsMessage) => {
    if (message?.type === collect && message.id !== undefined) {
      const id = message.id;
      collectFamilies().then(
        (families) => process.send?.({ type: collected, id, families }),
        () => process.send?.({ type: collected, id, families: [] }),
      );
    } else if (message?.type === answer && message.id !== undefined) {
      const resolve = waiting.get(message.id);
      waiting.delete(message.id);
      resolve?.(message.text ?? '');
    }
  });
}

/** In a worker: the exposition text summed over every worker. */
export function clusterExposition(): Promise<string> {
  const id = nextRequest++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    process.send?.({ type: request, id });
  });
}

/** In the cluster primary: answers workers' /metrics requests with the sum over every live worker. */
export function serveClusterMetrics(): void {
  let nextCollection = 0;
  const pending = new Map<number, (families: Family[]) => void>();
  const gather = (worker: Worker): Promise<Family[]> =>
    new Promise((resolve) => {
      const id = nextCollection++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve([]);
      }, workerAnswerMs);
      pending.set(id, (families) => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(families);
      });
      try {
        worker.send({ type: collect, id });
      } catch {
        pending.get(id)?.([]);
      }
    });
  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type === collected && message.id !== undefined) {
      pending.get(message.id)?.(message.families ?? []);
    } else if (message?.type === request && message.id !== undefined) {
      const id = message.id;
      const workers = Object.values(cluster.workers ?? {}).filter(
        (one): one is Worker => one?.isConnected() === true,
      );
      void Promise.all(workers.map(gather)).then((all) => {
        if (worker.isConnected()) worker.send({ type: answer, id, text: renderFamilies(mergeFamilies(all)) });
      });
    }
  });
}
