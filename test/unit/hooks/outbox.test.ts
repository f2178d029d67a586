import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Outbox, type OutboxOptions } from '../../../src/hooks/outbox.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** A target that fails while `down` is true and records what it accepted. */
function target(): HookTransport & { down: boolean; accepted: HookDelivery[] } {
  return {
    down: false,
    accepted: [],
    describe: () => 'test',
    async deliver(delivery): Promise<DeliveryResult> {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      if (this.down) return { kind: 'unreachable', detail: 'down' };
      this.accepted.push(delivery);
      return { kind: 'delivered' };
    },
  };
}

function delivery(uploadId: string, hook: HookDelivery['event'], n: number): HookDelivery {
  return {
    eventId: `${uploadId}-${hook}-${n}`,
    event: hook,
    hook,
    uploadId,
    payload: JSON.stringify({ n }),
    request: { uri: '/files/', method: 'POST', remoteAddr: null, headers: {} },
    signal: new AbortController().signal,
  };
}

function outbox(transport: HookTransport, options: Partial<OutboxOptions> = {}): Outbox {
  return new Outbox(new Map([['t', transport]]), {
    directory: undefined,
    limit: 1000,
    concurrency: 8,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    logger: quiet,
    signal: new AbortController().signal,
    deliver: (t, d) => t.deliver(d),
    ...options,
  });
}

describe('hook outbox', () => {
  test('retries while the target is down, then delivers every entry, in order per upload', async () => {
    const broker = target();
    broker.down = true;
    const box = outbox(broker);
    await box.ready();
    for (let n = 0; n < 10; n++) {
      box.add('t', delivery(`u${n % 3}`, 'post-create', n));
      box.add('t', delivery(`u${n % 3}`, 'post-finish', n));
    }
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(broker.accepted.length, 0);
    assert.equal(box.pending, 20);
    broker.down = false;
    await box.idle();
    assert.equal(broker.accepted.length, 20);
    for (const upload of ['u0', 'u1', 'u2']) {
      const sent = broker.accepted.filter((d) => d.uploadId === upload).map((d) => d.eventId);
      const added = [...Array(10).keys()]
        .filter((n) => `u${n % 3}` === upload)
        .flatMap((n) => [`${upload}-post-create-${n}`, `${upload}-post-finish-${n}`]);
      assert.deepEqual(sent, added);
    }
  });

  test('is bounded: when full, older entries are kept and new ones are dropped and counted', async () => {
    const broker = target();
    broker.down = true;
    const box = outbox(broker, { limit: 5 });
    await box.ready();
    const accepted = [...Array(8).keys()].map((n) => box.add('t', delivery('u', 'post-receive', n)));
    assert.deepEqual(accepted, [true, true, true, true, true, false, false, false]);
    assert.equal(box.pending, 5);
    assert.equal(box.dropped, 3);
    broker.down = false;
    await box.idle();
    assert.deepEqual(
      broker.accepted.map((d) => d.eventId),
      [0, 1, 2, 3, 4].map((n) => `u-post-receive-${n}`),
    );
  });

  test('resumes journaled entries after a restart, ahead of new ones', async (t) => {
    const directory = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-unit-'));
    t.after(() => rm(directory, { recursive: true, force: true }));
    const down = target();
    down.down = true;
    const closing = new AbortController();
    const first = outbox(down, { directory, signal: closing.signal });
    await first.ready();
    first.add('t', delivery('a', 'post-create', 1));
    first.add('t', delivery('a', 'post-finish', 2));
    first.add('t', delivery('b', 'post-create', 3));
    closing.abort();
    await first.close();

    const up = target();
    const second = outbox(up, { directory });
    second.add('t', delivery('a', 'post-terminate', 4));
    await second.ready();
    await second.idle();
    assert.deepEqual(
      up.accepted.filter((d) => d.uploadId === 'a').map((d) => d.eventId),
      ['a-post-create-1', 'a-post-finish-2', 'a-post-terminate-4'],
    );
    assert.equal(up.accepted.length, 4);
    await second.close();

    // Everything was confirmed: a third start owes nothing.
    const third = target();
    const last = outbox(third, { directory });
    await last.ready();
    assert.equal(last.pending, 0);
    await last.close();
  });

  test('a failure marked final is dropped, not retried, and does not hold up the next entries', async () => {
    const refusing: HookTransport & { calls: string[] } = {
      calls: [],
      describe: () => 'refusing',
      async deliver(delivery): Promise<DeliveryResult> {
        this.calls.push(delivery.eventId);
        if (delivery.eventId.endsWith('-1')) {
          return { kind: 'responded', httpStatus: 400, body: 'no', contentType: null };
        }
        return { kind: 'delivered' };
      },
    };
    const box = outbox(refusing, { isFinal: (result) => result.kind === 'responded' });
    await box.ready();
    box.add('t', delivery('u', 'post-create', 1));
    box.add('t', delivery('u', 'post-finish', 2));
    await box.idle();
    assert.deepEqual(refusing.calls, ['u-post-create-1', 'u-post-finish-2']);
    assert.equal(box.pending, 0);
  });
});
