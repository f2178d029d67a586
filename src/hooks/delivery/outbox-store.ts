import type { SequenceSource } from './event-sequence.ts';
import type { DeadEntry, DeathNote, StoredEntry } from './stored.ts';

export type { DeadEntry, DeathNote, StoredDelivery, StoredEntry } from './stored.ts';

/** A dead letter dropped to keep the store within its limit. */
export interface DroppedDeadLetter {
  readonly target: string;
  readonly eventId: string;
}

/** An entry the store holds, with its place in the store's order (lower = added earlier). */
export interface OwedEntry extends StoredEntry {
  readonly seq: number;
}

/**
 * Where the outbox keeps undelivered entries. The file journal serves one process; a shared store (Redis,
 * PostgreSQL) serves several instances: each entry is claimed by the instance that added it, the claim expires
 * when that instance stops renewing it (it died), and another instance then claims the entry and delivers it.
 */
export interface OutboxStore {
  /** Where the entries live, for logs (never a secret). */
  readonly description: string;
  /** How often {@link OutboxStore.claim} runs; undefined when nobody else can own entries (a local file). */
  readonly claimIntervalMs: number | undefined;
  /** Prepares the store and returns the entries this process owes from before its start, in order. */
  open(targets: readonly string[]): Promise<OwedEntry[]>;
  /** Stores an entry claimed by this process; undefined when `limit` entries are already owed (full). */
  append(entry: StoredEntry, limit: number): Promise<OwedEntry | undefined>;
  /** Forgets a delivered entry (after the target confirmed it). */
  remove(entry: StoredEntry): Promise<void>;
  /**
   * {@link OutboxStore.append} for a store that takes an entry at once (the file journal queues its line in
   * order and writes it within the turn): no promise and no microtask turn per event. `key` is
   * {@link entryKeyOf} of the entry. Absent in the shared stores, whose writes are round trips.
   */
  appendNow?(entry: StoredEntry, limit: number, key: string): OwedEntry | undefined;
  /** {@link OutboxStore.remove} at once, as {@link OutboxStore.appendNow}; `key` is {@link entryKeyOf} of it. */
  removeNow?(entry: StoredEntry, key: string): void;
  /**
   * Renews this process's claims and takes over, in order, the entries of `targets` whose claim expired (their
   * instance died). The file store never has any.
   */
  claim(targets: readonly string[]): Promise<OwedEntry[]>;
  /**
   * Moves an owed entry to the dead letters: no longer owed, claimed or counted against the outbox limit. Then
   * drops the oldest dead letters (by death time) beyond `deadLimit` and returns them.
   */
  markDead(entry: StoredEntry, note: DeathNote, deadLimit: number): Promise<DroppedDeadLetter[]>;
  /** Every dead letter in the store (of every instance), oldest first, in the order the limit drops them. */
  deadLetters(): Promise<DeadEntry[]>;
  /**
   * Removes one dead letter before it is queued again; false when it is not there (another instance revived
   * it first), so one resend never sends it twice.
   */
  removeDead(target: string, eventId: string): Promise<boolean>;
  /** Every entry still owed, by any instance, in the order they were added. */
  pending(): Promise<StoredEntry[]>;
  /** Stops renewing; a shared store hands this process's undelivered entries over to the other instances. */
  close(): Promise<void>;
  /**
   * A shared store: numbers each upload's events for every instance ({@link SequenceSource}) and says whether
   * an entry may go now, i.e. whether no earlier event of its upload for its target is owed anywhere (or still
   * on its way into the store). Absent in the file store, where one process sees every event itself.
   */
  readonly order?: SharedOrder;
}

/** How instances sharing a store deliver each upload's events to each target one after the other. */
export interface SharedOrder extends SequenceSource {
  /** Whether `entry` (which has a sequence) is the first event of its upload still owed to its target. */
  isNext(entry: StoredEntry): Promise<boolean>;
}

/** The store's upload sequence counter; undefined for a store of one process. */
export function sequenceSourceOf(store: OutboxStore): SequenceSource | undefined {
  return store.order;
}

/** An upload's entries for one target: `<target> <upload id>` (targets hold no space). */
export function laneKeyOf(entry: StoredEntry): string {
  return `${entry.target} ${entry.delivery.uploadId}`;
}

export function entryKeyOf(entry: StoredEntry): string {
  return `${entry.target} ${entry.delivery.eventId}`;
}

/** The target and event id of an entry key (`<target> <event id>`; targets hold no space). */
export function droppedOf(key: string): DroppedDeadLetter {
  const space = key.indexOf(' ');
  return { target: key.slice(0, space), eventId: key.slice(space + 1) };
}
