import type { RunRecord } from '../history/run-log.ts';

/**
 * What an operator can see and change about non-blocking delivery: the targets' health, the events that
 * could not be delivered (dead letters), and resending them. The admin API and the dashboard use only this
 * interface; the hooks engine implements it over its outbox.
 */

/** `failing`: the last attempt failed and retries are scheduled; `disabled`: nothing is sent until enabled. */
export type TargetHealth = 'healthy' | 'failing' | 'disabled';

/**
 * Why a target was disabled: `gone` (it answered 410), `receiver` (it answered `webhook-delivery: disable`),
 * `failing` (every attempt failed for the configured time), `manual` (an operator).
 */
export type DisabledReason = 'gone' | 'receiver' | 'failing' | 'manual';

/** One place non-blocking events go to (an HTTP URL, a broker, a named hook's binding). Never holds a secret. */
export interface TargetState {
  /** The outbox name: `http:<url>`, `amqp`, `kafka`, or a named hook's binding name. */
  readonly name: string;
  readonly kind: 'http' | 'amqp' | 'kafka' | 'file' | 'dir' | 'module';
  readonly health: TargetHealth;
  readonly disabledReason?: DisabledReason;
  /** Unix ms of the first failure of the current run of failures. */
  readonly failingSince?: number;
  readonly lastError?: string;
  readonly lastAttemptAt?: number;
  readonly lastSuccessAt?: number;
  /** Events waiting for this target (queued or being retried). */
  readonly pending: number;
  readonly deadLetters: number;
  /** Delays (ms) before the 2nd, 3rd, … attempt; after the last one the event is dead-lettered. */
  readonly retrySchedule: readonly number[];
  /** Whether requests are signed (Standard Webhooks); the secret itself is never exposed. */
  readonly signed: boolean;
  /** Added through the admin API (kept in memory only). */
  readonly addedAtRuntime: boolean;
}

/**
 * Why an event was dead-lettered: `exhausted` (every attempt of the schedule failed), `refused` (the target
 * answered a status retrying cannot fix, e.g. 400), `aborted_by_receiver` (`webhook-delivery: abort-message`),
 * `target_disabled` (its target was disabled while it waited).
 */
export type DeadLetterReason = 'exhausted' | 'refused' | 'aborted_by_receiver' | 'target_disabled';

/** An event one target never accepted; kept (in the outbox store) until it is resent. */
export interface DeadLetter {
  readonly eventId: string;
  readonly event: string;
  readonly hook: string;
  readonly uploadId: string;
  readonly target: string;
  readonly attempts: number;
  readonly lastError: string;
  /** Unix ms. */
  readonly deadAt: number;
  readonly reason: DeadLetterReason;
}

export interface DeadLetterFilter {
  readonly target?: string;
  readonly uploadId?: string;
  /** Unix ms: dead-lettered at or after. */
  readonly since?: number;
}

/** An HTTP target added at run time (the caller has already checked the URL against the safety policy). */
export interface RuntimeHttpTarget {
  readonly url: string;
  /** Events it receives; all non-blocking events when absent. */
  readonly events?: readonly string[];
  /** Standard Webhooks secrets (`whsec_…`), newest first. */
  readonly secrets?: readonly string[];
}

/** Something an operator should hear about (also logged at warn). */
export type DeliveryNotice =
  | {
      readonly type: 'target.disabled';
      readonly target: string;
      readonly reason: DisabledReason;
      readonly at: number;
    }
  | { readonly type: 'target.enabled'; readonly target: string; readonly at: number }
  | {
      readonly type: 'message.dead_lettered';
      readonly target: string;
      readonly eventId: string;
      readonly reason: DeadLetterReason;
      readonly at: number;
    };

export interface OutboxStats {
  /** Deliveries waiting (over all targets). */
  readonly depth: number;
  /** Unix ms the oldest waiting delivery was added; undefined when none waits. */
  readonly oldestPendingAt: number | undefined;
  /** Dropped because the outbox was full, since start. */
  readonly dropped: number;
  /** Dead letters dropped, oldest first, to keep within `--hooks-dead-letter-limit`, since start. */
  readonly deadLettersDropped: number;
}

export interface DeliveryControl {
  targets(): TargetState[];
  /** Disables (pending events are kept, not sent) or enables a target; undefined for an unknown target. */
  setTargetEnabled(target: string, enabled: boolean): TargetState | undefined;
  addHttpTarget(target: RuntimeHttpTarget): TargetState;
  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** Queues one event again (dead-lettered, or retried now if still pending); returns how many deliveries. */
  resend(eventId: string, target?: string): Promise<number>;
  /** Queues again every event dead-lettered at or after `since` (for one target, or all). */
  recover(since: number, target?: string): Promise<number>;
  /** Sends a test event (`ping`) to a target now and returns its run record. */
  ping(target: string): Promise<RunRecord>;
  stats(): OutboxStats;
  /** Calls `listener` on every notice; returns the unsubscribe function. */
  onNotice(listener: (notice: DeliveryNotice) => void): () => void;
}
