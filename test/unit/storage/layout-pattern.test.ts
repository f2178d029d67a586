import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandDirStructure, fixedDirPrefix, layoutPattern } from '../../../src/storage/dir-structure.ts';

describe('the locations the expiration sweep may take for upload data', () => {
  it('are what --dir-structure makes, then one safe name; nothing else under the root', () => {
    const template = 'uploads/{year}/{month}';
    const { pattern } = layoutPattern(template);
    const made = `${expandDirStructure(template, Date.UTC(2026, 10, 3), {})}/0b6f1c2e-id`;
    assert.equal(made, 'uploads/2026/11/0b6f1c2e-id');
    assert.equal(pattern.test(made), true);
    for (const other of [
      'uploads/2026/0b6f1c2e-id', // another depth
      'videos/2026/11/0b6f1c2e-id', // another endpoint's folder
      'uploads/2026/11/.wharf-records', // dot names
      'uploads/x/11/0b6f1c2e-id', // a date part that is not a number
      '.wharf-tails/uploads/2026/11/0b6f1c2e-id',
    ]) {
      assert.equal(pattern.test(other), false, other);
    }
    assert.equal(fixedDirPrefix(template), 'uploads');
  });

  it('with no --dir-structure, only names at the top level (other endpoints keep folders there)', () => {
    const { pattern } = layoutPattern('');
    assert.equal(pattern.test('0b6f1c2e-id'), true);
    assert.equal(pattern.test('videos/0b6f1c2e-id'), false);
    assert.equal(fixedDirPrefix(''), '');
    assert.equal(fixedDirPrefix('{env[HOST]}/x'), '');
  });
});
