import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.ts';

test('the outbox lives under the data dir, one journal folder per worker slot', () => {
  assert.equal(
    buildConfig({}, { WHARF_DATA_DIR: '/srv/up' }).hooks.outboxDirectory,
    path.join('/srv/up', '.wharf-outbox'),
  );
  assert.equal(
    buildConfig({}, { WHARF_HOOKS_OUTBOX_DIR: '/var/outbox', WHARF_WORKER_SLOT: '2' }).hooks.outboxDirectory,
    path.join('/var/outbox', 'worker-2'),
  );
  const config = buildConfig({}, {});
  assert.equal(config.hooks.outboxLimit, 100_000);
  assert.equal(config.hooks.outboxMaxBackoffMs, 30_000);
  assert.equal(config.hooks.httpOutbox, true);
  assert.deepEqual(config.hooks.retrySchedule, [5_000, 30_000, 120_000, 600_000, 3_600_000]);
  assert.equal(config.hooks.disableAfterMs, 5 * 86_400_000);
  assert.equal(buildConfig({ hooksHttpOutbox: false }, {}).hooks.httpOutbox, false);
});

test('--hooks-retry-schedule and --hooks-disable-after read durations with units', () => {
  const config = buildConfig(
    {},
    { WHARF_HOOKS_RETRY_SCHEDULE: '100ms, 1.5s,2m', WHARF_HOOKS_DISABLE_AFTER: '36h' },
  );
  assert.deepEqual(config.hooks.retrySchedule, [100, 1500, 120_000]);
  assert.equal(config.hooks.disableAfterMs, 36 * 3_600_000);
  assert.deepEqual(buildConfig({ hooksRetrySchedule: '' }, {}).hooks.retrySchedule, []);
  assert.throws(
    () => buildConfig({ hooksRetrySchedule: '5s,soon' }, {}),
    /--hooks-retry-schedule: "soon" is not a duration/,
  );
  assert.throws(
    () => buildConfig({ hooksDisableAfter: '0s' }, {}),
    /--hooks-disable-after: must be longer than 0/,
  );
});
