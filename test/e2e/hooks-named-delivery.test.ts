import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookReceiver, type ReceivedHook, uploadOf } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * Named http hooks of the config file deliver their post events through the outbox, each binding a target
 * with its own retry schedule (real wharf, real receiver, the admin API to look at targets and dead letters).
 */

const token = `admin-${randomUUID()}`;
const secret = `whsec_${randomBytes(24).toString('base64')}`;

/** The named hook a call was for (the payload's `hook` section). */
function hookOf(call: ReceivedHook): string {
  return String((call.payload.hook as { name?: unknown } | undefined)?.name ?? '');
}

async function api<T>(wharf: WharfProcess, route: string): Promise<T> {
  const reply = await send('GET', `${wharf.origin}/admin/api${route}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(reply.status, 200, reply.text);
  return JSON.parse(reply.text) as T;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

async function finishedUpload(wharf: WharfProcess): Promise<string> {
  const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
  const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'abc' });
  assert.equal(reply.status, 204);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

interface Target {
  name: string;
  kind: string;
  health: string;
  pending: number;
  deadLetters: number;
  retrySchedule: number[];
  signed: boolean;
}
interface DeadLetter {
  eventId: string;
  hook: string;
  uploadId: string;
  target: string;
  attempts: number;
  reason: string;
}

describe('named http hooks: per-target retry schedules through the outbox', () => {
  const receiver = new HookReceiver();
  let wharf: WharfProcess;
  let scratch: string;
  /** Failures each named hook answers (500) before it accepts, per upload. */
  const failuresBefore: Record<string, number> = {
    quick: 2,
    never: Number.POSITIVE_INFINITY,
    patient: 4,
    plain: 0,
  };
  const seen = new Map<string, number>();

  before(async () => {
    receiver.answer = (call) => {
      const key = `${hookOf(call)} ${uploadOf(call.payload).id}`;
      const count = (seen.get(key) ?? 0) + 1;
      seen.set(key, count);
      return count <= (failuresBefore[hookOf(call)] ?? 0) ? { status: 500, body: 'not now' } : {};
    };
    await receiver.start();
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-delivery-'));
    const config = {
      hooks: {
        quick: { transport: 'http', url: receiver.url, secret, retrySchedule: ['100ms', '100ms'] },
        never: { transport: 'http', url: receiver.url, retrySchedule: [] },
        patient: { transport: 'http', url: receiver.url, retrySchedule: '50ms,50ms,50ms,50ms,50ms' },
        plain: { transport: 'http', url: receiver.url },
      },
      endpoints: [
        {
          path: '/files',
          hooks: [
            { hook: 'quick', events: ['post-finish'] },
            { hook: 'never', events: ['post-finish'] },
            { hook: 'patient', events: ['post-finish'] },
            { hook: 'plain', events: ['post-finish'] },
          ],
        },
      ],
    };
    const file = path.join(scratch, 'wharf.json');
    await writeFile(file, JSON.stringify(config));
    wharf = await startWharf({
      args: [
        '--config',
        file,
        '--admin',
        '--hooks-retry-schedule',
        '250ms,1s',
        '--log-level',
        'debug',
        '--shutdown-timeout',
        '1',
      ],
      env: { WHARF_ADMIN_TOKEN: token },
    });
  });
  after(async () => {
    await wharf.stop();
    await receiver.close();
    await rm(scratch, { recursive: true, force: true });
  });

  test('every binding is an http target with its own schedule; a hook with a secret is signed', async () => {
    const { targets } = await api<{ targets: Target[] }>(wharf, '/targets');
    const shown = Object.fromEntries(
      targets.map((target) => [target.name, [target.kind, target.retrySchedule, target.signed]]),
    );
    assert.deepEqual(shown, {
      'hook:quick@/files#0': ['http', [100, 100], true],
      'hook:never@/files#1': ['http', [], false],
      'hook:patient@/files#2': ['http', [50, 50, 50, 50, 50], false],
      // No retrySchedule of its own: --hooks-retry-schedule.
      'hook:plain@/files#3': ['http', [250, 1000], false],
    });
  });

  test('a hook failing twice then accepting gets the event three times with one idempotency key', async () => {
    const id = await finishedUpload(wharf);
    const calls = await until('three calls for quick', () => {
      const got = receiver.forUpload(id).filter((call) => hookOf(call) === 'quick');
      return got.length >= 3 ? got : undefined;
    });
    const keys = calls.map((call) => call.headers['idempotency-key']);
    assert.equal(new Set(keys).size, 1);
    assert.equal(typeof keys[0], 'string');
    // Signed with its secret (Standard Webhooks): the webhook-id is the event id.
    assert.equal(calls[0]?.headers['webhook-id'], keys[0]);
    assert.match(String(calls[0]?.headers['webhook-signature']), /^v1,/);
    const runs = await until('the completed run of quick', () => {
      const lines = wharf.logs.filter(
        (line) => line.uploadId === id && line.hook === 'quick' && String(line.msg).startsWith('hook run'),
      );
      return lines.some((line) => line.status === 'completed') ? lines : undefined;
    });
    assert.deepEqual(
      runs.map((line) => [line.status, line.attempt, line.httpStatus]),
      [
        ['failed', 1, 500],
        ['failed', 2, 500],
        ['completed', 3, 200],
      ],
    );
  });

  test('an empty schedule dead-letters at the first failure while another target keeps retrying to success', async () => {
    const id = await finishedUpload(wharf);
    const { deadLetters } = await until('the dead letter of never', async () => {
      const listed = await api<{ deadLetters: DeadLetter[] }>(wharf, `/dead-letters?uploadId=${id}`);
      return listed.deadLetters.length > 0 ? listed : undefined;
    });
    assert.deepEqual(
      deadLetters.map((letter) => [letter.target, letter.hook, letter.attempts, letter.reason]),
      [['hook:never@/files#1', 'never', 1, 'exhausted']],
    );
    // patient fails four times, then its fifth attempt (its schedule allows five) is accepted.
    const patient = await until('five calls for patient', () => {
      const got = receiver.forUpload(id).filter((call) => hookOf(call) === 'patient');
      return got.length >= 5 ? got : undefined;
    });
    assert.equal(new Set(patient.map((call) => call.headers['idempotency-key'])).size, 1);
    await until('patient delivered', () =>
      wharf.logs.some(
        (line) =>
          line.uploadId === id &&
          line.hook === 'patient' &&
          line.msg === 'hook run completed' &&
          line.attempt === 5,
      )
        ? true
        : undefined,
    );
    // never was called exactly once for this upload: no retry, and its dead letter is not sent again.
    await sleep(300);
    assert.equal(receiver.forUpload(id).filter((call) => hookOf(call) === 'never').length, 1);
    const { targets } = await api<{ targets: Target[] }>(wharf, '/targets');
    const never = targets.find((target) => target.name === 'hook:never@/files#1');
    assert.equal(never?.deadLetters, 2); // one per upload of this suite
    assert.equal(targets.find((target) => target.name === 'hook:patient@/files#2')?.deadLetters, 0);
  });
});
