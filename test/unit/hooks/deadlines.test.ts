import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineQueue } from '../../../src/hooks/transports/deadlines.ts';

// The one timer of a broker transport that gives up on deliveries whose confirm (AMQP) or acknowledgement
// (Kafka) never came: each waiter expires once, in the order added, unless it was settled before.

test('waiters expire once their time is up, in the order added; a settled one never does', async () => {
  const queue = new DeadlineQueue(20);
  const expired: string[] = [];
  const waiter = (name: string) => () => expired.push(name);
  const first = waiter('first');
  const settled = waiter('settled');
  queue.add(first);
  queue.add(settled);
  await sleep(5);
  const later = waiter('later');
  queue.add(later);
  queue.delete(settled);
  assert.equal(queue.size, 2);
  for (let waited = 0; expired.length < 2 && waited < 200; waited++) await sleep(5);
  assert.deepEqual(expired, ['first', 'later']);
  assert.equal(queue.size, 0);
  await sleep(40);
  assert.deepEqual(expired, ['first', 'later'], 'each expired once');
});

test('a waiter added by an expiry expires in its turn too', async () => {
  const queue = new DeadlineQueue(10);
  const expired: string[] = [];
  queue.add(() => {
    expired.push('first');
    queue.add(() => expired.push('added by the first'));
  });
  for (let waited = 0; expired.length < 2 && waited < 200; waited++) await sleep(5);
  assert.deepEqual(expired, ['first', 'added by the first']);
});

test('with nothing left to wait for, no timer keeps the process alive', async () => {
  const queue = new DeadlineQueue(60_000);
  const waiter = (): void => assert.fail('settled before its time');
  queue.add(waiter);
  const before = process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  queue.delete(waiter);
  const after = process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  assert.equal(after, before - 1);
});

test('a wall clock stepped back (NTP, a restored VM) does not hold deliveries past their time', async (context) => {
  const queue = new DeadlineQueue(20);
  const expired: string[] = [];
  const waiter = () => expired.push('waiter');
  queue.add(waiter);
  const wallClock = Date.now;
  Date.now = () => wallClock() - 3_600_000;
  context.after(() => {
    Date.now = wallClock;
    queue.delete(waiter);
  });
  for (let waited = 0; expired.length < 1 && waited < 100; waited++) await sleep(5);
  assert.deepEqual(expired, ['waiter'], 'expired after its 20 ms, not an hour later');
});
