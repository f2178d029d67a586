import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CronSchedule, CronSyntaxError } from '../../../src/hooks/modules/cron.ts';

const at = (text: string): Date => new Date(text);

test('five fields fire at second 0 of matching minutes', () => {
  const nightly = new CronSchedule('30 2 * * *');
  assert.equal(nightly.matches(at('2026-11-25T02:30:00')), true);
  assert.equal(nightly.matches(at('2026-11-25T02:30:01')), false);
  assert.equal(nightly.matches(at('2026-11-25T03:30:00')), false);
});

test('six fields start with seconds; steps, ranges and lists', () => {
  const every = new CronSchedule('* * * * * *');
  assert.equal(every.matches(at('2026-11-25T10:11:12')), true);
  const steps = new CronSchedule('*/15 0-10/5 9,17 * * 1-5');
  assert.equal(steps.matches(at('2026-11-25T09:05:30')), true); // a Wednesday
  assert.equal(steps.matches(at('2026-11-25T09:06:30')), false);
  assert.equal(steps.matches(at('2026-11-29T09:05:30')), false); // a Sunday
});

test('day of week 7 is Sunday; both day fields restricted means either', () => {
  assert.equal(new CronSchedule('0 0 * * 7').matches(at('2026-11-29T00:00:00')), true);
  const either = new CronSchedule('0 0 1 * 0');
  assert.equal(either.matches(at('2026-12-01T00:00:00')), true);
  assert.equal(either.matches(at('2026-11-29T00:00:00')), true);
  assert.equal(either.matches(at('2026-11-30T00:00:00')), false);
});

test('bad expressions say what is wrong', () => {
  assert.throws(() => new CronSchedule('* * *'), /expected 5 or 6 fields/);
  assert.throws(() => new CronSchedule('61 * * * *'), /minute: 61 is outside 0-59/);
  assert.throws(() => new CronSchedule('5-1 * * * *'), /reversed/);
  assert.throws(() => new CronSchedule('x * * * *'), CronSyntaxError);
});
