import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { test } from 'node:test';
import { coerceOption, type OptionValue } from '../../src/config/option-table.ts';
import { kafkaHooksConfig, kafkaOptions } from '../../src/config/options-kafka.ts';
import { KafkaHookTransport } from '../../src/hooks/transports/kafka.ts';
import type { HookDelivery } from '../../src/hooks/transports/types.ts';
import { createKafkaTopics, kafkaBrokers } from '../support/brokers.ts';
import { eventually } from '../support/eventually.ts';

/**
 * TCP connections of this process established to `port` (its sockets in /proc/self/fd, matched in the kernel's
 * tables): the Kafka client connects to the addresses the cluster advertises, so no proxy could count them.
 */
async function connectionsTo(port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    const socket = /^socket:\[(\d+)\]$/.exec(link);
    if (socket?.[1] !== undefined) inodes.add(socket[1]);
  }
  let count = 0;
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    const lines = (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const columns = line.trim().split(/\s+/);
      const remote = columns[2]?.split(':')[1];
      // State 01: established.
      if (remote === undefined || columns[3] !== '01' || !inodes.has(columns[9] ?? '')) continue;
      if (Number.parseInt(remote, 16) === port) count++;
    }
  }
  return count;
}

function delivery(n: number): HookDelivery {
  return {
    eventId: `kafka-replaced-${n}`,
    event: 'post-create',
    hook: 'post-create',
    uploadId: `upload-${n}`,
    payload: JSON.stringify({ n }),
    request: { uri: '/files/', method: 'POST', remoteAddr: null, headers: {} },
    signal: new AbortController().signal,
  };
}

test('a replaced Kafka hook (keepConnections(false)) closes its producer once idle; a late delivery still goes out, then closes too', async (t) => {
  const topic = `wharf-kafka-replaced-${randomUUID()}`;
  await createKafkaTopics([topic]);
  const defaults: Record<string, OptionValue> = {};
  for (const spec of kafkaOptions) {
    if (spec.default !== undefined) defaults[spec.key] = coerceOption(spec, spec.default, 'default');
  }
  const config = kafkaHooksConfig({ ...defaults, hooksKafkaUrls: kafkaBrokers, hooksKafkaTopic: topic });
  assert.ok(config !== undefined);
  const transport = new KafkaHookTransport(config);
  t.after(() => transport.close());
  const port = Number(kafkaBrokers[0]?.split(':').pop());
  const before = await connectionsTo(port);

  assert.equal((await transport.deliver(delivery(1))).kind, 'delivered');
  assert.ok((await connectionsTo(port)) > before, 'positive control: the producer keeps its connection');
  transport.keepConnections(false);
  await eventually(
    async () => ((await connectionsTo(port)) === before ? true : undefined),
    'the producer of the replaced hook closed',
  );
  // An event stored for the old declaration, retried through it: delivered (acknowledged by the broker), and
  // nothing kept after.
  assert.equal((await transport.deliver(delivery(2))).kind, 'delivered');
  await eventually(
    async () => ((await connectionsTo(port)) === before ? true : undefined),
    'the producer closed again after the late delivery',
  );
});
