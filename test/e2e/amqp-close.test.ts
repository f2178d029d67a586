import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { composeHookParts } from '../../src/hooks/compose-hooks.ts';
import { HookEngine } from '../../src/hooks/engine.ts';
import { type AmqpHooksConfig, AmqpHookTransport } from '../../src/hooks/transports/amqp.ts';
import { amqpUrl } from '../support/brokers.ts';
import { eventually } from '../support/eventually.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';
import { amqpTestConfig, captureLogger, hooksConfig } from '../unit/hooks/fixtures.ts';

/** The default exchange and no declarations: the test changes nothing on the shared broker. */
function amqpConfig(url: string, publishTimeoutMs: number): AmqpHooksConfig {
  return amqpTestConfig(url, `wharf-close-test-${process.pid}`, publishTimeoutMs);
}

// A hang fails the test through its timeout: close() must settle well before it.
describe('closing AMQP hooks when the broker stops answering', () => {
  test('close() gives up after the publish timeout, destroys the connection and says which one', {
    timeout: 20_000,
  }, async (t) => {
    const proxy = await tcpProxy(amqpUrl, 5672);
    t.after(() => proxy.close());
    const transport = new AmqpHookTransport(amqpConfig(proxy.url, 300));
    await transport.open();
    proxy.freeze();
    const outcome = await transport.close().then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(outcome instanceof Error, 'close() reports the connection it had to destroy');
    assert.match(outcome.message, /did not answer the close of 1 connection within 300 ms/);
    // The socket was destroyed, not left open to the unresponsive broker.
    await eventually(() => (proxy.closedByClient() === 1 ? true : undefined), 'the client socket closed');
  });

  test('the engine closes anyway and logs a warning naming the AMQP target', {
    timeout: 20_000,
  }, async (t) => {
    const proxy = await tcpProxy(amqpUrl, 5672);
    t.after(() => proxy.close());
    const transport = new AmqpHookTransport(amqpConfig(proxy.url, 300));
    await transport.open();
    const { logger, entries } = captureLogger();
    const config = hooksConfig();
    const engine = new HookEngine(config, logger, {
      ...composeHookParts(config, logger),
      brokers: [transport],
    });
    proxy.freeze();
    await engine.close();
    const warning = entries.find((entry) => entry.level === 'warn' && /close/.test(entry.message));
    assert.ok(warning !== undefined, JSON.stringify(entries));
    // Named by its label (target-guard.ts): scheme, host and port; never the credentials.
    assert.match(String(warning.fields.target), /^amqp:amqp:\/\/127\.0\.0\.1:\d+#/);
    assert.match(String(warning.fields.error), /within 300 ms/);
    assert.ok(!JSON.stringify(warning).includes('@'), JSON.stringify(warning));
    await eventually(() => (proxy.closedByClient() === 1 ? true : undefined), 'the client socket closed');
  });
});
