import type { HookEventName, HookRequest } from '../events.ts';
import type { CloudEventEnvelope } from '../formats/cloudevents.ts';
import type { DeadLetterReason } from './delivery-control.ts';

/*
 * What the outbox keeps: the shapes the journal and every outbox store share. Their own module, so that the
 * stores and the journal import it and not each other.
 */

/** What the outbox keeps of a delivery: everything a transport needs, nothing live (no abort signal). */
export interface StoredDelivery {
  readonly eventId: string;
  readonly event: HookEventName;
  readonly hook: string;
  readonly uploadId: string;
  /** The upload's event number: the outbox delivers an upload's events to a target in this order. */
  readonly sequence?: number;
  readonly payload: string;
  readonly request: HookRequest;
  /** A named hook's name, for run records. */
  readonly label?: string;
  /** CloudEvents: the mode and binary-mode attributes, which the payload alone does not carry. */
  readonly cloudEvent?: CloudEventEnvelope;
}

/** One undelivered event for one target. */
export interface StoredEntry {
  /** The target's stable name (`amqp`, `kafka`, `http:<url>`). */
  readonly target: string;
  readonly delivery: StoredDelivery;
  /** Unix ms it was first added (shows how long the oldest pending event has waited). */
  readonly addedAt?: number;
}

/** Why and when an entry was given up on. */
export interface DeathNote {
  readonly reason: DeadLetterReason;
  readonly attempts: number;
  readonly lastError: string;
  /** Unix ms. */
  readonly deadAt: number;
}

/** An entry no longer owed: its target never accepted it. Kept until it is resent. */
export interface DeadEntry extends StoredEntry {
  readonly dead: DeathNote;
}
