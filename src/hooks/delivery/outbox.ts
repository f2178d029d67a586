import { setImmediate as nextTurn } from 'node:timers/promises';
import type { HookRequest } from '../events.ts';
import type { HookLogger } from '../hook-logger.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../transports/types.ts';
import { DeadLetterBook, deadLetterOf, matchesDeadLetter } from './dead-letters.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterReason,
  DeliveryNotice,
  DisabledReason,
  OutboxStats,
} from './delivery-control.ts';
import { type DeliveryVerdict, failureOf, judgeDelivery } from './delivery-verdict.ts';
import { AgeHeap, Fifo, TimeHeap } from './lane-queues.ts';
import { entryKey, type StoredDelivery, type StoredEntry } from './outbox-journal.ts';
import {
  type DeadEntry,
  entryKeyOf,
  type OutboxStore,
  type OwedEntry,
  type SharedOrder,
} from './outbox-store.ts';
import { nextDelay, type RetryPolicy } from './retry-policy.ts';
import { redactTarget } from './target-guard.ts';
import { DeliveryNotices, TargetHealthRecord } from './target-health.ts';

/** Default `--hooks-disable-after`: a target failing every attempt for 5 days is disabled (Svix). */
export const defaultDisableAfterMs = 5 * 86_400_000;

export interface OutboxOptions {
  /** Where undelivered entries are kept; undefined keeps the outbox in memory only (lost on restart). */
  readonly store: OutboxStore | undefined;
  /** Undelivered entries kept at most; new ones beyond it are dropped, counted and logged. */
  readonly limit: number;
  /** Deliveries running at once, over all targets. */
  readonly concurrency: number;
  /** Backoff of targets without a {@link OutboxOptions.retryPolicy}: first delay, doubling up to the max. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** How each target is retried (default: the backoff above, never dead). */
  readonly retryPolicy?: (target: string) => RetryPolicy;
  /** A target failing every attempt this long is disabled (default 5 days). */
  readonly disableAfterMs?: number;
  /** Dead letters kept at most (in the store, and in memory); beyond it the oldest are dropped (default 10000). */
  readonly deadLetterLimit?: number;
  readonly logger: HookLogger;
  readonly signal: AbortSignal;
  /** Delivers one entry (the engine records the run); `attempt` is 1 for the first try of this event here. */
  readonly deliver: (
    transport: HookTransport,
    delivery: HookDelivery,
    attempt: number,
  ) => Promise<DeliveryResult>;
  /** What a result means (default {@link judgeDelivery}: 410, `webhook-delivery`, final 4xx, Retry-After). */
  readonly judge?: (result: DeliveryResult) => DeliveryVerdict;
  /** Called when a failed entry waits for its next attempt (the engine shows it as pending). */
  readonly onRetry?: (transport: HookTransport, entry: StoredEntry, nextAttempt: number) => void;
}

interface Target {
  readonly transport: HookTransport;
  readonly policy: RetryPolicy;
  readonly health: TargetHealthRecord;
  /** Failures in a row (drives a backoff policy, which pauses the whole target). */
  failures: number;
  /** Nothing is sent to the target before (backoff, or its `Retry-After`). */
  retryAt: number;
  /** Its lanes whose head may be sent as soon as the target may be sent to, oldest first. */
  readonly ready: Fifo<Lane>;
  /** Entries owed to it by this process. */
  pending: number;
  /** Its deliveries under way (sent, or their place in the shared order being checked). */
  running: number;
}

/** One target and one upload: its entries are delivered strictly in order, only the head in flight. */
interface Lane {
  readonly name: string;
  readonly target: string;
  readonly entries: Entry[];
  /** Its head is being sent (or its place in the shared order checked). */
  busy: boolean;
  /** In its target's ready queue. */
  queued: boolean;
}

interface Entry extends StoredEntry {
  readonly addedAt: number;
  /** Its place in the outbox's {@link AgeHeap} of pending entries (-1 once out of it). */
  agePlace: number;
  readonly key: string;
  /** Lane: one target and one upload, delivered strictly in order. */
  readonly lane: string;
  /** Order in the store; entries taken over from another instance are placed by it. */
  readonly seq: number;
  /** The upload's event number; orders the lane when set (entries of an older Wharf have none). */
  readonly sequence: number | undefined;
  /** A shared store said no earlier event of its upload is owed to its target: it may go (and stays so). */
  cleared: boolean;
  /** Times it found an earlier event of its upload still owed elsewhere (spaces the next look). */
  waits: number;
  /** Attempts made by this process (a restart or a takeover starts again at 0). */
  attempts: number;
  /** Not tried again before (its schedule, its target's `Retry-After`). */
  retryAt: number;
}

/** Entries resumed from the store between two turns of the event loop at start. */
const replayPerTurn = 1000;

/** How soon an entry waiting for an earlier event of its upload on another instance looks again (doubling). */
const orderPollMs = 20;
const orderPollMaxMs = 1000;

/** Whether `placed` belongs after `entry` in a lane: by the upload's event number, else by store order. */
function comesAfter(placed: Entry | undefined, entry: Entry): boolean {
  if (placed === undefined) return false;
  if (placed.sequence !== undefined && entry.sequence !== undefined) return placed.sequence > entry.sequence;
  return placed.seq > entry.seq;
}

/** What the delivery control needs to know of one target. */
export interface OutboxTargetView {
  readonly transport: HookTransport;
  readonly policy: RetryPolicy;
  readonly health: TargetHealthRecord;
  readonly pending: number;
  readonly deadLetters: number;
}

/**
 * The durable outbox of non-blocking deliveries. Every entry (one event for one target) is stored when it is
 * added, delivered with the transport's own confirmation (publisher confirms, Kafka acks, HTTP 2xx), retried
 * per its target's {@link RetryPolicy}, and removed from the store only once delivered: at least once, never
 * lost to a broker outage or a restart. An entry whose schedule runs out, or that its target refuses for good,
 * becomes a dead letter (kept in the store until resent). A disabled target keeps its entries unsent. Events of one upload reach one target in order (one
 * lane per target and upload, only its head in flight). With a shared store, entries of an instance that died
 * are claimed by this one and delivered here, and a numbered entry goes only once the store says no event of
 * its upload with a lower number is owed to its target by any instance ({@link SharedOrder}).
 */
export class Outbox {
  readonly #options: OutboxOptions;
  readonly #targets = new Map<string, Target>();
  #store: OutboxStore | undefined;
  readonly #lanes = new Map<string, Lane>();
  readonly #keys = new Set<string>();
  /** Lanes whose head waits for its own retry time, earliest first (entries may be stale: checked when taken). */
  readonly #waiting = new TimeHeap<Lane>();
  /** Every entry in a lane, oldest first: the oldest pending age without a look at each waiting entry. */
  readonly #ages = new AgeHeap<Entry>();
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
  /** When the wake timer fires (so that a dispatch asking for the same time leaves it be). */
  #wakeTime = Number.POSITIVE_INFINITY;
  #claimTimer: NodeJS.Timeout | undefined;
  #claiming = false;
  #idleWaiters: (() => void)[] = [];
  readonly #dead: DeadLetterBook;
  readonly notices: DeliveryNotices;

  constructor(targets: ReadonlyMap<string, HookTransport>, options: OutboxOptions) {
    this.#options = options;
    this.notices = new DeliveryNotices(options.logger);
    this.#dead = new DeadLetterBook(() => this.#store, options.logger, options.deadLetterLimit);
    for (const [name, transport] of targets) this.addTarget(name, transport);
    this.#store = options.store;
    this.#ready = this.#open();
  }

  /** Adds a target (at start or at run time); its policy comes from {@link OutboxOptions.retryPolicy}. */
  addTarget(name: string, transport: HookTransport): void {
    if (this.#targets.has(name)) return;
    const policy: RetryPolicy = this.#options.retryPolicy?.(name) ?? {
      kind: 'backoff',
      initialMs: this.#options.initialBackoffMs ?? 200,
      maxMs: this.#options.maxBackoffMs ?? 30_000,
    };
    this.#targets.set(name, {
      transport,
      policy,
      health: new TargetHealthRecord(),
      failures: 0,
      retryAt: 0,
      ready: new Fifo<Lane>(),
      pending: 0,
      running: 0,
    });
    this.#dispatch();
  }

  hasTarget(name: string): boolean {
    return this.#targets.has(name);
  }

  targetNames(): string[] {
    return [...this.#targets.keys()];
  }

  /** One target's transport, policy, health and counts; undefined for an unknown target. */
  target(name: string): OutboxTargetView | undefined {
    const target = this.#targets.get(name);
    if (target === undefined) return undefined;
    return {
      transport: target.transport,
      policy: target.policy,
      health: target.health,
      pending: target.pending,
      deadLetters: this.#dead.count(name),
    };
  }

  /** Disables (its entries wait, unsent) or enables a target; false for an unknown one. */
  setEnabled(name: string, enabled: boolean, reason: DisabledReason = 'manual'): boolean {
    const target = this.#targets.get(name);
    if (target === undefined) return false;
    if (enabled) {
      if (!target.health.disabled) return true;
      target.health.disabledReason = undefined;
      target.health.failingSince = undefined;
      target.failures = 0;
      target.retryAt = 0;
      this.notices.emit({ type: 'target.enabled', target: name, at: Date.now() });
      this.#dispatch();
    } else {
      if (target.health.disabled) return true;
      target.health.disabledReason = reason;
      this.notices.emit({ type: 'target.disabled', target: name, reason, at: Date.now() });
    }
    return true;
  }

  /** Constant time whatever waits: a metrics scrape or an admin call never walks the backlog. */
  stats(): OutboxStats {
    return {
      depth: this.pending,
      oldestPendingAt: this.#ages.oldest(),
      dropped: this.#dropped,
      deadLettersDropped: this.#dead.dropped,
    };
  }

  onNotice(listener: (notice: DeliveryNotice) => void): () => void {
    return this.notices.on(listener);
  }

  /** Dead letters in the store and in memory, oldest first. */
  async deadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    return (await this.#deadEntries()).filter((entry) => matchesDeadLetter(entry, filter)).map(deadLetterOf);
  }

  /**
   * Sends one event again: its dead letters are queued anew (attempts from 1), and its entries still waiting
   * for a retry are tried now. Returns how many deliveries that makes.
   */
  async resend(eventId: string, target?: string): Promise<number> {
    let count = 0;
    for (const lane of this.#lanes.values()) {
      for (const entry of lane.entries) {
        if (entry.delivery.eventId !== eventId || (target !== undefined && entry.target !== target)) continue;
        entry.retryAt = 0;
        const owner = this.#targets.get(entry.target);
        if (owner !== undefined) owner.retryAt = 0;
        this.#markReady(lane);
        count += 1;
      }
    }
    const dead = (await this.#deadEntries()).filter(
      (entry) => entry.delivery.eventId === eventId && (target === undefined || entry.target === target),
    );
    for (const entry of dead) if (await this.#revive(entry)) count += 1;
    this.#dispatch();
    return count;
  }

  /** Queues again every dead letter dead at or after `since` (of one target, or all); returns how many. */
  async recover(since: number, target?: string): Promise<number> {
    let count = 0;
    for (const entry of await this.#deadEntries()) {
      if (!matchesDeadLetter(entry, { since, ...(target === undefined ? {} : { target }) })) continue;
      if (await this.#revive(entry)) count += 1;
    }
    return count;
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
  add(target: string, delivery: HookDelivery): Promise<boolean> {
    const offered = this.offer(target, delivery);
    return typeof offered === 'boolean' ? Promise.resolve(offered) : offered;
  }

  /**
   * {@link Outbox.add}, answered at once when the store takes entries at once (the file journal, or none):
   * true when stored and queued, false when the outbox is full; a promise of that otherwise (a shared store),
   * or of the failure. Every post event adds one entry per durable target: an async function, its await of the
   * store and the caller's `then` cost each one three promises and several turns of the microtask queue.
   */
  offer(target: string, delivery: HookDelivery): boolean | Promise<boolean> {
    try {
      // Optional fields are set once the object is built: a literal with conditional spreads takes V8's slow
      // path, and every post event adds one of these per target.
      const stored: { -readonly [K in keyof StoredDelivery]: StoredDelivery[K] } = {
        eventId: delivery.eventId,
        event: delivery.event,
        hook: delivery.hook,
        uploadId: delivery.uploadId,
        payload: delivery.payload,
        request: storedRequest(delivery.request, this.#targets.get(target)?.transport.requestHeaders),
      };
      if (delivery.sequence !== undefined) stored.sequence = delivery.sequence;
      if (delivery.label !== undefined) stored.label = delivery.label;
      if (delivery.cloudEvent !== undefined) stored.cloudEvent = delivery.cloudEvent;
      const store = this.#store;
      if (store !== undefined && store.appendNow === undefined) return this.#add(target, stored);
      return this.#addNow(target, stored, store);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@link Outbox.#add} with a store that takes the entry at once ({@link OutboxStore.appendNow}), or none. */
  #addNow(target: string, stored: StoredDelivery, store: OutboxStore | undefined): boolean {
    if (!this.#targets.has(target)) throw new Error(`unknown outbox target ${target}`);
    if (this.pending >= this.#options.limit) return this.#drop(target, stored);
    const entry: StoredEntry = { target, delivery: stored, addedAt: Date.now() };
    const key = entryKey(target, stored.eventId);
    let owed: OwedEntry | undefined;
    try {
      owed =
        store?.appendNow === undefined ? inMemory(entry) : store.appendNow(entry, this.#options.limit, key);
    } catch (error) {
      // Still delivered from memory; only a crash before the delivery could lose it now.
      this.#options.logger.error(
        { eventId: stored.eventId, store: store?.description, error: String(error) },
        'hook outbox store unreachable; event kept in memory only',
      );
      owed = inMemory(entry);
    }
    if (owed === undefined) return this.#drop(target, stored);
    this.#enqueue(this.#entry(owed, key), stored.sequence === undefined ? 'back' : 'ordered');
    return true;
  }

  async #add(target: string, stored: StoredDelivery): Promise<boolean> {
    if (!this.#targets.has(target)) throw new Error(`unknown outbox target ${target}`);
    if (this.pending >= this.#options.limit) return this.#drop(target, stored);
    const entry: StoredEntry = { target, delivery: stored, addedAt: Date.now() };
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
        { eventId: stored.eventId, store: this.#store?.description, error: String(error) },
        'hook outbox store unreachable; event kept in memory only',
      );
      owed = { ...entry, seq: 0 };
    } finally {
      this.#adding -= 1;
    }
    if (owed === undefined) {
      this.#settleIdle();
      return this.#drop(target, stored);
    }
    // By number when it has one: a resent dead letter goes back before its upload's later events.
    this.#enqueue(this.#entry(owed), stored.sequence === undefined ? 'back' : 'ordered');
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
    this.#wakeTime = Number.POSITIVE_INFINITY;
    clearInterval(this.#claimTimer);
    await this.#ready.catch(() => {});
    while (this.#running > 0 || this.#adding > 0 || this.#removing > 0 || this.#claiming) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await this.#store?.close().catch(() => {});
  }

  #drop(target: string, delivery: StoredDelivery): false {
    this.#dropped += 1;
    this.#options.logger.warn(
      {
        eventId: delivery.eventId,
        hook: delivery.hook,
        uploadId: delivery.uploadId,
        target: redactTarget(target),
        limit: this.#options.limit,
        dropped: this.#dropped,
      },
      'hook outbox full; new event dropped (older undelivered events are kept)',
    );
    return false;
  }

  /** `key`: {@link entryKeyOf} the entry, when the caller has it. */
  #entry(owed: OwedEntry, key = entryKeyOf(owed)): Entry {
    return {
      target: owed.target,
      delivery: owed.delivery,
      addedAt: owed.addedAt ?? Date.now(),
      agePlace: -1,
      seq: owed.seq,
      sequence: owed.delivery.sequence,
      cleared: false,
      waits: 0,
      key,
      lane: `${owed.target} ${owed.delivery.uploadId}`,
      attempts: 0,
      retryAt: 0,
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
    // Entries from before the start go first in their lanes, ahead of any added since (nothing is sent before
    // the last is in). In pieces, a turn of the event loop each: the server answers uploads meanwhile.
    let unknown = 0;
    for (let at = owed.length - 1; at >= 0; at--) {
      const stored = owed[at] as OwedEntry;
      if (!this.#targets.has(stored.target)) unknown += 1;
      else this.#enqueue(this.#entry(stored), 'front');
      if (at % replayPerTurn === 0) await nextTurn();
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
    const dead = await this.#dead.recount();
    if (dead > 0)
      this.#options.logger.info({ deadLetters: dead }, 'hook outbox holds dead letters (resend them)');
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

  /**
   * `front`/`back` of its lane, or `ordered`: behind the entry in flight, by the upload's event number when
   * both have one, else by store order.
   */
  #enqueue(entry: Entry, where: 'front' | 'back' | 'ordered'): void {
    if (this.#keys.has(entry.key)) return;
    const target = this.#targets.get(entry.target);
    if (target === undefined) return;
    this.#keys.add(entry.key);
    let lane = this.#lanes.get(entry.lane);
    if (lane === undefined) {
      lane = { name: entry.lane, target: entry.target, entries: [entry], busy: false, queued: false };
      this.#lanes.set(lane.name, lane);
    } else if (where === 'front') lane.entries.splice(lane.busy ? 1 : 0, 0, entry);
    else if (where === 'back') lane.entries.push(entry);
    else {
      const entries = lane.entries;
      const first = lane.busy ? 1 : 0;
      let at = entries.length;
      while (at > first && comesAfter(entries[at - 1], entry)) at -= 1;
      entries.splice(at, 0, entry);
    }
    this.#pending += 1;
    target.pending += 1;
    this.#ages.push(entry);
    this.#markReady(lane);
    this.#dispatch();
  }

  /** Puts a lane that is not in flight in its target's ready queue (once; checked again when taken out). */
  #markReady(lane: Lane): void {
    if (lane.busy || lane.queued || this.#lanes.get(lane.name) !== lane || lane.entries.length === 0) return;
    const target = this.#targets.get(lane.target);
    if (target === undefined) return;
    lane.queued = true;
    target.ready.push(lane);
  }

  /**
   * Starts what may go now, up to the concurrency, taking one lane per target in turn. It costs the lanes it
   * starts (and the stale queue items it meets), never the lanes that wait: a target that is paused or disabled
   * keeps its ready queue untouched, and a lane whose head waits for its own retry sits in a heap by time.
   */
  #dispatch(): void {
    if (!this.#isReady || this.#options.signal.aborted) return;
    const now = Date.now();
    // Lanes whose head's retry time has come go back to their target's queue.
    while ((this.#waiting.peekTime() ?? Number.POSITIVE_INFINITY) <= now) {
      const lane = this.#waiting.pop();
      if (lane !== undefined) this.#markReady(lane);
    }
    let nextWake = this.#waiting.peekTime() ?? Number.POSITIVE_INFINITY;
    let progress = true;
    while (progress && this.#running < this.#options.concurrency) {
      progress = false;
      for (const target of this.#targets.values()) {
        if (this.#running >= this.#options.concurrency) break;
        if (target.ready.size === 0 || target.health.disabled) continue;
        if (target.retryAt > now) {
          nextWake = Math.min(nextWake, target.retryAt);
          continue;
        }
        // A target in backoff (its last attempt failed: a broker down) is probed with one event at a time, not
        // sent a wave of them all failing alike; its first delivery resumes the concurrency.
        if (target.failures > 0 && target.policy.kind === 'backoff' && target.running > 0) continue;
        progress = true;
        const lane = target.ready.shift();
        if (lane === undefined) continue;
        lane.queued = false;
        if (lane.busy || this.#lanes.get(lane.name) !== lane) continue;
        const head = lane.entries[0];
        if (head === undefined) {
          this.#lanes.delete(lane.name);
          continue;
        }
        if (head.retryAt > now) {
          this.#waiting.push(head.retryAt, lane);
          nextWake = Math.min(nextWake, head.retryAt);
          continue;
        }
        this.#start(lane, head, target);
      }
    }
    if (nextWake !== Number.POSITIVE_INFINITY) this.#wakeAt(nextWake);
  }

  #wakeAt(when: number): void {
    // A timer set for this time or earlier stays (its dispatch looks again): while a target is paused, every
    // added event asks for the same wake.
    if (this.#wakeTimer !== undefined && this.#wakeTime <= when) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeTime = when;
    // Capped: a timer longer than 2^31 ms fires at once in Node.
    this.#wakeTimer = setTimeout(
      () => {
        this.#wakeTimer = undefined;
        this.#wakeTime = Number.POSITIVE_INFINITY;
        this.#dispatch();
      },
      Math.min(Math.max(0, when - Date.now()), 2 ** 30),
    );
  }

  #start(lane: Lane, entry: Entry, target: Target): void {
    lane.busy = true;
    this.#running += 1;
    target.running += 1;
    const order = entry.sequence === undefined || entry.cleared ? undefined : this.#store?.order;
    if (order === undefined) {
      this.#send(lane, entry, target);
      return;
    }
    // Another instance may owe an earlier event of this upload to this target: that one goes first.
    void order
      .isNext(entry)
      .catch(() => false)
      .then((first) => {
        if (first && !this.#options.signal.aborted) {
          entry.cleared = true;
          this.#send(lane, entry, target);
          return;
        }
        this.#running -= 1;
        target.running -= 1;
        lane.busy = false;
        entry.waits += 1;
        entry.retryAt = Date.now() + Math.min(orderPollMaxMs, orderPollMs * 2 ** Math.min(entry.waits, 10));
        // Entries added while this one was being checked went in behind it whatever their number; it goes back
        // to its place by number, so an earlier event of the upload held here is not stuck behind it for good.
        this.#reorder(lane, entry);
        this.#markReady(lane);
        this.#dispatch();
        this.#settleIdle();
      });
  }

  /** Moves a lane's head that must wait back to its place by event number among the entries behind it. */
  #reorder(lane: Lane, entry: Entry): void {
    const entries = lane.entries;
    if (this.#lanes.get(lane.name) !== lane || entries[0] !== entry) return;
    entries.shift();
    let at = entries.length;
    while (at > 0 && comesAfter(entries[at - 1], entry)) at -= 1;
    entries.splice(at, 0, entry);
  }

  #send(lane: Lane, entry: Entry, target: Target): void {
    const delivery = deliveryOf(entry.delivery, this.#options.signal);
    const attempt = entry.attempts + 1;
    const settled = (result: DeliveryResult): void => {
      this.#running -= 1;
      target.running -= 1;
      lane.busy = false;
      this.#settle(lane, entry, target, attempt, result);
      this.#markReady(lane);
      this.#dispatch();
      this.#settleIdle();
    };
    // One promise per attempt (a catch and then a then made two).
    void this.#options
      .deliver(target.transport, delivery, attempt)
      .then(settled, (error: unknown) => settled({ kind: 'unreachable', detail: String(error) }));
  }

  /** Applies one attempt's verdict to the entry and its target. */
  #settle(lane: Lane, entry: Entry, target: Target, attempt: number, result: DeliveryResult): void {
    const verdict = (this.#options.judge ?? judgeDelivery)(result);
    if (verdict.kind === 'aborted') return;
    const now = Date.now();
    entry.attempts = attempt;
    if (verdict.kind === 'delivered') {
      target.health.succeeded(now);
      target.failures = 0;
      target.retryAt = 0;
      this.#take(lane, entry);
      this.#forget(entry);
      if (verdict.disable !== undefined) this.setEnabled(entry.target, false, verdict.disable);
      return;
    }
    const error = failureOf(result);
    const tooLong = target.health.failed(now, error, this.#options.disableAfterMs ?? defaultDisableAfterMs);
    if (verdict.kind === 'dead') {
      this.#kill(lane, entry, verdict.reason, error);
    } else if (verdict.kind === 'disable') {
      if (verdict.notBefore !== undefined) entry.retryAt = verdict.notBefore;
      this.setEnabled(entry.target, false, verdict.reason);
    } else if (target.policy.kind === 'backoff') {
      // A broker that is down is down for every event: pause the whole target, never give up on the event.
      target.failures += 1;
      target.retryAt = Math.max(
        now + (nextDelay(target.policy, target.failures) ?? 0),
        verdict.notBefore ?? 0,
      );
      this.#options.onRetry?.(target.transport, entry, attempt + 1);
    } else {
      const delay = nextDelay(target.policy, attempt);
      if (delay === undefined) {
        this.#kill(lane, entry, 'exhausted', error);
      } else {
        entry.retryAt = Math.max(now + delay, verdict.notBefore ?? 0);
        // `Retry-After` speaks for the receiver, not for one event: none of its events go before it.
        if (verdict.notBefore !== undefined) target.retryAt = Math.max(target.retryAt, verdict.notBefore);
        this.#options.onRetry?.(target.transport, entry, attempt + 1);
      }
    }
    if (tooLong && !target.health.disabled) this.setEnabled(entry.target, false, 'failing');
  }

  /** Takes a settled entry (the head of its lane) out of the lane. */
  #take(lane: Lane, entry: Entry): void {
    const entries = lane.entries;
    if (entries[0] === entry) entries.shift();
    if (entries.length === 0 && this.#lanes.get(lane.name) === lane) this.#lanes.delete(lane.name);
    this.#keys.delete(entry.key);
    this.#ages.remove(entry);
    this.#pending -= 1;
    const target = this.#targets.get(entry.target);
    if (target !== undefined) target.pending -= 1;
  }

  /** Turns an entry into a dead letter: out of its lane, kept in the store (or memory) until resent. */
  #kill(lane: Lane, entry: Entry, reason: DeadLetterReason, lastError: string): void {
    this.#take(lane, entry);
    const now = Date.now();
    const stored: StoredEntry = { target: entry.target, delivery: entry.delivery, addedAt: entry.addedAt };
    const note = { reason, attempts: entry.attempts, lastError, deadAt: now };
    this.notices.emit({
      type: 'message.dead_lettered',
      target: entry.target,
      eventId: entry.delivery.eventId,
      reason,
      at: now,
    });
    this.#removing += 1;
    void this.#dead.keep(stored, note).finally(() => {
      this.#removing -= 1;
      this.#settleIdle();
    });
  }

  async #deadEntries(): Promise<DeadEntry[]> {
    // The file store knows its dead letters once its journal is read.
    await this.#ready.catch(() => undefined);
    return this.#dead.list();
  }

  /** Takes one dead letter back and queues it anew; false when its target is unknown or it is gone. */
  async #revive(entry: DeadEntry): Promise<boolean> {
    if (!this.#targets.has(entry.target) || !(await this.#dead.take(entry))) return false;
    return this.#add(entry.target, entry.delivery);
  }

  #forget(entry: Entry): void {
    const store = this.#store;
    if (store === undefined) return;
    if (store.removeNow !== undefined) {
      try {
        store.removeNow(entry, entry.key);
      } catch (error) {
        this.#options.logger.warn(
          { eventId: entry.delivery.eventId, store: store.description, error: String(error) },
          'hook outbox could not forget a delivered event',
        );
      }
      return;
    }
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
}

/** An entry kept in memory only (no store, or a store that failed it): no place in a store's order (seq 0). */
function inMemory(entry: StoredEntry): OwedEntry {
  const owed: { -readonly [K in keyof OwedEntry]: OwedEntry[K] } = {
    target: entry.target,
    delivery: entry.delivery,
    seq: 0,
  };
  if (entry.addedAt !== undefined) owed.addedAt = entry.addedAt;
  return owed;
}

/**
 * The request as the outbox keeps it: with only the headers the target's transport reads (all when it does not
 * say). Every stored event is written to the journal or a shared store, and the request's headers made up about
 * a third of it while a broker target reads none of them.
 */
export function storedRequest(request: HookRequest, headers: readonly string[] | undefined): HookRequest {
  if (headers === undefined) return request;
  // Prototype-less without V8's dictionary mode (see sortedRecord in formats/sorted.ts).
  const kept: Record<string, readonly string[]> = {};
  Object.setPrototypeOf(kept, null);
  for (const name of headers) {
    const values = request.headers[name];
    if (values !== undefined && Object.hasOwn(request.headers, name)) kept[name] = values;
  }
  const stored: { -readonly [K in keyof HookRequest]: HookRequest[K] } = {
    uri: request.uri,
    method: request.method,
    remoteAddr: request.remoteAddr,
    headers: kept,
  };
  // What `{ ...request, headers: kept }` gives, built without a spread (once per event and target).
  for (const key of optionalRequestFields) {
    const value = request[key];
    if (value !== undefined) (stored as Record<string, unknown>)[key] = value;
  }
  return stored;
}

/** HookRequest's fields besides uri, method, remoteAddr and headers. */
const optionalRequestFields = [
  'origin',
  'requestUri',
  'peer',
  'protocol',
] as const satisfies readonly (keyof HookRequest)[];

/** The delivery a transport is handed for a stored one: the stored fields and the outbox's signal. */
function deliveryOf(stored: StoredDelivery, signal: AbortSignal): HookDelivery {
  const delivery: { -readonly [K in keyof HookDelivery]: HookDelivery[K] } = {
    eventId: stored.eventId,
    event: stored.event,
    hook: stored.hook,
    uploadId: stored.uploadId,
    payload: stored.payload,
    request: stored.request,
    signal,
  };
  if (stored.sequence !== undefined) delivery.sequence = stored.sequence;
  if (stored.label !== undefined) delivery.label = stored.label;
  if (stored.cloudEvent !== undefined) delivery.cloudEvent = stored.cloudEvent;
  return delivery;
}
