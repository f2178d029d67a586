import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { buildConfig } from '../../src/config/load.ts';
import { createHookEngine } from '../../src/hooks/compose-hooks.ts';
import { redactTarget } from '../../src/hooks/delivery/target-guard.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** Creates and finishes one small upload; returns its id. */
async function finishedUpload(endpoint: string): Promise<string> {
  const url = await createUpload(endpoint, { 'Upload-Length': 3 });
  const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'abc' });
  assert.equal(reply.status, 204);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

/** Waits for a log line of the running wharf (hooks are asynchronous); fails after 20 s. */
async function logLine(
  wharf: WharfProcess,
  predicate: (line: Record<string, unknown>) => boolean,
  what: string,
): Promise<Record<string, unknown>> {
  for (let waited = 0; waited < 20_000; waited += 20) {
    const line = wharf.logs.find(predicate);
    if (line !== undefined) return line;
    await sleep(20);
  }
  throw new Error(`no log line showed ${what}`);
}

async function receiver(t: { after(fn: () => Promise<void>): void }): Promise<HookReceiver> {
  const hooks = new HookReceiver();
  await hooks.start();
  t.after(() => hooks.close());
  return hooks;
}

const postFinishOnly = ['--hooks', 'post-finish', '--log-level', 'debug', '--shutdown-timeout', '1'];

// Every test at once: each has its own receiver, Wharf and store.
describe('hook delivery', { concurrency: true }, () => {
  describe('hook delivery control (real wharf, real receiver)', () => {
    test('a receiver failing twice then accepting gets the event three times with one idempotency key; the runs show attempts 1, 2, 3', async (t) => {
      const hooks = await receiver(t);
      let calls = 0;
      hooks.answer = () => (++calls <= 2 ? { status: 500, body: 'not now' } : {});
      const wharf = await startWharf({
        args: ['--hooks-http-urls', hooks.url, '--hooks-retry-schedule', '100ms,200ms', ...postFinishOnly],
      });
      t.after(() => wharf.stop());

      const id = await finishedUpload(wharf.endpoint);
      await hooks.waitForNames(id, ['post-finish', 'post-finish', 'post-finish']);
      const keys = hooks.forUpload(id).map((hook) => hook.headers['idempotency-key']);
      assert.equal(keys.length, 3);
      assert.equal(new Set(keys).size, 1);

      await logLine(
        wharf,
        (line) => line.msg === 'hook run completed' && line.uploadId === id,
        'the completed run',
      );
      const runs = wharf.logs
        .filter((line) => line.uploadId === id && String(line.msg).startsWith('hook run'))
        .map((line) => [line.status, line.attempt, line.httpStatus, line.eventId]);
      assert.deepEqual(runs, [
        ['failed', 1, 500, keys[0]],
        ['failed', 2, 500, keys[0]],
        ['completed', 3, 200, keys[0]],
      ]);
    });

    test('410 Gone disables the target: a warning names it, and later events are kept, not sent', async (t) => {
      const hooks = await receiver(t);
      hooks.answer = () => ({ status: 410 });
      const wharf = await startWharf({
        args: ['--hooks-http-urls', hooks.url, '--hooks-retry-schedule', '10ms', ...postFinishOnly],
      });
      t.after(() => wharf.stop());

      const first = await finishedUpload(wharf.endpoint);
      const disabled = await logLine(
        wharf,
        (line) => line.notice === 'target.disabled',
        'the target being disabled',
      );
      assert.deepEqual(
        [disabled.level, disabled.target, disabled.reason],
        [40, redactTarget(`http:${hooks.url}`), 'gone'],
      );
      const second = await finishedUpload(wharf.endpoint);
      // Shutting down drains what can be sent; the disabled target's events stay in the outbox.
      await wharf.stop();
      assert.equal(hooks.forUpload(first).length, 1);
      assert.equal(hooks.forUpload(second).length, 0);
      assert.equal(hooks.received.length, 1);
      const pending = wharf.logs.find(
        (line) => line.msg === 'hook deliveries still pending after drain timeout',
      );
      assert.equal(pending?.outboxPending, 2);
    });

    test('Retry-After is honoured: a receiver asking for 2 s is not called again before, then accepts', async (t) => {
      const hooks = await receiver(t);
      let firstCallAt: number | undefined;
      hooks.answer = () => {
        firstCallAt ??= Date.now();
        // Within the 2 s it asked for, the receiver would refuse again; a sender that honours it never sees that.
        return Date.now() - firstCallAt < 2000 ? { status: 503, headers: { 'Retry-After': '2' } } : {};
      };
      const wharf = await startWharf({
        // Without Retry-After, five quick retries would all fall within the 2 s and the event would die.
        args: [
          '--hooks-http-urls',
          hooks.url,
          '--hooks-retry-schedule',
          '10ms,10ms,10ms,10ms,10ms',
          ...postFinishOnly,
        ],
      });
      t.after(() => wharf.stop());

      const id = await finishedUpload(wharf.endpoint);
      await logLine(
        wharf,
        (line) => line.msg === 'hook run completed' && line.uploadId === id,
        'the completed run',
      );
      const runs = wharf.logs
        .filter((line) => line.uploadId === id && String(line.msg).startsWith('hook run'))
        .map((line) => [line.status, line.attempt, line.httpStatus]);
      assert.deepEqual(runs, [
        ['failed', 1, 503],
        ['completed', 2, 200],
      ]);
      assert.equal(hooks.forUpload(id).length, 2);
      assert.ok(!wharf.logs.some((line) => line.notice === 'message.dead_lettered'));
    });

    test('an event that exhausts its schedule is dead-lettered, survives a restart, and arrives once resent', async (t) => {
      const hooks = await receiver(t);
      hooks.answer = () => ({ status: 502 });
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-dead-'));
      t.after(() => rm(dataDir, { recursive: true, force: true }));
      const args = ['--hooks-http-urls', hooks.url, '--hooks-retry-schedule', '20ms,20ms', ...postFinishOnly];
      const first = await startWharf({ args, dataDir });
      const id = await finishedUpload(first.endpoint);
      const dead = await logLine(first, (line) => line.notice === 'message.dead_lettered', 'the dead letter');
      assert.deepEqual(
        [dead.level, dead.reason, dead.target],
        [40, 'exhausted', redactTarget(`http:${hooks.url}`)],
      );
      assert.equal(hooks.forUpload(id).length, 3);
      await first.stop();

      const second = await startWharf({ args, dataDir });
      const held = await logLine(
        second,
        (line) => line.deadLetters !== undefined,
        'the dead letters at start',
      );
      assert.equal(held.deadLetters, 1);
      await second.stop();
      // Nothing was sent again on its own.
      assert.equal(hooks.forUpload(id).length, 3);

      // The same outbox opened by the library: listed, resent, delivered.
      hooks.answer = () => ({});
      const config = buildConfig({ dataDir, hooksHttpUrls: [hooks.url], hooks: ['post-finish'] }, {});
      const engine = createHookEngine(config.hooks, quiet);
      t.after(() => engine.close());
      const letters = await engine.delivery.deadLetters({ uploadId: id });
      assert.deepEqual(
        letters.map((letter) => [
          letter.event,
          letter.reason,
          letter.attempts,
          letter.lastError,
          letter.target,
        ]),
        [['post-finish', 'exhausted', 3, 'HTTP 502', `http:${hooks.url}`]],
      );
      const eventId = letters[0]?.eventId ?? '';
      assert.equal(await engine.delivery.resend(eventId), 1);
      await hooks.waitForNames(id, ['post-finish', 'post-finish', 'post-finish', 'post-finish']);
      assert.equal(hooks.forUpload(id)[3]?.headers['idempotency-key'], eventId);
      const run = await engine.runs.waitFor(
        (record) => record.eventId === eventId && record.status === 'completed',
      );
      assert.equal(run.attempt, 1);
      assert.deepEqual(await engine.delivery.deadLetters(), []);
      const [state] = engine.delivery.targets();
      assert.deepEqual([state?.name, state?.health, state?.deadLetters], [`http:${hooks.url}`, 'healthy', 0]);
    });

    test('ping sends a test event to a target; a target added at run time receives the next events', async (t) => {
      const hooks = await receiver(t);
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-ping-'));
      t.after(() => rm(dataDir, { recursive: true, force: true }));
      const config = buildConfig({ dataDir, hooks: ['post-finish'] }, {});
      const engine = createHookEngine(config.hooks, quiet);
      t.after(() => engine.close());
      const added = engine.delivery.addHttpTarget({ url: hooks.url, events: ['post-create'] });
      assert.deepEqual(
        [added.name, added.kind, added.addedAtRuntime, added.signed, added.health],
        [`http:${hooks.url}`, 'http', true, false, 'healthy'],
      );
      const record = await engine.delivery.ping(added.name);
      assert.deepEqual([record.event, record.status, record.httpStatus], ['ping', 'completed', 200]);
      assert.equal(hooks.received[0]?.name, 'ping');
      assert.deepEqual(Object.keys(hooks.received[0]?.payload ?? {}).sort(), ['at', 'target', 'type']);
      assert.equal(hooks.received[0]?.payload.type, 'ping');

      assert.equal(engine.listens('post-create'), true);
      assert.equal(engine.listens('post-terminate'), false);
      const disabled = engine.delivery.setTargetEnabled(added.name, false);
      assert.deepEqual([disabled?.health, disabled?.disabledReason], ['disabled', 'manual']);
      assert.equal(engine.delivery.setTargetEnabled('http://nowhere/', true), undefined);
      engine.delivery.setTargetEnabled(added.name, true);
      const stats = engine.delivery.stats();
      assert.deepEqual([stats.depth, stats.oldestPendingAt, stats.dropped], [0, undefined, 0]);
    });
  });

  describe('dead letters in shared stores (real wharf)', () => {
    async function deadLetterIn(t: { after(fn: () => Promise<void>): void }, args: readonly string[]) {
      const hooks = await receiver(t);
      hooks.answer = () => ({ status: 400, body: 'bad payload' });
      const wharf = await startWharf({ args: ['--hooks-http-urls', hooks.url, ...postFinishOnly, ...args] });
      t.after(async () => {
        await wharf.stop();
      });
      const id = await finishedUpload(wharf.endpoint);
      await logLine(wharf, (line) => line.notice === 'message.dead_lettered', 'the dead letter');
      // Refused for good: one attempt only.
      assert.equal(hooks.forUpload(id).length, 1);
      await wharf.stop();
      return { id, target: `http:${hooks.url}` };
    }

    test('redis: the dead letter is kept in the shared store', async (t) => {
      const url = new URL(redisUrl);
      url.pathname = '/12';
      // Keys of this test's own (the Redis is shared: never flushed), removed after it.
      const prefix = `test-dead-${randomBytes(4).toString('hex')}:`;
      const client = new Redis(url.toString());
      t.after(async () => {
        const keys = await client.keys(`${prefix}*`);
        if (keys.length > 0) await client.del(...keys);
        client.disconnect();
      });
      const { id, target } = await deadLetterIn(t, [
        '--info-storage',
        'redis-info-storage',
        '--info-db-dsn',
        url.toString(),
        '--redis-key-prefix',
        prefix,
      ]);
      const kept = (await client.hvals(`${prefix}outbox:dead`)).map(
        (text) =>
          JSON.parse(text) as { target: string; delivery: { uploadId: string }; dead: { reason: string } },
      );
      assert.deepEqual(
        kept.map((entry) => [entry.target, entry.delivery.uploadId, entry.dead.reason]),
        [[target, id, 'refused']],
      );
      assert.equal(await client.hlen(`${prefix}outbox:entries`), 0);
    });

    test('postgres: the dead letter is kept in the shared store', async (t) => {
      const schema = `wharf_dead_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
      await admin.query(`CREATE SCHEMA ${schema}`);
      t.after(async () => {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.end();
      });
      const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const { id, target } = await deadLetterIn(t, [
        '--info-storage',
        'db-info-storage',
        '--info-db-dsn',
        dsn,
      ]);
      const { rows } = await admin.query<{
        target: string;
        entry: { delivery: { uploadId: string }; dead: { reason: string; lastError: string } };
      }>(`SELECT target, entry FROM ${schema}.wharf_hook_dead_letters`);
      assert.deepEqual(
        rows.map((row) => [
          row.target,
          row.entry.delivery.uploadId,
          row.entry.dead.reason,
          row.entry.dead.lastError,
        ]),
        [[target, id, 'refused', 'HTTP 400']],
      );
      const owed = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.wharf_hook_outbox`);
      assert.equal(Number(owed.rows[0]?.n), 0);
    });
  });
});
