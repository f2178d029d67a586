import type { DeadLetter, DeadLetterFilter } from './delivery-control.ts';
import type { DeadEntry } from './outbox-store.ts';

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
