import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { redactTarget } from '../../src/hooks/target-guard.ts';
import { HookReceiver, type ReceivedHook, uploadOf } from '../support/hook-receiver.ts';
import { createUpload, octets, type Reply, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** The admin API driving delivery control: retries in the history, dead letters resent, targets managed. */

const token = `admin-${randomUUID()}`;

interface Run {
  target: string;
  status: string;
  attempt?: number;
  httpStatus?: number;
}
interface EventSummary {
  eventId: string;
  event: string;
  status: string;
  runs: Run[];
}

async function api(wharf: WharfProcess, method: string, route: string, body?: unknown): Promise<Reply> {
  return send(method, `${wharf.origin}/admin/api${route}`, {
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function json<T>(wharf: WharfProcess, route: string): Promise<T> {
  const reply = await api(wharf, 'GET', route);
  assert.equal(reply.status, 200, reply.text);
  return JSON.parse(reply.text) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(100);
  }
}

/** A finished upload whose `case` metadata tells the receiver how to answer. */
async function finishedUpload(wharf: WharfProcess, label = 'ok'): Promise<string> {
  const url = await createUpload(wharf.endpoint, {
    'Upload-Length': 4,
    'Upload-Metadata': `case ${Buffer.from(label).toString('base64')}`,
  });
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'data',
  });
  assert.equal(reply.status, 204);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

/** The post-finish event of an upload, once the history shows it with `status`. */
function finishEvent(wharf: WharfProcess, uploadId: string, status: string): Promise<EventSummary> {
  return until(`post-finish of ${uploadId} ${status}`, async () => {
    const { events } = await json<{ events: EventSummary[] }>(
      wharf,
      `/events?uploadId=${uploadId}&event=post-finish`,
    );
    const found = events[0];
    if (found === undefined) return undefined;
    const one = await json<EventSummary>(wharf, `/events/${found.eventId}`);
    return one.status === status ? one : undefined;
  });
}

describe('admin API: delivery control', () => {
  const receiver = new HookReceiver();
  /** Cases (upload metadata) whose calls the receiver refuses (500), and how many times (Infinity: until told). */
  const refusals = new Map<string, number>();
  let wharf: WharfProcess;
  const target = (): string => redactTarget(`http:${receiver.url}`);

  before(async () => {
    receiver.answer = (hook: ReceivedHook) => {
      const label = (uploadOf(hook.payload).metadata as Record<string, string> | undefined)?.case ?? '';
      const left = refusals.get(label) ?? 0;
      if (left <= 0) return { status: 200 };
      refusals.set(label, left - 1);
      return { status: 500, body: 'not now' };
    };
    await receiver.start();
    wharf = await startWharf({
      args: [
        '--admin',
        '--hooks-http-urls',
        receiver.url,
        '--hooks',
        'post-finish',
        '--hooks-retry-schedule',
        '150ms,150ms',
        '--hooks-allow-private-targets',
        '--shutdown-timeout',
        '1',
      ],
      env: { WHARF_ADMIN_TOKEN: token },
    });
  });
  after(async () => {
    await wharf.stop();
    await receiver.close();
  });

  test('a receiver that fails twice then succeeds: one event, two failed attempts and one completed', async () => {
    refusals.set('twice', 2);
    const uploadId = await finishedUpload(wharf, 'twice');
    await receiver.waitUntil(
      (received) => received.filter((hook) => uploadOf(hook.payload).id === uploadId).length === 3,
      'three deliveries',
    );
    const event = await finishEvent(wharf, uploadId, 'completed');
    assert.deepEqual(
      event.runs.map((run) => [run.attempt, run.status, run.httpStatus, run.target]),
      [
        [1, 'failed', 500, target()],
        [2, 'failed', 500, target()],
        [3, 'completed', 200, target()],
      ],
    );
    const keys = receiver.forUpload(uploadId).map((hook) => hook.headers['idempotency-key']);
    assert.deepEqual(keys, [event.eventId, event.eventId, event.eventId]);
  });

  test('a dead-lettered event is listed, resent through the API, and arrives', async () => {
    refusals.set('dead', Number.POSITIVE_INFINITY);
    const uploadId = await finishedUpload(wharf, 'dead');
    const failed = await finishEvent(wharf, uploadId, 'failed');
    const { deadLetters } = await until('the dead letter', async () => {
      const listed = await json<{ deadLetters: { eventId: string; attempts: number; reason: string }[] }>(
        wharf,
        `/dead-letters?uploadId=${uploadId}`,
      );
      return listed.deadLetters.length > 0 ? listed : undefined;
    });
    assert.equal(deadLetters[0]?.eventId, failed.eventId);
    assert.equal(deadLetters[0]?.attempts, 3);
    assert.equal(deadLetters[0]?.reason, 'exhausted');

    refusals.set('dead', 0);
    const before = receiver.forUpload(uploadId).length;
    const resent = await api(wharf, 'POST', `/events/${failed.eventId}/resend`, {});
    assert.equal(resent.status, 202, resent.text);
    assert.deepEqual(JSON.parse(resent.text), { requeued: 1 });
    await receiver.waitUntil(
      (received) => received.filter((hook) => uploadOf(hook.payload).id === uploadId).length > before,
      'the resent event',
    );
    const arrived = receiver.forUpload(uploadId).at(-1);
    assert.equal(arrived?.headers['idempotency-key'], failed.eventId);
    const completed = await finishEvent(wharf, uploadId, 'completed');
    assert.equal(completed.runs.at(-1)?.status, 'completed');
    const after = await json<{ deadLetters: unknown[] }>(wharf, `/dead-letters?uploadId=${uploadId}`);
    assert.deepEqual(after.deadLetters, []);

    assert.equal((await api(wharf, 'POST', `/events/${randomUUID()}/resend`, {})).status, 404);
    const recovered = await api(wharf, 'POST', '/resend', { since: Date.now() });
    assert.equal(recovered.status, 202);
    assert.deepEqual(JSON.parse(recovered.text), { requeued: 0 });
    assert.equal((await api(wharf, 'POST', '/resend', {})).status, 400);
  });

  test('targets: listed with their health, disabled and enabled, pinged; unknown ones are 404', async () => {
    const name = encodeURIComponent(target());
    const { targets } = await json<{ targets: { name: string; health: string; signed: boolean }[] }>(
      wharf,
      '/targets',
    );
    assert.ok(targets.some((entry) => entry.name === target()));
    const disabled = await api(wharf, 'POST', `/targets/${name}/disable`);
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(JSON.parse(disabled.text).health, 'disabled');
    const enabled = await api(wharf, 'POST', `/targets/${name}/enable`);
    assert.equal(JSON.parse(enabled.text).health, 'healthy');
    const pinged = await api(wharf, 'POST', `/targets/${name}/ping`);
    assert.equal(pinged.status, 200, pinged.text);
    const record = JSON.parse(pinged.text) as { status: string; httpStatus: number; event: string };
    assert.equal(record.status, 'completed');
    assert.equal(record.httpStatus, 200);
    assert.ok(receiver.received.some((hook) => hook.payload.type === 'ping'));
    assert.equal(
      (await api(wharf, 'POST', `/targets/${encodeURIComponent('http:http://nowhere.test/')}/disable`))
        .status,
      404,
    );
    const stats = await json<{ outbox: { depth: number }; runs: { completed: number } }>(wharf, '/stats');
    assert.equal(typeof stats.outbox.depth, 'number');
    assert.ok(stats.runs.completed >= 2);
  });

  test('a target added at run time receives events; its secret is never shown or logged', async () => {
    const second = new HookReceiver();
    await second.start();
    try {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      const added = await api(wharf, 'POST', '/targets', { url: second.url, secrets: [secret] });
      assert.equal(added.status, 201, added.text);
      const state = JSON.parse(added.text) as { name: string; signed: boolean; addedAtRuntime: boolean };
      assert.equal(state.name, redactTarget(`http:${second.url}`));
      assert.equal(state.addedAtRuntime, true);
      assert.equal(state.signed, true);
      const uploadId = await finishedUpload(wharf);
      await second.waitForNames(uploadId, ['post-finish']);
      const bad = await api(wharf, 'POST', '/targets', { url: second.url, secrets: ['plain-secret'] });
      assert.equal(bad.status, 400);
      const answers = [added.text, (await api(wharf, 'GET', '/targets')).text];
      await sleep(200);
      const logged = wharf.logs.map((line) => JSON.stringify(line)).join('\n');
      assert.equal(answers.join('\n').includes(secret), false, 'secret in an answer');
      assert.equal(logged.includes(secret), false, 'secret in the log');
      assert.equal(logged.includes(token), false, 'token in the log');
    } finally {
      await second.close();
    }
  });
});
