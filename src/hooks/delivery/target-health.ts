import type { HookLogger } from '../hook-logger.ts';
import type { DeliveryNotice, DisabledReason, TargetHealth } from './delivery-control.ts';
import { redactTarget } from './target-guard.ts';

/**
 * The health of one outbox target: whether it is disabled (and why), since when every attempt failed, the
 * last error, the last attempt and success. Kept in memory: a restart starts every target healthy.
 */
export class TargetHealthRecord {
  disabledReason: DisabledReason | undefined;
  failingSince: number | undefined;
  lastError: string | undefined;
  lastAttemptAt: number | undefined;
  lastSuccessAt: number | undefined;

  get health(): TargetHealth {
    if (this.disabledReason !== undefined) return 'disabled';
    return this.failingSince === undefined ? 'healthy' : 'failing';
  }

  get disabled(): boolean {
    return this.disabledReason !== undefined;
  }

  succeeded(now: number): void {
    this.lastAttemptAt = now;
    this.lastSuccessAt = now;
    this.failingSince = undefined;
  }

  /** Notes a failed attempt; true when the target has failed every attempt for `disableAfterMs` (disable it). */
  failed(now: number, error: string, disableAfterMs: number): boolean {
    this.lastAttemptAt = now;
    this.lastError = error;
    this.failingSince ??= now;
    return now - this.failingSince >= disableAfterMs;
  }
}

/** Hands delivery notices to listeners and logs each at warn (an operator should hear about them). */
export class DeliveryNotices {
  readonly #listeners = new Set<(notice: DeliveryNotice) => void>();
  readonly #logger: HookLogger;

  constructor(logger: HookLogger) {
    this.#logger = logger;
  }

  on(listener: (notice: DeliveryNotice) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(notice: DeliveryNotice): void {
    const message =
      notice.type === 'target.disabled'
        ? 'hook target disabled; its events wait until it is enabled'
        : notice.type === 'target.enabled'
          ? 'hook target enabled'
          : 'hook event dead-lettered for a target';
    // A password in a target URL is masked in the log.
    const fields = { notice: notice.type, ...notice, target: redactTarget(notice.target) };
    if (notice.type === 'target.enabled') this.#logger.info(fields, message);
    else this.#logger.warn(fields, message);
    for (const listener of [...this.#listeners]) {
      try {
        listener(notice);
      } catch {
        // A listener's failure must not stop delivery or the other listeners.
      }
    }
  }
}
