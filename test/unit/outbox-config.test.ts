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
  assert.equal(config.hooks.httpOutbox, false);
});
