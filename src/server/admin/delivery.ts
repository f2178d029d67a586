import type { DeliveryControl, OutboxStats } from '../../hooks/delivery-control.ts';
import type { HookEngine } from '../../hooks/engine.ts';

/**
 * The engine's delivery control (retries, dead letters, targets), when this build of the engine has one.
 * The one place the admin layer reaches for it, so the rest codes against the {@link DeliveryControl} interface.
 */
export function deliveryControlOf(engine: HookEngine): DeliveryControl | undefined {
  const delivery = (engine as unknown as { readonly delivery?: DeliveryControl }).delivery;
  return delivery;
}

/** Outbox figures: the delivery control's, else what the engine's outbox counts. */
export function outboxStatsOf(engine: HookEngine): OutboxStats {
  const delivery = deliveryControlOf(engine);
  if (delivery !== undefined) return delivery.stats();
  return { depth: engine.outbox.pending, oldestPendingAt: undefined, dropped: engine.outbox.dropped };
}
