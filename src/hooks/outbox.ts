import type { HookLogger } from './engine.ts';
import { entryKey, OutboxJournal, type StoredDelivery, type StoredEntry } from './outbox-journal.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';

export interface OutboxOptions {
  /** Folder of the journal; undefined keeps the outbox in memory only (lost on restart). */
  readonly directory: string | undefined;
  /** Undelivered entries kept at most; new ones beyond it are dropped, counted and logged. */
  readonly limit: number;
  /** Deliveries running at once, over all targets. */
  readonly concurrency: number;
  /** First retry delay; it doubles per failure of the same target up to {@link maxBackoffMs}. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly logger: HookLogger;
  readonly signal: AbortSignal;
  /** Delivers one entry (the engine records the run). */
  readonly deliver: (transport: HookTransport, delivery: HookDelivery) => Promise<DeliveryResult>;
  /** A failure retrying cannot fix (e.g. an HTTP endpoint's 400): the entry is dropped, logged, not retried. */
  readonly isFinal?: (result: DeliveryResult) => boolean;
}

interface Target {
  readonly transport: HookTransport;
  failures: number;
  retryAt: number;
}

interface Entry extends StoredEntry {
  readonly key: string;
  /** Lane: one target and one upload, delivered strictly in order. */
  readonly lane: string;
}

/**
 * The durable outbox of non-blocking deliveries. Every entry (one event for one target) is journaled when it
 * is added, delivered with the transport's own confirmation (publisher confirms, Kafka acks), retried with
 * exponential backoff per target while that target fails, and forgotten only once delivered: at least once,
 * never lost to a broker outage or a restart. Events of one upload reach one target in order (one lane per
 * target and upload, only its head in flight).
 */
export class Outbox {
  readonly #options: OutboxOptions;
  readonly #targets = new Map<string, Target>();
  readonly #journal: OutboxJournal | undefined;
  readonly #lanes = new Map<string, Entry[]>();
  readonly #busyLanes = new Set<string>();
  readonly #ready: Promise<void>;
  #isReady = false;
  #pending = 0;
  #running = 0;
  #dropped = 0;
  #wakeTimer: NodeJS.Timeout | undefined;
  #idleWaiters: (() => void)[] = [];
  #compacting = false;

  constructor(targets: ReadonlyMap<string, HookTransport>, options: OutboxOptions) {
    this.#options = options;
    for (const [name, transport] of targets) this.#targets.set(name, { transport, failures: 0, retryAt: 0 });
    this.#journal = options.directory === undefined ? undefined : new OutboxJournal(options.directory);
    this.#ready = this.#replay();
  }

  /** Entries not yet delivered. */
  get pending(): number {
    return this.#pending;
  }

  /** Entries refused because the outbox was full, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Resolves once journaled entries from before the restart are queued again. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Adds one delivery for one target; false (logged and counted) when the outbox is full. */
  add(target: string, delivery: HookDelivery): boolean {
    if (!this.#targets.has(target)) throw new Error(`unknown outbox target ${target}`);
    if (this.#pending >= this.#options.limit) {
      this.#dropped += 1;
      this.#options.logger.warn(
        {
          eventId: delivery.eventId,
          hook: delivery.hook,
          uploadId: delivery.uploadId,
          target,
          limit: this.#options.limit,
          dropped: this.#dropped,
        },
        'hook outbox full; new event dropped (older undelivered events are kept)',
      );
      return false;
    }
    const stored: StoredDelivery = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.hook,
      uploadId: delivery.uploadId,
      payload: delivery.payload,
      request: delivery.request,
      ...(delivery.label !== undefined ? { label: delivery.label } : {}),
    };
    const entry = this.#entry({ target, delivery: stored });
    this.#journal?.add(entry);
    this.#enqueue(entry);
    return true;
  }

  /** Resolves when nothing is pending (or never, while a target stays down: race it with a timeout). */
  idle(): Promise<void> {
    if (this.#pending === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops dispatching, waits for running deliveries (aborted by the engine's signal), flushes the journal. */
  async close(): Promise<void> {
    clearTimeout(this.#wakeTimer);
    await this.#ready.catch(() => {});
    while (this.#running > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.#journal?.close().catch(() => {});
  }

  #entry(stored: StoredEntry): Entry {
    return {
      ...stored,
      key: entryKey(stored.target, stored.delivery.eventId),
      lane: `${stored.target} ${stored.delivery.uploadId}`,
    };
  }

  async #replay(): Promise<void> {
    if (this.#journal === undefined) {
      this.#isReady = true;
      return;
    }
    let replayed: StoredEntry[] = [];
    try {
      replayed = await this.#journal.open();
    } catch (error) {
      this.#options.logger.error(
        { file: this.#journal.file, error: String(error) },
        'hook outbox journal unusable; undelivered events now live in memory only',
      );
    }
    // Entries from before the restart go first in their lanes, ahead of any added since start.
    const earlier = new Map<string, Entry[]>();
    let unknown = 0;
    for (const stored of replayed) {
      if (!this.#targets.has(stored.target)) {
        unknown += 1;
        continue;
      }
      const entry = this.#entry(stored);
      const lane = earlier.get(entry.lane) ?? [];
      lane.push(entry);
      earlier.set(entry.lane, lane);
      this.#pending += 1;
    }
    for (const [name, entries] of earlier)
      this.#lanes.set(name, [...entries, ...(this.#lanes.get(name) ?? [])]);
    if (unknown > 0) {
      this.#options.logger.warn(
        { entries: unknown },
        'hook outbox held events for targets no longer configured',
      );
    }
    if (replayed.length > 0) {
      this.#options.logger.info(
        { entries: replayed.length - unknown },
        'hook outbox resumed undelivered events',
      );
    }
    this.#isReady = true;
    this.#dispatch();
  }

  #enqueue(entry: Entry): void {
    const lane = this.#lanes.get(entry.lane);
    if (lane === undefined) this.#lanes.set(entry.lane, [entry]);
    else lane.push(entry);
    this.#pending += 1;
    this.#dispatch();
  }

  #dispatch(): void {
    if (!this.#isReady || this.#options.signal.aborted) return;
    const now = Date.now();
    let nextWake = Number.POSITIVE_INFINITY;
    for (const [name, lane] of this.#lanes) {
      if (this.#running >= this.#options.concurrency) return;
      if (this.#busyLanes.has(name)) continue;
      const head = lane[0];
      if (head === undefined) {
        this.#lanes.delete(name);
        continue;
      }
      const target = this.#targets.get(head.target);
      if (target === undefined) continue;
      if (target.retryAt > now) {
        nextWake = Math.min(nextWake, target.retryAt);
        continue;
      }
      this.#start(name, head, target);
    }
    if (nextWake !== Number.POSITIVE_INFINITY) this.#wakeAt(nextWake);
  }

  #wakeAt(when: number): void {
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = setTimeout(() => this.#dispatch(), Math.max(0, when - Date.now()));
  }

  #start(laneName: string, entry: Entry, target: Target): void {
    this.#busyLanes.add(laneName);
    this.#running += 1;
    const delivery: HookDelivery = { ...entry.delivery, signal: this.#options.signal };
    void this.#options
      .deliver(target.transport, delivery)
      .catch((error: unknown): DeliveryResult => ({ kind: 'unreachable', detail: String(error) }))
      .then((result) => {
        this.#running -= 1;
        this.#busyLanes.delete(laneName);
        const final = result.kind !== 'delivered' && this.#options.isFinal?.(result) === true;
        if (final) {
          this.#options.logger.error(
            { eventId: entry.delivery.eventId, hook: entry.delivery.hook, target: entry.target },
            'hook target refused the event for good; dropped from the outbox',
          );
        }
        if (result.kind === 'delivered' || final) {
          target.failures = 0;
          target.retryAt = 0;
          const lane = this.#lanes.get(laneName);
          lane?.shift();
          if (lane?.length === 0) this.#lanes.delete(laneName);
          this.#pending -= 1;
          this.#journal?.done(entry.key);
          this.#maybeCompact();
        } else if (result.kind !== 'aborted') {
          target.failures += 1;
          target.retryAt = Date.now() + this.#backoff(target.failures);
        }
        this.#dispatch();
        if (this.#pending === 0 && this.#running === 0) {
          for (const resolve of this.#idleWaiters.splice(0)) resolve();
        }
      });
  }

  #backoff(failures: number): number {
    const initial = this.#options.initialBackoffMs ?? 200;
    const max = this.#options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 20));
    // Jitter keeps several Wharf instances from retrying in lockstep.
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  /** Keeps the journal from growing without bound: rewrite it with only the owed entries now and then. */
  #maybeCompact(): void {
    const journal = this.#journal;
    if (journal === undefined || this.#compacting) return;
    if (journal.lines < Math.max(1000, this.#pending * 4)) return;
    this.#compacting = true;
    const owed = [...this.#lanes.values()].flat();
    journal
      .compact(owed)
      .catch((error: unknown) => {
        this.#options.logger.warn({ error: String(error) }, 'hook outbox compaction failed');
      })
      .finally(() => {
        this.#compacting = false;
      });
  }
}
