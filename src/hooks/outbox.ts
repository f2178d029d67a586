import type { HookLogger } from './engine.ts';
import type { StoredDelivery, StoredEntry } from './outbox-journal.ts';
import { entryKeyOf, type OutboxStore, type OwedEntry } from './outbox-store.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';

export interface OutboxOptions {
  /** Where undelivered entries are kept; undefined keeps the outbox in memory only (lost on restart). */
  readonly store: OutboxStore | undefined;
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
  /** Order in the store; entries taken over from another instance are placed by it. */
  readonly seq: number;
}

/**
 * The durable outbox of non-blocking deliveries. Every entry (one event for one target) is stored when it is
 * added, delivered with the transport's own confirmation (publisher confirms, Kafka acks), retried with
 * exponential backoff per target while that target fails, and removed from the store only once delivered: at
 * least once, never lost to a broker outage or a restart. Events of one upload reach one target in order (one
 * lane per target and upload, only its head in flight). With a shared store, entries of an instance that died
 * are claimed by this one and delivered here.
 */
export class Outbox {
  readonly #options: OutboxOptions;
  readonly #targets = new Map<string, Target>();
  #store: OutboxStore | undefined;
  readonly #lanes = new Map<string, Entry[]>();
  readonly #keys = new Set<string>();
  readonly #busyLanes = new Set<string>();
  readonly #ready: Promise<void>;
  #isReady = false;
  #pending = 0;
  /** Entries being written to the store, not yet in a lane. */
  #adding = 0;
  #running = 0;
  /** Delivered entries being removed from the store. */
  #removing = 0;
  #dropped = 0;
  #wakeTimer: NodeJS.Timeout | undefined;
  #claimTimer: NodeJS.Timeout | undefined;
  #claiming = false;
  #idleWaiters: (() => void)[] = [];

  constructor(targets: ReadonlyMap<string, HookTransport>, options: OutboxOptions) {
    this.#options = options;
    for (const [name, transport] of targets) this.#targets.set(name, { transport, failures: 0, retryAt: 0 });
    this.#store = options.store;
    this.#ready = this.#open();
  }

  /** Entries not yet delivered by this process. */
  get pending(): number {
    return this.#pending + this.#adding;
  }

  /** Entries refused because the outbox was full, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Resolves once stored entries from before the start are queued again. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Adds one delivery for one target, stored before it is first sent; resolves to false (logged and counted)
   * when the outbox is full.
   */
  async add(target: string, delivery: HookDelivery): Promise<boolean> {
    if (!this.#targets.has(target)) throw new Error(`unknown outbox target ${target}`);
    if (this.pending >= this.#options.limit) return this.#drop(target, delivery);
    const stored: StoredDelivery = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.hook,
      uploadId: delivery.uploadId,
      payload: delivery.payload,
      request: delivery.request,
      ...(delivery.label !== undefined ? { label: delivery.label } : {}),
      ...(delivery.cloudEvent !== undefined ? { cloudEvent: delivery.cloudEvent } : {}),
    };
    const entry: StoredEntry = { target, delivery: stored };
    this.#adding += 1;
    let owed: OwedEntry | undefined;
    try {
      owed =
        this.#store === undefined
          ? { ...entry, seq: 0 }
          : await this.#store.append(entry, this.#options.limit);
    } catch (error) {
      // Still delivered from memory; only a crash before the delivery could lose it now.
      this.#options.logger.error(
        { eventId: delivery.eventId, store: this.#store?.description, error: String(error) },
        'hook outbox store unreachable; event kept in memory only',
      );
      owed = { ...entry, seq: 0 };
    } finally {
      this.#adding -= 1;
    }
    if (owed === undefined) {
      this.#settleIdle();
      return this.#drop(target, delivery);
    }
    this.#enqueue(this.#entry(owed), 'back');
    return true;
  }

  /** Resolves when nothing is pending (or never, while a target stays down: race it with a timeout). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops dispatching, waits for running deliveries (aborted by the engine's signal), closes the store. */
  async close(): Promise<void> {
    clearTimeout(this.#wakeTimer);
    clearInterval(this.#claimTimer);
    await this.#ready.catch(() => {});
    while (this.#running > 0 || this.#adding > 0 || this.#removing > 0 || this.#claiming) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.#store?.close().catch(() => {});
  }

  #drop(target: string, delivery: HookDelivery): false {
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

  #entry(owed: OwedEntry): Entry {
    return {
      target: owed.target,
      delivery: owed.delivery,
      seq: owed.seq,
      key: entryKeyOf(owed),
      lane: `${owed.target} ${owed.delivery.uploadId}`,
    };
  }

  async #open(): Promise<void> {
    const store = this.#store;
    if (store === undefined) {
      this.#isReady = true;
      return;
    }
    let owed: OwedEntry[] = [];
    try {
      owed = await store.open([...this.#targets.keys()]);
    } catch (error) {
      if (store.claimIntervalMs === undefined) {
        this.#store = undefined;
        this.#options.logger.error(
          { store: store.description, error: String(error) },
          'hook outbox journal unusable; undelivered events now live in memory only',
        );
      } else {
        this.#options.logger.error(
          { store: store.description, error: String(error) },
          'hook outbox store unreachable at startup; retrying',
        );
      }
    }
    // Entries from before the start go first in their lanes, ahead of any added since.
    let unknown = 0;
    for (const stored of [...owed].reverse()) {
      if (!this.#targets.has(stored.target)) unknown += 1;
      else this.#enqueue(this.#entry(stored), 'front');
    }
    if (unknown > 0) {
      this.#options.logger.warn(
        { entries: unknown },
        'hook outbox held events for targets no longer configured',
      );
    }
    if (owed.length > unknown) {
      this.#options.logger.info({ entries: owed.length - unknown }, 'hook outbox resumed undelivered events');
    }
    if (store.claimIntervalMs !== undefined && this.#store !== undefined) {
      this.#claimTimer = setInterval(() => this.#claim(), store.claimIntervalMs);
      this.#claimTimer.unref();
    }
    this.#isReady = true;
    this.#dispatch();
  }

  /** Renews this instance's claims and takes over the entries of instances that stopped renewing theirs. */
  #claim(): void {
    const store = this.#store;
    if (store === undefined || this.#claiming || this.#options.signal.aborted) return;
    this.#claiming = true;
    store
      .claim([...this.#targets.keys()])
      .then((claimed) => {
        let taken = 0;
        for (const owed of claimed) {
          const entry = this.#entry(owed);
          if (this.#keys.has(entry.key) || !this.#targets.has(entry.target)) continue;
          this.#enqueue(entry, 'ordered');
          taken += 1;
        }
        if (taken > 0) {
          this.#options.logger.info(
            { entries: taken, store: store.description },
            'hook outbox took over undelivered events of a stopped instance',
          );
        }
      })
      .catch((error: unknown) => {
        this.#options.logger.warn(
          { store: store.description, error: String(error) },
          'hook outbox could not renew or take over claims; retrying',
        );
      })
      .finally(() => {
        this.#claiming = false;
      });
  }

  /** `front`/`back` of its lane, or `ordered`: by store order, behind the entry in flight. */
  #enqueue(entry: Entry, where: 'front' | 'back' | 'ordered'): void {
    if (this.#keys.has(entry.key)) return;
    this.#keys.add(entry.key);
    const lane = this.#lanes.get(entry.lane);
    if (lane === undefined) this.#lanes.set(entry.lane, [entry]);
    else if (where === 'front') lane.splice(this.#busyLanes.has(entry.lane) ? 1 : 0, 0, entry);
    else if (where === 'back') lane.push(entry);
    else {
      const first = this.#busyLanes.has(entry.lane) ? 1 : 0;
      let at = lane.length;
      while (at > first && (lane[at - 1]?.seq ?? 0) > entry.seq) at -= 1;
      lane.splice(at, 0, entry);
    }
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
          this.#keys.delete(entry.key);
          this.#pending -= 1;
          this.#forget(entry);
        } else if (result.kind !== 'aborted') {
          target.failures += 1;
          target.retryAt = Date.now() + this.#backoff(target.failures);
        }
        this.#dispatch();
        this.#settleIdle();
      });
  }

  #forget(entry: Entry): void {
    const store = this.#store;
    if (store === undefined) return;
    this.#removing += 1;
    store
      .remove(entry)
      .catch((error: unknown) => {
        // It stays in the store and is delivered once more later: at least once, never lost.
        this.#options.logger.warn(
          { eventId: entry.delivery.eventId, store: store.description, error: String(error) },
          'hook outbox could not forget a delivered event',
        );
      })
      .finally(() => {
        this.#removing -= 1;
        this.#settleIdle();
      });
  }

  #isIdle(): boolean {
    return this.pending === 0 && this.#running === 0 && this.#removing === 0;
  }

  #settleIdle(): void {
    if (this.#isIdle()) {
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  #backoff(failures: number): number {
    const initial = this.#options.initialBackoffMs ?? 200;
    const max = this.#options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 20));
    // Jitter keeps several Wharf instances from retrying in lockstep.
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }
}
