import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conditionProblem, matchesWhen } from '../../../src/hooks/chain/conditions.ts';
import type { UploadEvent } from '../../../src/hooks/events.ts';

const event: UploadEvent = {
  name: 'pre-create',
  upload: {
    id: 'u1',
    offset: 0,
    length: 2048,
    path: null,
    createdAt: 0,
    deferredSize: false,
    isPartial: false,
    isFinal: false,
    parts: null,
    storage: 'file_storage',
    metadata: { filetype: 'image/png', owner: 'ana' },
  },
  request: { uri: '/files/', method: 'POST', remoteAddr: null, headers: { 'x-tenant': ['acme'] } },
};

test('every key must match; globs, lists and size comparisons', () => {
  assert.equal(matchesWhen(undefined, event, '/files'), true);
  assert.equal(matchesWhen({ 'metadata.filetype': 'image/*' }, event, '/files'), true);
  assert.equal(matchesWhen({ 'metadata.filetype': 'video/*' }, event, '/files'), false);
  assert.equal(matchesWhen({ 'metadata.missing': '*' }, event, '/files'), false);
  assert.equal(
    matchesWhen({ event: ['pre-*'], method: 'POST', 'headers.X-Tenant': 'acme' }, event, '/files'),
    true,
  );
  assert.equal(matchesWhen({ size: '> 1024', endpoint: '/files' }, event, '/files'), true);
  assert.equal(matchesWhen({ size: '<= 1024' }, event, '/files'), false);
  assert.equal(matchesWhen({ 'metadata.filetype': 'image/*', size: '< 100' }, event, '/files'), false);
});

test('unknown keys and non-string values are reported', () => {
  assert.match(conditionProblem('colour', 'red') ?? '', /unknown condition "colour"/);
  assert.match(conditionProblem('metadata.x', 3) ?? '', /must be a string/);
  assert.equal(conditionProblem('metadata.filetype', ['image/*', 'video/*']), undefined);
});
