import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type AmqpPeer,
  amqpPeer,
  amqpUrl,
  kafkaBrokers,
  kafkaConsumer,
  takeMessages,
} from '../support/brokers.ts';
import { octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

interface NamedPayload {
  readonly upload: { readonly id: string; readonly metadata: Record<string, string> };
  readonly hook: {
    readonly name: string;
    readonly event: string;
    readonly endpoint: string;
    readonly args: Record<string, unknown>;
    readonly hookArgs: Record<string, unknown>;
    readonly bindingArgs: Record<string, unknown>;
  };
}

/** Creates an upload and sends its bytes in one PATCH; returns the response of the creation and the id. */
async function upload(
  endpoint: string,
  values: Record<string, string>,
): Promise<{ status: number; text: string; id: string }> {
  const created = await send('POST', endpoint, {
    headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata(values) },
  });
  if (created.status !== 201) return { status: created.status, text: created.text, id: '' };
  const url = new URL(String(created.headers.location), endpoint).toString();
  const patched = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'abc',
  });
  assert.equal(patched.status, 204);
  return { status: 201, text: '', id: url.split('/').pop() ?? '' };
}

// The AMQP and Kafka suites at once: each has its own names, folder and Wharf.
describe('named broker hooks', { concurrency: true }, () => {
  describe('named amqp hooks bound with args and a `when` condition', { concurrency: false }, () => {
    let scratch: string;
    let wharf: WharfProcess;
    let peer: AmqpPeer;
    const tag = randomUUID().slice(0, 8);
    const exchange = `wharf-named-${tag}`;
    const prefix = `wharf-named-${tag}`;
    before(async () => {
      peer = await amqpPeer();
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-brokers-'));
      // A blocking gate bound after the amqp hook: the broker hears of pre-create only once the gate let it pass.
      await writeFile(
        path.join(scratch, 'gate.js'),
        `#!${process.execPath}
const { upload } = JSON.parse(process.argv[3]);
if (upload.metadata.filename === 'refused.png') { console.error('refused by the gate'); process.exit(1); }
`,
      );
      await chmod(path.join(scratch, 'gate.js'), 0o755);
      await writeFile(
        path.join(scratch, 'wharf.yaml'),
        `hooks:
  image-events:
    transport: amqp
    url: ${amqpUrl}
    exchange: ${exchange}
    queuesPrefix: ${prefix}
    declareExchange: true
    declareQueues: true
    args: { pipeline: thumbnails }
  gate:
    transport: file
    command: ./gate.js
endpoints:
  - path: /files
    hooks:
      - hook: image-events
        events: [pre-create, post-finish]
        args: { width: 256 }
        when: { metadata.filetype: "image/*" }
      - { hook: gate, events: [pre-create] }
`,
      );
      wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
    });
    after(async () => {
      await wharf.stop();
      for (const event of ['pre-create', 'post-create', 'post-receive', 'post-finish']) {
        await peer.channel.deleteQueue(`${prefix}.${event}`).catch(() => {});
      }
      await peer.channel.deleteExchange(exchange).catch(() => {});
      await peer.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it('only matching uploads reach RabbitMQ, with the hook section; a refused one never does', async () => {
      const text = await upload(wharf.endpoint, { filetype: 'text/plain', filename: 'notes.txt' });
      assert.equal(text.status, 201);
      const refused = await upload(wharf.endpoint, { filetype: 'image/png', filename: 'refused.png' });
      assert.equal(refused.status, 400);
      assert.equal(refused.text, 'Hook "gate" failed with exit code 1');
      const first = await upload(wharf.endpoint, { filetype: 'image/png', filename: 'a.png' });
      const second = await upload(wharf.endpoint, { filetype: 'image/jpeg', filename: 'b.jpg' });

      for (const event of ['pre-create', 'post-finish']) {
        const messages = await takeMessages(peer.connection, `${prefix}.${event}`, 2);
        const payloads = messages.map(
          (message) => JSON.parse(message.content.toString('utf8')) as NamedPayload,
        );
        assert.deepEqual(
          payloads.map((payload) => payload.upload.metadata.filename).sort(),
          ['a.png', 'b.jpg'],
          `${event}: only the accepted images`,
        );
        if (event === 'post-finish') {
          assert.deepEqual(payloads.map((payload) => payload.upload.id).sort(), [first.id, second.id].sort());
        }
        for (const [index, payload] of payloads.entries()) {
          assert.deepEqual(payload.hook, {
            name: 'image-events',
            event,
            endpoint: '/files',
            args: { pipeline: 'thumbnails', width: 256 },
            hookArgs: { pipeline: 'thumbnails' },
            bindingArgs: { width: 256 },
          });
          assert.equal(messages[index]?.properties.type, event);
          assert.equal(messages[index]?.fields.routingKey, `${prefix}.${event}`);
        }
        // Nothing else was published: the text file and the refused image stayed off the queue.
        assert.equal((await peer.channel.checkQueue(`${prefix}.${event}`)).messageCount, 0);
      }
      // The hook was not bound to post-create: its queue (declared with the others) stays empty.
      assert.equal((await peer.channel.checkQueue(`${prefix}.post-create`)).messageCount, 0);
    });

    it('a broker hook marked critical is refused at start-up: broker hooks never block', async () => {
      const bad = path.join(scratch, 'critical.yaml');
      await writeFile(
        bad,
        `hooks:
  events:
    transport: amqp
    critical: true
    topic: uploads
  stream:
    transport: kafka
endpoints:
  - path: /files
    hooks: [{ hook: events, events: [pre-create] }]
`,
      );
      await assert.rejects(startWharf({ args: ['--config', bad] }), (error: Error) => {
        assert.match(error.message, /hooks\.events\.critical: amqp hooks are never blocking/);
        assert.match(error.message, /hooks\.events: an amqp hook needs "url" \(or --hooks-amqp-url\)/);
        assert.match(error.message, /hooks\.events\.topic: is a setting of kafka hooks only/);
        assert.match(error.message, /hooks\.stream: a kafka hook needs "brokers" \(or --hooks-kafka-urls\)/);
        return true;
      });
    });
  });

  describe('named kafka hooks', () => {
    it('a bound kafka hook sends the matching uploads to its topic, keyed by upload id, with the hook section', async () => {
      const topic = `wharf-named-${randomUUID().slice(0, 8)}`;
      const consumer = await kafkaConsumer([`${topic}-post-finish`]);
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-kafka-'));
      await writeFile(
        path.join(scratch, 'wharf.yaml'),
        `hooks:
  archive-stream:
    transport: kafka
    brokers: [${kafkaBrokers.join(', ')}]
    prefix: ${topic}
    args: { tier: cold }
endpoints:
  - path: /files
    hooks:
      - { hook: archive-stream, events: [post-finish], when: { metadata.tier: cold } }
`,
      );
      const wharf = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
      try {
        const hot = await upload(wharf.endpoint, { tier: 'hot' });
        const cold = await upload(wharf.endpoint, { tier: 'cold' });
        assert.equal(hot.status, 201);
        const [record] = await consumer.take(1);
        assert.equal(record?.topic, `${topic}-post-finish`);
        assert.equal(record?.key, cold.id);
        const payload = JSON.parse(record?.value ?? '{}') as NamedPayload;
        assert.equal(payload.upload.id, cold.id);
        assert.deepEqual(payload.hook.args, { tier: 'cold' });
        assert.equal(payload.hook.name, 'archive-stream');
      } finally {
        await wharf.stop();
        await consumer.close();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });
});
