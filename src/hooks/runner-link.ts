import type { ChainRunner } from './chain/runner.ts';
import type { RunRecord } from './history/run-log.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';

function resultOf(delivered: { readonly result: DeliveryResult }): DeliveryResult {
  return delivered.result;
}

/**
 * The outbox and the admin's delivery control are built before the engine (compose-hooks.ts) but deliver
 * through the engine's runner, which records every run. The factory hands them this link; the engine attaches
 * its runner and its chains' invalidation when it is constructed. Nothing is delivered before that: the outbox
 * only starts dispatching once the engine exists.
 */
export class RunnerLink {
  #runner: ChainRunner | undefined;
  #targetsChanged: (() => void) | undefined;

  /** Called once, by the engine that owns the runner. */
  attach(runner: ChainRunner, targetsChanged: () => void): void {
    if (this.#runner !== undefined) throw new Error('the runner link is already attached to an engine');
    this.#runner = runner;
    this.#targetsChanged = targetsChanged;
  }

  #attached(): ChainRunner {
    if (this.#runner === undefined) throw new Error('the runner link is not attached to an engine yet');
    return this.#runner;
  }

  /** An outbox delivery, recorded as a run. */
  deliver(transport: HookTransport, delivery: HookDelivery, attempt: number): Promise<DeliveryResult> {
    // Not an async function (one promise and a few microtask turns less per delivery); a failure to find the
    // runner still comes back as a rejection.
    try {
      return this.#attached().deliver(transport, delivery, false, attempt).then(resultOf);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** One delivery outside the outbox (admin resend and ping), recorded as a run. */
  async deliverOnce(transport: HookTransport, delivery: HookDelivery): Promise<RunRecord> {
    return (await this.#attached().deliver(transport, delivery, false)).record;
  }

  /** A failed outbox delivery waiting for its next attempt. */
  retrying(
    transport: HookTransport,
    delivery: Parameters<ChainRunner['retrying']>[1],
    attempt: number,
  ): void {
    this.#attached().retrying(transport, delivery, attempt);
  }

  /** A target was added at run time: chains are compiled again. */
  targetsChanged(): void {
    this.#targetsChanged?.();
  }
}
