import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rustusEventNames as defaultEvents, uploadEventNames } from '../../src/hooks/events.ts';
import {
  type AmqpPeer,
  amqpPeer,
  amqpUrl,
  queueDurable,
  takeMessages,
  uploadLifecycle,
} from '../support/brokers.ts';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { createUpload, send, tus } from '../support/http.ts';
import { startWharf } from '../support/wharf-process.ts';

// Each test gets its own exchange and queue names, so runs never see each other's messages.
function names(): { exchange: string; prefix: string } {
  const tag = randomUUID().slice(0, 8);
  return { exchange: `wharf-test-${tag}`, prefix: `wharf-test-${tag}` };
}

// The tests at once: each has exchange and queue names (and a Wharf) of its own.
describe('AMQP hooks against RabbitMQ', { concurrency: true }, () => {
  let peer: AmqpPeer;
  const cleanup: (() => Promise<unknown>)[] = [];

  before(async () => {
    peer = await amqpPeer();
  });
  after(async () => {
    for (const step of cleanup) await step().catch(() => {});
    await peer.close();
  });

  test('declares {prefix}.{event} queues (durable) and each receives its event with a schema-valid payload', async () => {
    const { exchange, prefix } = names();
    const wharf = await startWharf({
      args: [
        '--hooks-amqp-url',
        amqpUrl,
        '--hooks-amqp-exchange',
        exchange,
        '--hooks-amqp-queues-prefix',
        prefix,
        '--hooks-amqp-declare-exchange',
        '--hooks-amqp-declare-queues',
        '--hooks_amqp_durable_exchange',
        '--hooks-amqp-durable-queues',
      ],
    });
    const queues = uploadEventNames.map((event) => `${prefix}.${event}`);
    cleanup.push(() => peer.channel.deleteExchange(exchange));
    for (const queue of queues) cleanup.push(() => peer.channel.deleteQueue(queue));
    try {
      const uploadId = await uploadLifecycle(wharf.endpoint);
      for (const event of defaultEvents) {
        const [message] = await takeMessages(peer.connection, `${prefix}.${event}`, 1);
        assert.ok(message, event);
        assert.equal(message.fields.exchange, exchange);
        assert.equal(message.fields.routingKey, `${prefix}.${event}`);
        assert.equal(message.properties.contentType, 'application/json');
        assert.equal(message.properties.contentEncoding, 'utf-8');
        assert.equal(message.properties.deliveryMode, 2, `${event} is persistent`);
        assert.match(String(message.properties.messageId), /^[0-9a-f-]{36}$/);
        const payload = JSON.parse(message.content.toString('utf8')) as {
          upload: { id: string; metadata: Record<string, string> };
        };
        assert.deepEqual(hookSchemaErrors('default', payload), [], event);
        assert.equal(payload.upload.id, event === 'pre-create' ? payload.upload.id : uploadId);
        assert.equal(payload.upload.metadata.filename, 'report.pdf');
      }
      for (const queue of queues) {
        assert.equal(await queueDurable(peer.connection, queue), true, `${queue} durable`);
      }
    } finally {
      await wharf.stop();
    }
  });

  test('with a routing key every event goes to that one queue; transient queues and messages without durability', async () => {
    const { exchange } = names();
    const routingKey = `${exchange}.all`;
    const wharf = await startWharf({
      args: [
        '--hooks-amqp-url',
        amqpUrl,
        '--hooks-amqp-exchange',
        exchange,
        '--hooks-amqp-exchange-kind',
        'direct',
        '--hooks-amqp-routing-key',
        routingKey,
        '--hooks-amqp-declare-exchange',
        '--hooks-amqp-declare-queues',
        '--hooks-format',
        'v2',
      ],
    });
    cleanup.push(() => peer.channel.deleteExchange(exchange));
    cleanup.push(() => peer.channel.deleteQueue(routingKey));
    try {
      await uploadLifecycle(wharf.endpoint);
      const messages = await takeMessages(peer.connection, routingKey, defaultEvents.length);
      const payloads = messages.map((message) => JSON.parse(message.content.toString('utf8')) as unknown);
      for (const payload of payloads) assert.deepEqual(hookSchemaErrors('v2', payload), []);
      assert.ok(messages.every((message) => message.fields.routingKey === routingKey));
      assert.ok(messages.every((message) => message.properties.deliveryMode === 1));
      const ids = new Set(messages.map((message) => message.properties.messageId));
      assert.equal(ids.size, defaultEvents.length, 'one id per event');
      assert.equal(await queueDurable(peer.connection, routingKey), false);
    } finally {
      await wharf.stop();
    }
  });

  test('a pre-create that a file hook rejects never reaches the broker', async (t) => {
    const { exchange, prefix } = names();
    const directory = await mkdtemp(path.join(tmpdir(), 'wharf-amqp-hook-'));
    t.after(() => rm(directory, { recursive: true, force: true }));
    const hook = path.join(directory, 'hook.sh');
    // Rejects uploads whose metadata names the file "blocked.bin" (its base64 is Ymxv...).
    await writeFile(
      hook,
      `#!/bin/sh\ncase "$2" in *YmxvY2tlZC5iaW4=*) echo "not this one" >&2; exit 1;; esac\nexit 0\n`,
      { mode: 0o755 },
    );
    const wharf = await startWharf({
      args: [
        '--hooks-file',
        hook,
        '--hooks',
        'pre-create',
        '--hooks-amqp-url',
        amqpUrl,
        '--hooks-amqp-exchange',
        exchange,
        '--hooks-amqp-queues-prefix',
        prefix,
        '--hooks-amqp-declare-exchange',
        '--hooks-amqp-declare-queues',
      ],
    });
    const queue = `${prefix}.pre-create`;
    cleanup.push(() => peer.channel.deleteExchange(exchange));
    for (const event of uploadEventNames) cleanup.push(() => peer.channel.deleteQueue(`${prefix}.${event}`));
    try {
      const accepted = await createUpload(wharf.endpoint, {
        'Upload-Length': 1,
        'Upload-Metadata': `filename ${Buffer.from('fine.bin').toString('base64')}`,
      });
      assert.ok(accepted);
      const refused = await send('POST', wharf.endpoint, {
        headers: {
          ...tus,
          'Upload-Length': 1,
          'Upload-Metadata': `filename ${Buffer.from('blocked.bin').toString('base64')}`,
        },
      });
      assert.equal(refused.status, 400);
      const third = await createUpload(wharf.endpoint, {
        'Upload-Length': 1,
        'Upload-Metadata': `filename ${Buffer.from('last.bin').toString('base64')}`,
      });
      assert.ok(third);
      const messages = await takeMessages(peer.connection, queue, 2);
      const names = messages.map(
        (message) =>
          (JSON.parse(message.content.toString('utf8')) as { upload: { metadata: { filename: string } } })
            .upload.metadata.filename,
      );
      assert.deepEqual(names.sort(), ['fine.bin', 'last.bin']);
      // Let a third message, if Wharf had sent one, reach the queue before looking.
      await wharf.stop();
      assert.equal((await peer.channel.checkQueue(queue)).messageCount, 0);
    } finally {
      await wharf.stop();
    }
  });

  test('uploads succeed while RabbitMQ is unreachable, and the password is never logged', async () => {
    const wharf = await startWharf({
      args: [
        '--hooks-amqp-url',
        'amqp://guest:secret-password@127.0.0.1:1',
        '--hooks-amqp-publish-timeout',
        '1',
        // Events stay owed while the broker is unreachable: do not wait for them on shutdown.
        '--shutdown-timeout',
        '1',
        '--log-level',
        'debug',
      ],
    });
    try {
      const id = await uploadLifecycle(wharf.endpoint);
      assert.ok(id.length > 0);
    } finally {
      await wharf.stop();
    }
    assert.ok(!JSON.stringify(wharf.logs).includes('secret-password'), 'the password is never logged');
  });
});
