import type { HookLogger } from '../hook-logger.ts';
import type { DeadLetter, DeadLetterFilter } from './delivery-control.ts';
import type { StoredEntry } from './outbox-journal.ts';
import {
  type DeadEntry,
  type DeathNote,
  type DroppedDeadLetter,
  droppedOf,
  entryKeyOf,
  type OutboxStore,
} from './outbox-store.ts';
import { redactTarget } from './target-guard.ts';

/** Default `--hooks-dead-letter-limit`. */
export const defaultDeadLetterLimit = 10_000;

/** What operators see of a dead entry (no payload, no request headers: they may carry credentials). */
export function deadLetterOf(entry: DeadEntry): DeadLetter {
  return {
    eventId: entry.delivery.eventId,
    event: entry.delivery.event,
    hook: entry.delivery.label ?? entry.delivery.hook,
    uploadId: entry.delivery.uploadId,
    target: entry.target,
    attempts: entry.dead.attempts,
    lastError: entry.dead.lastError,
    deadAt: entry.dead.deadAt,
    reason: entry.dead.reason,
  };
}

export function matchesDeadLetter(entry: DeadEntry, filter: DeadLetterFilter): boolean {
  return (
    (filter.target === undefined || entry.target === filter.target) &&
    (filter.uploadId === undefined || entry.delivery.uploadId === filter.uploadId) &&
    (filter.since === undefined || entry.dead.deadAt >= filter.since)
  );
}

/** Dead entries of several sources (the store, memory), one per target and event, oldest first. */
export function mergeDeadEntries(...lists: readonly (readonly DeadEntry[])[]): DeadEntry[] {
  const byKey = new Map<string, DeadEntry>();
  for (const list of lists) {
    for (const entry of list) byKey.set(`${entry.target} ${entry.delivery.eventId}`, entry);
  }
  return [...byKey.values()].sort((a, b) => a.dead.deadAt - b.dead.deadAt);
}

/**
 * The outbox's dead letters: kept in its store (in memory when there is none, or when the store refused the
 * write), listed from both, taken back one by one for a resend. At most `limit` are kept (in the store, and in
 * memory): beyond it the oldest are dropped, counted and logged. Counts per target are what this process knows.
 */
export class DeadLetterBook {
  readonly #store: () => OutboxStore | undefined;
  readonly #logger: HookLogger;
  readonly #limit: number;
  readonly #memory = new Map<string, DeadEntry>();
  readonly #counts = new Map<string, number>();
  #dropped = 0;

  constructor(store: () => OutboxStore | undefined, logger: HookLogger, limit = defaultDeadLetterLimit) {
    this.#store = store;
    this.#logger = logger;
    this.#limit = limit;
  }

  /** Dead letters dropped over the limit, since start. */
  get dropped(): number {
    return this.#dropped;
  }

  count(target: string): number {
    return this.#counts.get(target) ?? 0;
  }

  /** Every dead letter, from the store and memory, oldest first. */
  async list(): Promise<DeadEntry[]> {
    const store = this.#store();
    let stored: DeadEntry[] = [];
    if (store !== undefined) {
      try {
        stored = await store.deadLetters();
      } catch (error) {
        this.#logger.warn(
          { store: store.description, error: String(error) },
          'hook outbox could not read its dead letters',
        );
      }
    }
    return mergeDeadEntries(stored, [...this.#memory.values()]);
  }

  /** Counts the dead letters per target (at start); returns the total. */
  async recount(): Promise<number> {
    this.#counts.clear();
    const dead = await this.list();
    for (const entry of dead) this.#counts.set(entry.target, this.count(entry.target) + 1);
    return dead.length;
  }

  /** Keeps an entry as a dead letter, dropping the oldest beyond the limit; resolves once it is stored. */
  async keep(entry: StoredEntry, note: DeathNote): Promise<void> {
    this.#counts.set(entry.target, this.count(entry.target) + 1);
    const store = this.#store();
    if (store === undefined) {
      this.#remember(entry, note);
      return;
    }
    try {
      this.#forgetDropped(await store.markDead(entry, note, this.#limit));
    } catch (error) {
      this.#remember(entry, note);
      this.#logger.warn(
        { eventId: entry.delivery.eventId, store: store.description, error: String(error) },
        'hook outbox could not store a dead letter; kept in memory only',
      );
    }
  }

  /** Keeps a dead letter in memory (oldest first), within the limit. */
  #remember(entry: StoredEntry, note: DeathNote): void {
    const key = entryKeyOf(entry);
    this.#memory.delete(key);
    this.#memory.set(key, { ...entry, dead: note });
    const dropped: DroppedDeadLetter[] = [];
    for (const oldest of this.#memory.keys()) {
      if (this.#memory.size <= this.#limit) break;
      this.#memory.delete(oldest);
      dropped.push(droppedOf(oldest));
    }
    this.#forgetDropped(dropped);
  }

  #forgetDropped(dropped: readonly DroppedDeadLetter[]): void {
    if (dropped.length === 0) return;
    for (const { target } of dropped) this.#counts.set(target, Math.max(0, this.count(target) - 1));
    this.#dropped += dropped.length;
    this.#logger.warn(
      {
        dropped: dropped.length,
        droppedTotal: this.#dropped,
        limit: this.#limit,
        targets: [...new Set(dropped.map(({ target }) => redactTarget(target)))],
        eventIds: dropped.map(({ eventId }) => eventId),
      },
      'hook dead letters over --hooks-dead-letter-limit; the oldest dropped',
    );
  }

  /** Takes a dead letter back (to queue it again); false when it is gone (another resend took it first). */
  async take(entry: DeadEntry): Promise<boolean> {
    let removed = this.#memory.delete(entryKeyOf(entry));
    const store = this.#store();
    if (store !== undefined) {
      removed = (await store.removeDead(entry.target, entry.delivery.eventId).catch(() => false)) || removed;
    }
    if (removed) this.#counts.set(entry.target, Math.max(0, this.count(entry.target) - 1));
    return removed;
  }
}
