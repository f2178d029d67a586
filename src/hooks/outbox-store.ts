import type { StoredEntry } from './outbox-journal.ts';

export type { StoredDelivery, StoredEntry } from './outbox-journal.ts';

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
   * Renews this process's claims and takes over, in order, the entries of `targets` whose claim expired (their
   * instance died). The file store never has any.
   */
  claim(targets: readonly string[]): Promise<OwedEntry[]>;
  /** Every entry still owed, by any instance, in the order they were added. */
  pending(): Promise<StoredEntry[]>;
  /** Stops renewing; a shared store hands this process's undelivered entries over to the other instances. */
  close(): Promise<void>;
}

export function entryKeyOf(entry: StoredEntry): string {
  return `${entry.target} ${entry.delivery.eventId}`;
}
