import { randomUUID } from 'node:crypto';
import type { UploadEventName } from '../events.ts';
import type { RunRecord } from '../history/run-log.ts';
import { HttpHookTransport } from '../transports/http.ts';
import type { HookDelivery, HookTransport } from '../transports/types.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeliveryControl,
  DeliveryNotice,
  OutboxStats,
  RuntimeHttpTarget,
  TargetState,
} from './delivery-control.ts';
import type { Outbox } from './outbox.ts';
import { scheduleOf } from './retry-policy.ts';

/** What the delivery control needs from the engine. */
export interface OutboxControlHooks {
  /** Builds the transport of a target added at run time. */
  readonly httpTransport: (url: string, secrets: readonly string[]) => HttpHookTransport;
  /** Delivers once, outside the outbox, and returns the run record. */
  readonly deliverOnce: (transport: HookTransport, delivery: HookDelivery) => Promise<RunRecord>;
  /** Aborted when the engine closes. */
  readonly signal: AbortSignal;
  /** Called when a target was added at run time: the chains that may include it are compiled again. */
  readonly onTargetsChanged?: () => void;
}

function kindOf(transport: HookTransport): TargetState['kind'] {
  const described = transport.describe('ping');
  for (const kind of ['http', 'amqp', 'kafka', 'file', 'dir', 'module'] as const) {
    if (described.startsWith(kind)) return kind;
  }
  return 'module';
}

/**
 * {@link DeliveryControl} over the engine's outbox: target health and enable/disable, dead letters and resend,
 * ping, HTTP targets added at run time (kept in memory only, like their health).
 */
export class OutboxControl implements DeliveryControl {
  readonly #outbox: Outbox;
  readonly #hooks: OutboxControlHooks;
  /** Targets added at run time, with the events they receive (all non-blocking ones when undefined). */
  readonly #runtime = new Map<string, ReadonlySet<string> | undefined>();

  constructor(outbox: Outbox, hooks: OutboxControlHooks) {
    this.#outbox = outbox;
    this.#hooks = hooks;
  }

  /** Runtime targets an event of this name goes to. */
  runtimeTargetsFor(event: UploadEventName): string[] {
    const names: string[] = [];
    for (const [name, events] of this.#runtime) {
      if (events === undefined ? !event.startsWith('pre-') : events.has(event)) names.push(name);
    }
    return names;
  }

  targets(): TargetState[] {
    return this.#outbox.targetNames().flatMap((name) => {
      const state = this.#state(name);
      return state === undefined ? [] : [state];
    });
  }

  setTargetEnabled(target: string, enabled: boolean): TargetState | undefined {
    if (!this.#outbox.setEnabled(target, enabled)) return undefined;
    return this.#state(target);
  }

  addHttpTarget(target: RuntimeHttpTarget): TargetState {
    const url = new URL(target.url).href;
    const name = `http:${url}`;
    if (!this.#outbox.hasTarget(name)) {
      this.#outbox.addTarget(name, this.#hooks.httpTransport(url, target.secrets ?? []));
      this.#runtime.set(name, target.events === undefined ? undefined : new Set(target.events));
      this.#hooks.onTargetsChanged?.();
    }
    const state = this.#state(name);
    if (state === undefined) throw new Error(`outbox target ${name} vanished`);
    return state;
  }

  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]> {
    return this.#outbox.deadLetters(filter);
  }

  resend(eventId: string, target?: string): Promise<number> {
    return this.#outbox.resend(eventId, target);
  }

  recover(since: number, target?: string): Promise<number> {
    return this.#outbox.recover(since, target);
  }

  async ping(target: string): Promise<RunRecord> {
    const view = this.#outbox.target(target);
    if (view === undefined) throw new RangeError(`unknown hook target ${target}`);
    const at = Date.now();
    const delivery: HookDelivery = {
      eventId: randomUUID(),
      event: 'ping',
      hook: 'ping',
      uploadId: '',
      payload: JSON.stringify({ type: 'ping', target, at }),
      request: { uri: '', method: 'POST', remoteAddr: null, headers: {} },
      signal: this.#hooks.signal,
    };
    return this.#hooks.deliverOnce(view.transport, delivery);
  }

  stats(): OutboxStats {
    return this.#outbox.stats();
  }

  onNotice(listener: (notice: DeliveryNotice) => void): () => void {
    return this.#outbox.onNotice(listener);
  }

  #state(name: string): TargetState | undefined {
    const view = this.#outbox.target(name);
    if (view === undefined) return undefined;
    const { health } = view;
    const transport = view.transport;
    return {
      name,
      kind: kindOf(transport),
      health: health.health,
      ...(health.disabledReason !== undefined ? { disabledReason: health.disabledReason } : {}),
      ...(health.failingSince !== undefined ? { failingSince: health.failingSince } : {}),
      ...(health.lastError !== undefined ? { lastError: health.lastError } : {}),
      ...(health.lastAttemptAt !== undefined ? { lastAttemptAt: health.lastAttemptAt } : {}),
      ...(health.lastSuccessAt !== undefined ? { lastSuccessAt: health.lastSuccessAt } : {}),
      pending: view.pending,
      deadLetters: view.deadLetters,
      retrySchedule: scheduleOf(view.policy),
      signed: transport instanceof HttpHookTransport && (transport.options.secrets?.length ?? 0) > 0,
      addedAtRuntime: this.#runtime.has(name),
    };
  }
}
