import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandDirStructure } from '../../src/storage/dir-structure.ts';

describe('--dir-structure', () => {
  const createdAt = Date.UTC(2026, 0, 5, 7, 9);
  it('expands date placeholders in UTC without zero padding, as rustus', () => {
    assert.equal(expandDirStructure('{year}/{month}/{day}/{hour}/{minute}', createdAt, {}), '2026/1/5/7/9');
    assert.equal(expandDirStructure('', createdAt, {}), '');
  });
  it('expands environment placeholders and leaves unknown ones as written', () => {
    assert.equal(
      expandDirStructure('{env[HOSTNAME]}/{year}/{what}', createdAt, { HOSTNAME: 'node-1' }),
      'node-1/2026/{what}',
    );
  });
  it('never leaves the data folder', () => {
    assert.throws(() => expandDirStructure('{env[EVIL]}', createdAt, { EVIL: '../../etc' }), /unsafe/);
    assert.equal(expandDirStructure('/{year}//x/', createdAt, {}), '2026/x');
  });
});
