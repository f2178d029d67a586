import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PostgresBackend } from '../../../src/backends/postgres.ts';
import { RedisBackend } from '../../../src/backends/redis.ts';
import { Outbox, type OutboxOptions } from '../../../src/hooks/delivery/outbox.ts';
import { FileOutboxStore } from '../../../src/hooks/delivery/outbox-file-store.ts';
import type { StoredEntry } from '../../../src/hooks/delivery/outbox-journal.ts';
import { PostgresOutboxStore } from '../../../src/hooks/delivery/outbox-postgres-store.ts';
import { RedisOutboxStore } from '../../../src/hooks/delivery/outbox-redis-store.ts';
import type { OutboxStore } from '../../../src/hooks/delivery/outbox-store.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';
import { postgresUrl, redisUrl } from '../../support/services.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const leaseMs = 300;

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

/** An entry as the outbox stores it for target `t` (a delivery without its signal). */
function storedEntry(uploadId: string): StoredEntry {
  const { signal: _signal, ...stored } = delivery(uploadId, 'post-finish', 1);
  return { target: 't', delivery: stored };
}

function outbox(
  transport: HookTransport,
  store: OutboxStore | undefined,
  options: Partial<OutboxOptions> = {},
): Outbox {
  const box = new Outbox(new Map([['t', transport]]), {
    store,
    limit: 1000,
    concurrency: 8,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    logger: quiet,
    signal: new AbortController().signal,
    deliver: (t, d) => t.deliver(d),
    ...options,
  });
  opened.push(box);
  return box;
}

/** Outboxes of the running test: closed before its store goes away (a late close would reconnect). */
const opened: Outbox[] = [];

async function finish(place: { cleanup(): Promise<void> }): Promise<void> {
  await Promise.all(opened.splice(0).map((box) => box.close()));
  await place.cleanup();
}

/** One place the entries live: every `store()` is another process's view of it (a fresh owner). */
interface StoreKind {
  readonly name: string;
  readonly shared: boolean;
  setup(): Promise<{ store(): OutboxStore | undefined; cleanup(): Promise<void> }>;
}

/** Redis keys under a prefix of their own, removed at cleanup. */
function redisPlace() {
  const backend = new RedisBackend(redisUrl);
  const keyPrefix = `wharf-test-${randomBytes(4).toString('hex')}:`;
  return {
    backend,
    keyPrefix,
    store: () => new RedisOutboxStore(backend, { leaseMs, keyPrefix }),
    cleanup: async () => {
      const client = await backend.client();
      const keys = await client.keys(`${keyPrefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await backend.close();
    },
  };
}

const kinds: StoreKind[] = [
  { name: 'memory', shared: false, setup: async () => ({ store: () => undefined, cleanup: async () => {} }) },
  {
    name: 'file',
    shared: false,
    setup: async () => {
      const directory = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-unit-'));
      return {
        store: () => new FileOutboxStore(directory),
        cleanup: () => rm(directory, { recursive: true, force: true }),
      };
    },
  },
  { name: 'redis', shared: true, setup: async () => redisPlace() },
  {
    name: 'postgres',
    shared: true,
    setup: async () => {
      // A schema of its own: the bound and the takeover see only this test's rows.
      const schema = `wharf_outbox_test_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
      await admin.query(`CREATE SCHEMA ${schema}`);
      const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const backend = new PostgresBackend(dsn);
      return {
        store: () => new PostgresOutboxStore(backend, { leaseMs }),
        cleanup: async () => {
          await backend.close();
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
          await admin.end();
        },
      };
    },
  },
];

for (const kind of kinds) {
  describe(`hook outbox (${kind.name} store)`, () => {
    test('retries while the target is down, then delivers every entry, in order per upload', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const broker = target();
      broker.down = true;
      const box = outbox(broker, place.store());
      await box.ready();
      const added: Promise<boolean>[] = [];
      for (let n = 0; n < 10; n++) {
        added.push(box.add('t', delivery(`u${n % 3}`, 'post-create', n)));
        added.push(box.add('t', delivery(`u${n % 3}`, 'post-finish', n)));
      }
      assert.ok((await Promise.all(added)).every(Boolean));
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.equal(broker.accepted.length, 0);
      assert.equal(box.pending, 20);
      broker.down = false;
      await box.idle();
      assert.equal(broker.accepted.length, 20);
      for (const upload of ['u0', 'u1', 'u2']) {
        const sent = broker.accepted.filter((d) => d.uploadId === upload).map((d) => d.eventId);
        const expected = [...Array(10).keys()]
          .filter((n) => `u${n % 3}` === upload)
          .flatMap((n) => [`${upload}-post-create-${n}`, `${upload}-post-finish-${n}`]);
        assert.deepEqual(sent, expected);
      }
    });

    test('is bounded: when full, older entries are kept and new ones are dropped and counted', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const broker = target();
      broker.down = true;
      const store = place.store();
      const box = outbox(broker, store, { limit: 5 });
      await box.ready();
      const accepted = [];
      for (let n = 0; n < 8; n++) accepted.push(await box.add('t', delivery('u', 'post-receive', n)));
      assert.deepEqual(accepted, [true, true, true, true, true, false, false, false]);
      assert.equal(box.pending, 5);
      assert.equal(box.dropped, 3);
      if (store !== undefined) assert.equal((await store.pending()).length, 5);
      broker.down = false;
      await box.idle();
      assert.deepEqual(
        broker.accepted.map((d) => d.eventId),
        [0, 1, 2, 3, 4].map((n) => `u-post-receive-${n}`),
      );
    });

    test('a final refusal becomes a dead letter at once and does not hold up the next entries', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
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
      const box = outbox(refusing, place.store());
      await box.ready();
      await box.add('t', delivery('u', 'post-create', 1));
      await box.add('t', delivery('u', 'post-finish', 2));
      await box.idle();
      assert.deepEqual(refusing.calls, ['u-post-create-1', 'u-post-finish-2']);
      assert.equal(box.pending, 0);
      const dead = await box.deadLetters();
      assert.deepEqual(
        dead.map((letter) => [letter.eventId, letter.reason, letter.attempts, letter.lastError]),
        [['u-post-create-1', 'refused', 1, 'HTTP 400']],
      );
    });

    test('an entry failing its whole schedule is dead-lettered, listed, and delivered again on resend', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const down = target();
      down.down = true;
      const notices: string[] = [];
      const box = outbox(down, place.store(), {
        retryPolicy: () => ({ kind: 'schedule', delaysMs: [5, 5] }),
      });
      box.onNotice((notice) => notices.push(notice.type));
      await box.ready();
      await box.add('t', delivery('u', 'post-finish', 1));
      await box.idle();
      const [letter] = await box.deadLetters({ target: 't', uploadId: 'u' });
      assert.equal(letter?.eventId, 'u-post-finish-1');
      assert.equal(letter?.reason, 'exhausted');
      assert.equal(letter?.attempts, 3);
      assert.deepEqual(notices, ['message.dead_lettered']);
      assert.deepEqual(await box.deadLetters({ uploadId: 'other' }), []);
      assert.equal(box.target('t')?.deadLetters, 1);

      down.down = false;
      assert.equal(await box.resend('u-post-finish-1'), 1);
      await box.idle();
      assert.deepEqual(
        down.accepted.map((d) => d.eventId),
        ['u-post-finish-1'],
      );
      assert.deepEqual(await box.deadLetters(), []);
      // Resent once: a second resend finds nothing.
      assert.equal(await box.resend('u-post-finish-1'), 0);
    });

    test('a target failing every attempt for --hooks-disable-after is disabled; its entries wait until it is enabled', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const down = target();
      down.down = true;
      const notices: string[] = [];
      const box = outbox(down, place.store(), {
        retryPolicy: () => ({ kind: 'schedule', delaysMs: [5, 5, 5, 5, 5, 5, 5, 5] }),
        disableAfterMs: 1,
      });
      box.onNotice((notice) => {
        notices.push(notice.type === 'target.disabled' ? `${notice.type} ${notice.reason}` : notice.type);
      });
      await box.ready();
      await box.add('t', delivery('u', 'post-create', 1));
      for (let waited = 0; box.target('t')?.health.health !== 'disabled'; waited += 5) {
        assert.ok(waited < 5000, 'the target was never disabled');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.deepEqual(notices, ['target.disabled failing']);
      assert.equal(box.target('t')?.pending, 1);
      await box.add('t', delivery('v', 'post-create', 2));
      assert.equal(box.stats().depth, 2);
      assert.ok((box.stats().oldestPendingAt ?? 0) > 0);

      down.down = false;
      assert.equal(box.setEnabled('t', true), true);
      await box.idle();
      assert.deepEqual(down.accepted.map((d) => d.eventId).sort(), ['u-post-create-1', 'v-post-create-2']);
      assert.deepEqual(notices, ['target.disabled failing', 'target.enabled']);
      assert.equal(box.target('t')?.health.health, 'healthy');
      assert.equal(box.setEnabled('unknown', true), false);
    });

    test('dead letters are bounded: beyond the limit the oldest are dropped, logged and counted, also after a restart', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const refusing: HookTransport = {
        describe: () => 'refusing',
        deliver: async () => ({ kind: 'responded', httpStatus: 400, body: 'no', contentType: null }),
      };
      const warnings: Record<string, unknown>[] = [];
      const logger = { ...quiet, warn: (fields: Record<string, unknown>) => warnings.push(fields) };
      const closing = new AbortController();
      const first = outbox(refusing, place.store(), { deadLetterLimit: 2, logger, signal: closing.signal });
      await first.ready();
      for (const n of [1, 2, 3, 4]) {
        await first.add('t', delivery(`u${n}`, 'post-finish', n));
        await first.idle();
      }
      const newest = ['u3-post-finish-3', 'u4-post-finish-4'];
      assert.deepEqual(
        (await first.deadLetters()).map((letter) => letter.eventId),
        newest,
      );
      assert.equal(first.stats().deadLettersDropped, 2);
      assert.equal(first.target('t')?.deadLetters, 2);
      assert.deepEqual(
        warnings.flatMap((fields) => (fields.eventIds as string[] | undefined) ?? []),
        ['u1-post-finish-1', 'u2-post-finish-2'],
      );
      if (kind.name === 'memory') return;
      closing.abort();
      await first.close();
      const second = outbox(target(), place.store());
      await second.ready();
      assert.deepEqual(
        (await second.deadLetters()).map((letter) => letter.eventId),
        newest,
      );
    });

    if (kind.name === 'memory') return;

    test('dead letters of the same millisecond list in the order the limit drops them, also after a restart', async (t) => {
      const place = await kind.setup();
      // Stores still open are closed before their place goes away (a late close would reconnect).
      const open = new Set<OutboxStore>();
      const opening = async () => {
        const store = place.store() as OutboxStore;
        open.add(store);
        await store.open(['t']);
        return store;
      };
      t.after(async () => {
        for (const store of open) await store.close();
        await finish(place);
      });
      const store = await opening();
      const deadAt = Date.now();
      const kill = async (uploadId: string, at: number, limit: number) => {
        const entry = storedEntry(uploadId);
        await store.append(entry, 1000);
        return store.markDead(entry, { reason: 'refused', attempts: 1, lastError: 'no', deadAt: at }, limit);
      };
      for (const uploadId of ['c', 'a', 'b']) assert.deepEqual(await kill(uploadId, deadAt, 3), []);
      // The file store keeps the order they died in; the shared ones break a tie by key, the same on every instance.
      const listed = kind.shared ? ['a', 'b', 'c'] : ['c', 'a', 'b'];
      const ids = async (from: OutboxStore) =>
        (await from.deadLetters()).map((letter) => letter.delivery.uploadId);
      assert.deepEqual(await ids(store), listed);

      const dropped = await kill('d', deadAt + 1, 3);
      assert.deepEqual(
        dropped.map((letter) => letter.eventId),
        [`${listed[0]}-post-finish-1`],
      );
      const kept = [...listed.slice(1), 'd'];
      assert.deepEqual(await ids(store), kept);
      open.delete(store);
      await store.close();
      assert.deepEqual(await ids(await opening()), kept);
    });

    test('resumes stored entries after a restart, ahead of new ones', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const down = target();
      down.down = true;
      const closing = new AbortController();
      const first = outbox(down, place.store(), { signal: closing.signal });
      await first.ready();
      await first.add('t', delivery('a', 'post-create', 1));
      await first.add('t', delivery('a', 'post-finish', 2));
      await first.add('t', delivery('b', 'post-create', 3));
      closing.abort();
      await first.close();

      const up = target();
      const second = outbox(up, place.store());
      void second.add('t', delivery('a', 'post-terminate', 4));
      await second.ready();
      await second.idle();
      assert.deepEqual(
        up.accepted.filter((d) => d.uploadId === 'a').map((d) => d.eventId),
        ['a-post-create-1', 'a-post-finish-2', 'a-post-terminate-4'],
      );
      assert.equal(up.accepted.length, 4);
      await second.close();

      // Everything was confirmed: a third start owes nothing.
      const store = place.store();
      const last = outbox(target(), store);
      await last.ready();
      assert.equal(last.pending, 0);
      assert.deepEqual(await store?.pending(), []);
      await last.close();
    });

    test('dead letters survive a restart and are recovered by time', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const closing = new AbortController();
      const gone: HookTransport = {
        describe: () => 'gone',
        deliver: async () => ({
          kind: 'responded',
          httpStatus: 422,
          body: '',
          contentType: null,
          webhookDelivery: 'abort-message',
        }),
      };
      const first = outbox(gone, place.store(), { signal: closing.signal });
      await first.ready();
      const before = Date.now();
      await first.add('t', delivery('a', 'post-create', 1));
      await first.add('t', delivery('b', 'post-create', 2));
      await first.idle();
      closing.abort();
      await first.close();

      const up = target();
      const second = outbox(up, place.store());
      await second.ready();
      const dead = await second.deadLetters({ since: before });
      assert.deepEqual(dead.map((letter) => letter.reason).sort(), [
        'aborted_by_receiver',
        'aborted_by_receiver',
      ]);
      assert.deepEqual(dead.map((letter) => letter.eventId).sort(), ['a-post-create-1', 'b-post-create-2']);
      assert.equal(second.target('t')?.deadLetters, 2);
      assert.equal(await second.recover(Date.now() + 60_000), 0);
      assert.equal(await second.recover(before), 2);
      await second.idle();
      assert.deepEqual(up.accepted.map((d) => d.eventId).sort(), ['a-post-create-1', 'b-post-create-2']);
      assert.deepEqual(await second.deadLetters(), []);
    });

    if (!kind.shared) return;

    test('events of an instance that stops renewing its claim are delivered by another, in order; none while it lives', async (t) => {
      const place = await kind.setup();
      t.after(() => finish(place));
      const dying = new AbortController();
      const down = target();
      down.down = true;
      const first = outbox(down, place.store(), { signal: dying.signal });
      await first.ready();
      for (let n = 0; n < 6; n++) {
        await first.add('t', delivery(`u${n % 2}`, 'post-create', n));
        await first.add('t', delivery(`u${n % 2}`, 'post-finish', n));
      }
      const up = target();
      const second = outbox(up, place.store());
      await second.ready();
      // The first instance renews its claim: nothing of its own is taken from it.
      await new Promise((resolve) => setTimeout(resolve, leaseMs * 3));
      assert.equal(up.accepted.length, 0);

      // It dies (stops renewing, never closes): after the lease, the second instance delivers everything.
      dying.abort();
      for (let attempt = 0; up.accepted.length < 12; attempt++) {
        assert.ok(attempt < 200, `only ${up.accepted.length} of 12 taken over`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await second.idle();
      for (const upload of ['u0', 'u1']) {
        const sent = up.accepted.filter((d) => d.uploadId === upload).map((d) => d.eventId);
        const expected = [...Array(6).keys()]
          .filter((n) => `u${n % 2}` === upload)
          .flatMap((n) => [`${upload}-post-create-${n}`, `${upload}-post-finish-${n}`]);
        assert.deepEqual(sent, expected);
      }
      assert.equal(new Set(up.accepted.map((d) => d.eventId)).size, 12);
      const store = place.store();
      assert.deepEqual(await store?.pending(), []);
    });
  });
}

describe('hook outbox redis store, dead letters of an older Wharf', () => {
  test('a dead letter stored without its place in the order (before the limit existed) is still listed, first', async (t) => {
    const place = redisPlace();
    const store = place.store();
    t.after(async () => {
      await store.close();
      await place.cleanup();
    });
    await store.open(['t']);
    const note = { reason: 'refused', attempts: 1, lastError: 'no' } as const;
    const client = await place.backend.client();
    // What an older Wharf wrote: the hash only.
    await client.hset(
      `${place.keyPrefix}outbox:dead`,
      't old-post-finish-1',
      JSON.stringify({ ...storedEntry('old'), dead: { ...note, deadAt: Date.now() - 1000 } }),
    );
    const entry = storedEntry('new');
    await store.append(entry, 1000);
    await store.markDead(entry, { ...note, deadAt: Date.now() }, 10);
    assert.deepEqual(
      (await store.deadLetters()).map((letter) => letter.delivery.eventId),
      ['old-post-finish-1', 'new-post-finish-1'],
    );
  });
});
