import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type Aged, AgeHeap, Fifo, TimeHeap } from '../../../src/hooks/delivery/lane-queues.ts';
import { Outbox, type OutboxOptions } from '../../../src/hooks/delivery/outbox.ts';
import { FileOutboxStore } from '../../../src/hooks/delivery/outbox-file-store.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';

// The outbox dispatches from a ready queue per target and a heap of lanes waiting for a retry time, so that
// adding and dispatching cost the same with a backlog as without (bench/outbox-backlog.mjs measures it). These
// tests pin down what must not change with it: order per upload, the retry schedule per event, a paused target
// holding only its own events, resend, disable and enable, the concurrency cap.

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** A target whose answer for each event is decided by `answer`; records every attempt and every acceptance. */
function target(answer: (delivery: HookDelivery) => DeliveryResult = () => ({ kind: 'delivered' })) {
  const transport = {
    attempts: [] as string[],
    accepted: [] as string[],
    running: 0,
    mostRunning: 0,
    describe: () => 'test',
    async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
      transport.running += 1;
      transport.mostRunning = Math.max(transport.mostRunning, transport.running);
      transport.attempts.push(delivery.eventId);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
      transport.running -= 1;
      const result = answer(delivery);
      if (result.kind === 'delivered') transport.accepted.push(delivery.eventId);
      return result;
    },
  };
  return transport satisfies HookTransport;
}

function delivery(uploadId: string, n: number): HookDelivery {
  return {
    eventId: `${uploadId}-${n}`,
    event: 'post-receive',
    hook: 'post-receive',
    uploadId,
    sequence: n,
    payload: JSON.stringify({ n }),
    request: { uri: '/files/', method: 'PATCH', remoteAddr: null, headers: {} },
    signal: new AbortController().signal,
  };
}

/** An outbox on these targets (a target missing from `schedule` backs off 60 s), options in `more` winning. */
function outboxOf(
  targets: Record<string, HookTransport>,
  schedule: Record<string, number[]>,
  concurrency = 8,
  more: Partial<Pick<OutboxOptions, 'store' | 'limit' | 'retryPolicy'>> = {},
) {
  const controller = new AbortController();
  const box = new Outbox(new Map(Object.entries(targets)), {
    store: undefined,
    limit: 100_000,
    concurrency,
    logger: quiet,
    signal: controller.signal,
    deliver: (transport, d) => transport.deliver(d),
    retryPolicy: (name) => {
      const delays = schedule[name];
      return delays === undefined
        ? { kind: 'backoff', initialMs: 60_000, maxMs: 60_000 }
        : { kind: 'schedule', delaysMs: delays };
    },
    ...more,
  });
  const stop = (): Promise<void> => {
    controller.abort();
    return box.close();
  };
  return { box, stop };
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > 10_000) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the hook outbox with a backlog', () => {
  test('a broker that is down holds 5,000 events; another target still gets every event, in order per upload', async (t) => {
    let brokerUp = false;
    const broker = target(() => (brokerUp ? { kind: 'delivered' } : { kind: 'unreachable', detail: 'down' }));
    const http = target();
    const { box, stop } = outboxOf({ broker, http }, {});
    t.after(stop);
    await box.ready();
    for (let i = 0; i < 5000; i++)
      await box.add('broker', delivery(`b${i % 1000}`, Math.floor(i / 1000) + 1));
    await until(() => broker.attempts.length > 0 && broker.running === 0, 'the broker was tried');
    const triedWhileDown = broker.attempts.length;
    for (let n = 1; n <= 3; n++)
      for (const upload of ['h1', 'h2']) await box.add('http', delivery(upload, n));
    await until(() => http.accepted.length === 6, 'the http target got its events');
    assert.deepEqual(
      http.accepted.filter((id) => id.startsWith('h1')),
      ['h1-1', 'h1-2', 'h1-3'],
    );
    assert.deepEqual(
      http.accepted.filter((id) => id.startsWith('h2')),
      ['h2-1', 'h2-2', 'h2-3'],
    );
    // The paused broker was not tried again for the events added meanwhile (its backoff is a minute).
    assert.equal(broker.attempts.length, triedWhileDown);
    assert.equal(box.target('broker')?.pending, 5000);
    assert.equal(box.target('http')?.pending, 0);

    // Back up (resend lifts the pause): every event goes, each upload's in order, never more than 8 at once.
    brokerUp = true;
    assert.equal(await box.resend('b0-1'), 1);
    await until(() => broker.accepted.length === 5000, 'the broker got the backlog');
    for (const upload of ['b0', 'b1', 'b999']) {
      assert.deepEqual(
        broker.accepted.filter((id) => id.startsWith(`${upload}-`)),
        [1, 2, 3, 4, 5].map((n) => `${upload}-${n}`),
      );
    }
    assert.ok(broker.mostRunning <= 8);
    assert.equal(box.pending, 0);
  });

  test('a broker in backoff is probed with one event at a time, not a wave of them; once one goes, all go at the concurrency', async (t) => {
    let up = false;
    const broker = target(() => (up ? { kind: 'delivered' } : { kind: 'unreachable', detail: 'down' }));
    const { box, stop } = outboxOf({ broker }, {}, 8, {
      limit: 1000,
      retryPolicy: () => ({ kind: 'backoff', initialMs: 2, maxMs: 4 }),
    });
    t.after(stop);
    await box.ready();
    // Added while the first attempts are on their way: a first wave, up to the concurrency.
    for (let i = 0; i < 100; i++) box.add('broker', delivery(`u${i}`, 1)).catch(() => undefined);
    await until(() => broker.attempts.length > 0 && broker.running === 0, 'the first wave failed');
    const firstWave = broker.attempts.length;
    assert.ok(broker.mostRunning > 1, 'the first wave went out at the concurrency');
    broker.mostRunning = 0;
    await until(() => broker.attempts.length >= firstWave + 20, 'the broker was probed again and again');
    // Every probe alone: 100 events waiting, never more than one in flight while the broker is down.
    assert.equal(broker.mostRunning, 1);
    assert.equal(box.pending, 100);

    up = true;
    await until(() => broker.accepted.length === 100, 'the backlog delivered');
    assert.ok(broker.mostRunning > 1, 'the concurrency came back');
    assert.ok(broker.mostRunning <= 8);
  });

  test('per-event retry schedules: a failing event waits its delays while the target sends the others, then goes', async (t) => {
    const failing = new Map<string, number>([
      ['a-1', 2],
      ['c-1', 1],
    ]);
    const http = target((d) => {
      const left = failing.get(d.eventId) ?? 0;
      if (left === 0) return { kind: 'delivered' };
      failing.set(d.eventId, left - 1);
      return { kind: 'unreachable', detail: 'refused' };
    });
    const { box, stop } = outboxOf({ http }, { http: [30, 30, 30] });
    t.after(stop);
    await box.ready();
    for (const upload of ['a', 'b', 'c'])
      for (let n = 1; n <= 2; n++) await box.add('http', delivery(upload, n));
    await until(() => http.accepted.length === 6, 'every event delivered');
    // b's events did not wait for a's and c's retries; a-2 and c-2 waited for their lane's head.
    assert.ok(http.accepted.indexOf('b-2') < http.accepted.indexOf('a-1'));
    assert.ok(http.accepted.indexOf('a-1') < http.accepted.indexOf('a-2'));
    assert.ok(http.accepted.indexOf('c-1') < http.accepted.indexOf('c-2'));
    assert.deepEqual(
      http.attempts.filter((id) => id === 'a-1'),
      ['a-1', 'a-1', 'a-1'],
    );
    assert.deepEqual(await box.deadLetters(), []);
  });

  test('a disabled target keeps its events unsent while the others flow, and sends them once enabled', async (t) => {
    const off = target();
    const on = target();
    const { box, stop } = outboxOf({ off, on }, {});
    t.after(stop);
    await box.ready();
    box.setEnabled('off', false);
    for (let n = 1; n <= 3; n++) {
      await box.add('off', delivery('x', n));
      await box.add('on', delivery('y', n));
    }
    await until(() => on.accepted.length === 3, 'the enabled target got its events');
    assert.deepEqual(off.attempts, []);
    box.setEnabled('off', true);
    await until(() => off.accepted.length === 3, 'the re-enabled target got its events');
    assert.deepEqual(off.accepted, ['x-1', 'x-2', 'x-3']);
  });
});

describe('the outbox figures with a backlog', () => {
  /** Waits until the clock has moved past `time`, so the next entry is added at a later millisecond. */
  async function after(time: number | undefined): Promise<void> {
    while (Date.now() <= (time ?? 0)) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  test('depth, oldest pending and dropped follow entries added, retried, delivered and dead-lettered', async (t) => {
    const held = new Set(['h1-1', 'h2-1', 'h4-1']);
    const release: (() => void)[] = [];
    const answer = (d: HookDelivery): DeliveryResult =>
      d.eventId.startsWith('f') ? { kind: 'unreachable', detail: 'refused' } : { kind: 'delivered' };
    const failing = target(answer);
    const holding = {
      accepted: [] as string[],
      describe: () => 'holding',
      async deliver(d: HookDelivery): Promise<DeliveryResult> {
        if (held.has(d.eventId)) await new Promise<void>((resolve) => release.push(resolve));
        holding.accepted.push(d.eventId);
        return { kind: 'delivered' };
      },
    } satisfies HookTransport & { accepted: string[] };
    const controller = new AbortController();
    const box = new Outbox(
      new Map<string, HookTransport>([
        ['failing', failing],
        ['holding', holding],
      ]),
      {
        store: undefined,
        limit: 4,
        concurrency: 8,
        logger: quiet,
        signal: controller.signal,
        deliver: (transport, d) => transport.deliver(d),
        // One retry 500 ms later (well after the steps below), then a dead letter.
        retryPolicy: (name) =>
          name === 'failing'
            ? { kind: 'schedule', delaysMs: [500] }
            : { kind: 'backoff', initialMs: 5, maxMs: 5 },
      },
    );
    t.after(() => {
      controller.abort();
      for (const resolve of release.splice(0)) resolve();
      return box.close();
    });
    await box.ready();
    assert.deepEqual(box.stats(), {
      depth: 0,
      oldestPendingAt: undefined,
      dropped: 0,
      deadLettersDropped: 0,
    });

    await box.add('failing', delivery('f1', 1));
    const first = box.stats().oldestPendingAt;
    assert.ok(first !== undefined && first <= Date.now());
    await after(first);
    await box.add('holding', delivery('h1', 1));
    await until(() => release.length === 1, 'h1-1 is being sent');
    await after(Date.now());
    const secondAt = Date.now();
    await box.add('holding', delivery('h2', 1));
    await until(() => release.length === 2, 'h2-1 is being sent');
    await box.add('holding', delivery('h3', 1));
    await until(() => holding.accepted.includes('h3-1'), 'h3-1 delivered');
    // Delivered: out of the figures; the first entry, failed once and waiting for its retry, is still the oldest.
    await until(() => failing.attempts.length === 1, 'f1-1 tried once');
    assert.deepEqual(box.stats(), { depth: 3, oldestPendingAt: first, dropped: 0, deadLettersDropped: 0 });

    // Full (4 pending): a fifth is dropped and counted; the oldest stays.
    await box.add('holding', delivery('h4', 1));
    await until(() => release.length === 3, 'h4-1 is being sent');
    assert.equal(box.stats().depth, 4);
    assert.equal(await box.add('holding', delivery('h5', 1)), false);
    assert.deepEqual(box.stats(), { depth: 4, oldestPendingAt: first, dropped: 1, deadLettersDropped: 0 });

    // Retried, then dead: the oldest becomes the held h1-1, added after it.
    await until(() => box.stats().depth === 3, 'f1-1 dead-lettered');
    assert.equal(failing.attempts.length, 2);
    assert.equal((await box.deadLetters()).length, 1);
    const second = box.stats().oldestPendingAt;
    assert.ok(second !== undefined && second > (first ?? 0) && second < secondAt);

    // h1-1 delivered: the oldest is h2-1's time; all delivered: none.
    release.shift()?.();
    await until(() => holding.accepted.includes('h1-1'), 'h1-1 delivered');
    const third = box.stats().oldestPendingAt;
    assert.ok(third !== undefined && third >= secondAt);
    for (const resolve of release.splice(0)) resolve();
    await until(() => box.stats().depth === 0, 'every entry delivered or dead');
    assert.deepEqual(box.stats(), {
      depth: 0,
      oldestPendingAt: undefined,
      dropped: 1,
      deadLettersDropped: 0,
    });
  });

  test('entries resumed from the journal out of time order: the oldest of them, until it is delivered', async (t) => {
    const directory = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-ages-'));
    t.after(() => rm(directory, { recursive: true, force: true }));
    const request = { uri: '/files/', method: 'PATCH', remoteAddr: null, headers: {} };
    const line = (uploadId: string, addedAt: number): string => {
      const stored = {
        eventId: `${uploadId}-1`,
        event: 'post-finish',
        hook: 'post-finish',
        uploadId,
        payload: '{}',
        request,
      };
      return JSON.stringify({ t: 'add', entry: { target: 'broker', delivery: stored, addedAt } });
    };
    await mkdir(directory, { recursive: true });
    await writeFile(
      path.join(directory, 'journal.jsonl'),
      `${[line('c', 3000), line('a', 1000), line('b', 2000), line('d', 500)].join('\n')}\n`,
    );
    const up = new Set<string>();
    const broker = target((d) =>
      up.has(d.eventId) || up.has('all') ? { kind: 'delivered' } : { kind: 'unreachable', detail: 'down' },
    );
    const { box, stop } = outboxOf({ broker }, {}, 1, { store: new FileOutboxStore(directory), limit: 100 });
    t.after(stop);
    await box.ready();
    await box.add('broker', delivery('e', 1));
    assert.deepEqual(box.stats(), { depth: 5, oldestPendingAt: 500, dropped: 0, deadLettersDropped: 0 });
    up.add('d-1');
    assert.equal(await box.resend('d-1'), 1);
    await until(() => broker.accepted.includes('d-1'), 'd-1 delivered');
    assert.deepEqual(box.stats(), { depth: 4, oldestPendingAt: 1000, dropped: 0, deadLettersDropped: 0 });
    up.add('all');
    assert.equal(await box.resend('a-1'), 1);
    await until(() => broker.accepted.length === 5, 'every entry delivered');
    assert.deepEqual(box.stats(), {
      depth: 0,
      oldestPendingAt: undefined,
      dropped: 0,
      deadLettersDropped: 0,
    });
  });
});

describe('the outbox queues', () => {
  test('AgeHeap knows the oldest item through pushes and removals anywhere (against a full scan)', () => {
    const heap = new AgeHeap<Aged & { id: number }>();
    const held = new Set<Aged & { id: number }>();
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    let removedInside = 0;
    for (let step = 0; step < 3000; step++) {
      if (held.size === 0 || random(3) > 0) {
        const item = { addedAt: random(500), agePlace: -1, id: step };
        heap.push(item);
        held.add(item);
      } else {
        const items = [...held];
        const item = items[random(items.length)] as Aged & { id: number };
        if (item.addedAt > Math.min(...items.map((one) => one.addedAt))) removedInside += 1;
        heap.remove(item);
        held.delete(item);
        assert.equal(item.agePlace, -1);
      }
      const oldest = held.size === 0 ? undefined : Math.min(...[...held].map((item) => item.addedAt));
      assert.equal(heap.oldest(), oldest);
      assert.equal(heap.size, held.size);
    }
    // Most removals took an item that was not the oldest (the case a plain heap cannot do).
    assert.ok(removedInside > 100);
    heap.remove({ addedAt: 1, agePlace: -1 } as Aged & { id: number });
    assert.equal(heap.size, held.size);
  });

  test('Fifo gives items back in order across its compaction', () => {
    const fifo = new Fifo<number>();
    const out: number[] = [];
    for (let i = 0; i < 100; i++) {
      fifo.push(i);
      if (i % 3 === 0) out.push(fifo.shift() ?? -1);
    }
    while (fifo.size > 0) out.push(fifo.shift() ?? -1);
    assert.deepEqual(
      out,
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.equal(fifo.shift(), undefined);
  });

  test('TimeHeap pops earliest first, equal times included', () => {
    const heap = new TimeHeap<string>();
    const times = [50, 10, 30, 10, 70, 20, 60, 40, 0, 30];
    for (const [index, time] of times.entries()) heap.push(time, `${time}:${index}`);
    assert.equal(heap.peekTime(), 0);
    const popped: number[] = [];
    while (heap.size > 0) popped.push(Number(heap.pop()?.split(':')[0]));
    assert.deepEqual(
      popped,
      [...times].sort((a, b) => a - b),
    );
    assert.equal(heap.pop(), undefined);
  });
});
