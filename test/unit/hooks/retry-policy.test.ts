import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { judgeDelivery } from '../../../src/hooks/delivery/delivery-verdict.ts';
import {
  defaultRetrySchedule,
  formatDuration,
  nextDelay,
  parseDuration,
  parseRetrySchedule,
  retryAfterUntil,
  scheduleOf,
  withJitter,
} from '../../../src/hooks/delivery/retry-policy.ts';

describe('retry schedule', () => {
  test('durations take ms, s, m, h and d; a bare number is seconds', () => {
    assert.deepEqual(
      ['100ms', '1s', '1.5s', '2m', '1h', '5d', '7', ' 30S '].map(parseDuration),
      [100, 1000, 1500, 120_000, 3_600_000, 432_000_000, 7000, 30_000],
    );
    for (const bad of ['', 's', '-1s', '1w', '1 s 2', 'abc']) {
      assert.throws(() => parseDuration(bad), RangeError, bad);
    }
  });

  test('a schedule is a comma-separated list; the default is 5s,30s,2m,10m,1h', () => {
    assert.deepEqual(parseRetrySchedule('100ms,1s,2m'), [100, 1000, 120_000]);
    assert.deepEqual(parseRetrySchedule(''), []);
    assert.deepEqual(defaultRetrySchedule.map(formatDuration), ['5s', '30s', '2m', '10m', '1h']);
    assert.equal(formatDuration(150), '150ms');
  });

  test('jitter stays within ±20 % of the delay', () => {
    assert.equal(
      withJitter(1000, () => 0),
      800,
    );
    assert.equal(
      withJitter(1000, () => 0.5),
      1000,
    );
    assert.equal(
      withJitter(1000, () => 0.999_999),
      1200,
    );
    for (let n = 0; n < 200; n++) {
      const delay = withJitter(10_000);
      assert.ok(delay >= 8000 && delay <= 12_000, String(delay));
    }
  });

  test('attempt n waits the n-th delay; after the last the event is dead', () => {
    const policy = { kind: 'schedule', delaysMs: [100, 200] } as const;
    const middle = () => 0.5;
    assert.equal(nextDelay(policy, 1, middle), 100);
    assert.equal(nextDelay(policy, 2, middle), 200);
    assert.equal(nextDelay(policy, 3, middle), undefined);
    assert.equal(nextDelay({ kind: 'schedule', delaysMs: [] }, 1, middle), undefined);
  });

  test('a backoff doubles up to its cap and never ends', () => {
    const policy = { kind: 'backoff', initialMs: 200, maxMs: 1000 } as const;
    const middle = () => 0.5;
    assert.deepEqual(
      [1, 2, 3, 4, 50].map((attempt) => nextDelay(policy, attempt, middle)),
      [200, 400, 800, 1000, 1000],
    );
    assert.deepEqual(scheduleOf(policy), [200, 400, 800, 1000]);
  });

  test('Retry-After is read as seconds or an HTTP date, capped at a day', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    assert.equal(retryAfterUntil('3', now), now + 3000);
    assert.equal(retryAfterUntil('Thu, 01 Jan 2026 12:00:10 GMT', now), now + 10_000);
    assert.equal(retryAfterUntil('Thu, 01 Jan 2026 11:00:00 GMT', now), now);
    assert.equal(retryAfterUntil('999999999', now), now + 86_400_000);
    assert.equal(retryAfterUntil('soon', now), undefined);
    assert.equal(retryAfterUntil(undefined, now), undefined);
  });
});

describe('delivery verdicts', () => {
  const now = 1_000_000;
  const responded = (httpStatus: number, extra: { retryAfter?: string; webhookDelivery?: string } = {}) =>
    judgeDelivery({ kind: 'responded', httpStatus, body: '', contentType: null, ...extra }, now);

  test('410 disables the target; 400 is refused for good; 408, 429 and 5xx are retried', () => {
    assert.deepEqual(responded(410), { kind: 'disable', reason: 'gone' });
    assert.deepEqual(responded(400), { kind: 'dead', reason: 'refused' });
    assert.deepEqual(responded(404), { kind: 'dead', reason: 'refused' });
    assert.deepEqual(responded(408), { kind: 'retry' });
    assert.deepEqual(responded(503), { kind: 'retry' });
    assert.deepEqual(responded(429, { retryAfter: '2' }), { kind: 'retry', notBefore: now + 2000 });
    assert.deepEqual(judgeDelivery({ kind: 'unreachable', detail: 'refused' }, now), { kind: 'retry' });
    assert.deepEqual(judgeDelivery({ kind: 'aborted' }, now), { kind: 'aborted' });
  });

  test('the webhook-delivery header disables the target or aborts the one message', () => {
    assert.deepEqual(responded(500, { webhookDelivery: 'abort-message' }), {
      kind: 'dead',
      reason: 'aborted_by_receiver',
    });
    assert.deepEqual(responded(503, { webhookDelivery: 'Disable' }), { kind: 'disable', reason: 'receiver' });
    assert.deepEqual(judgeDelivery({ kind: 'delivered', webhookDelivery: 'disable' }, now), {
      kind: 'delivered',
      disable: 'receiver',
    });
  });
});
