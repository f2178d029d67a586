import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../src/hooks/transports/types.ts';

/** How the target under test should behave for one case. */
export type TargetBehaviour = 'accept' | 'reject' | 'hang';

export interface TransportUnderTest {
  readonly transport: HookTransport;
  /** The payloads the target received, in order, once the delivery has returned. */
  received(): Promise<string[]>;
}

export type MakeTransport = (
  behaviour: TargetBehaviour,
  context: { after(fn: () => Promise<void>): void },
) => Promise<TransportUnderTest>;

function delivery(signal: AbortSignal = new AbortController().signal): HookDelivery {
  const payload = JSON.stringify({ upload: { id: 'contract', metadata: { name: 'caf\u00e9 \u2615 😀' } } });
  return {
    eventId: randomUUID(),
    event: 'pre-create',
    hook: 'pre-create',
    uploadId: 'contract',
    payload,
    request: { uri: '/files/', method: 'POST', remoteAddr: '127.0.0.1', headers: {} },
    signal,
  };
}

/**
 * The behaviour every hook transport shares: it delivers the payload byte for byte, reports a refusal as a
 * typed failure, gives up at its timeout, stops when the engine closes, and never throws.
 * `makeTransport('hang')` must build a transport whose timeout is short (a few hundred ms).
 */
export function describeHookTransport(name: string, makeTransport: MakeTransport): void {
  describe(`${name} hook transport contract`, () => {
    test('delivers the payload byte for byte and reports delivered', async (t) => {
      const { transport, received } = await makeTransport('accept', t);
      const sent = delivery();
      const result = await transport.deliver(sent);
      assert.equal(result.kind, 'delivered');
      assert.deepEqual(await received(), [sent.payload]);
    });

    test('reports a refusal as a typed failure, not an exception', async (t) => {
      const { transport } = await makeTransport('reject', t);
      const result: DeliveryResult = await transport.deliver(delivery());
      assert.ok(result.kind === 'exited' || result.kind === 'responded', `got ${result.kind}`);
    });

    test('gives up at its timeout', async (t) => {
      const { transport } = await makeTransport('hang', t);
      const result = await transport.deliver(delivery());
      assert.equal(result.kind, 'timed_out');
    });

    test('stops with aborted when the engine closes mid-delivery', async (t) => {
      const { transport } = await makeTransport('hang', t);
      const closing = new AbortController();
      const pending = transport.deliver(delivery(closing.signal));
      setImmediate(() => closing.abort());
      assert.equal((await pending).kind, 'aborted');
    });

    test('names its target', async (t) => {
      const { transport } = await makeTransport('accept', t);
      assert.match(transport.describe('pre-create'), /^(file|dir|http):./);
    });
  });
}
