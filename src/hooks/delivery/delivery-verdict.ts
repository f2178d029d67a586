import type { DeliveryResult } from '../transports/types.ts';
import type { DeadLetterReason, DisabledReason } from './delivery-control.ts';
import { retryAfterUntil } from './retry-policy.ts';

/**
 * What one attempt's result means for the outbox entry and its target:
 * - `delivered`: forget the entry (a receiver may also ask to be disabled while accepting it);
 * - `retry`: try again per the retry policy, not before `notBefore` (Unix ms, from `Retry-After`);
 * - `dead`: never try again, keep it as a dead letter;
 * - `disable`: stop sending to the target; the entry stays pending until the target is enabled;
 * - `aborted`: the engine is closing; the entry stays owed for the next start.
 */
export type DeliveryVerdict =
  | { readonly kind: 'delivered'; readonly disable?: DisabledReason }
  | { readonly kind: 'retry'; readonly notBefore?: number }
  | { readonly kind: 'dead'; readonly reason: DeadLetterReason }
  | { readonly kind: 'disable'; readonly reason: DisabledReason; readonly notBefore?: number }
  | { readonly kind: 'aborted' };

/**
 * An HTTP endpoint that answers 4xx (other than 408 Request Timeout, 425 Too Early and 429 Too
 * Many Requests) has decided: sending the same event again cannot change its mind, and retrying would hold up
 * that endpoint's later events.
 */
export function refusedForGood(status: number): boolean {
  return status >= 400 && status < 500 && ![408, 425, 429].includes(status);
}

/** The verdicts without details: one object each, not one per delivery. */
const delivered: DeliveryVerdict = Object.freeze({ kind: 'delivered' });
const aborted: DeliveryVerdict = Object.freeze({ kind: 'aborted' });

/**
 * Reads one attempt's result (Standard Webhooks §"status handling", Svix's `webhook-delivery` header):
 * 410 Gone disables the target; `webhook-delivery: disable` disables it, `abort-message` dead-letters the
 * event; another final 4xx dead-letters it as refused; `Retry-After` sets the earliest next attempt.
 */
export function judgeDelivery(result: DeliveryResult, now: number = Date.now()): DeliveryVerdict {
  switch (result.kind) {
    case 'delivered':
      return result.webhookDelivery?.trim().toLowerCase() === 'disable'
        ? { kind: 'delivered', disable: 'receiver' }
        : delivered;
    case 'aborted':
      return aborted;
    case 'responded': {
      const control = result.webhookDelivery?.trim().toLowerCase();
      const notBefore = retryAfterUntil(result.retryAfter, now);
      const later = notBefore === undefined ? {} : { notBefore };
      if (control === 'abort-message') return { kind: 'dead', reason: 'aborted_by_receiver' };
      if (control === 'disable') return { kind: 'disable', reason: 'receiver', ...later };
      if (result.httpStatus === 410) return { kind: 'disable', reason: 'gone' };
      if (refusedForGood(result.httpStatus)) return { kind: 'dead', reason: 'refused' };
      return { kind: 'retry', ...later };
    }
    default:
      return { kind: 'retry' };
  }
}

/** A short description of a failed attempt, kept with the entry (never the payload or request headers). */
export function failureOf(result: DeliveryResult): string {
  switch (result.kind) {
    case 'delivered':
      return 'delivered';
    case 'exited':
      return result.exitCode !== null
        ? `exited with code ${result.exitCode}`
        : `killed by signal ${result.signal}`;
    case 'not_runnable':
    case 'spawn_failed':
    case 'unreachable':
      return result.detail;
    case 'responded':
      return `HTTP ${result.httpStatus}`;
    case 'timed_out':
      return `timed out after ${result.timeoutMs} ms`;
    case 'aborted':
      return 'aborted: the hooks engine closed';
  }
}
