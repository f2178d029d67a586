import type { OutboxStats } from '../../hooks/delivery/delivery-control.ts';
import type { HookEngine } from '../../hooks/engine.ts';

/** Outbox figures for /metrics and the stats endpoint. */
export function outboxStatsOf(engine: HookEngine): OutboxStats {
  return engine.delivery.stats();
}
