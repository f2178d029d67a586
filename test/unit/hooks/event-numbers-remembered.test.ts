import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UploadSequencer } from '../../../src/hooks/delivery/event-sequence.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

test('a lone process numbers each upload from 1 and forgets the least recently numbered upload beyond its limit', () => {
  const sequencer = new UploadSequencer(undefined, quiet, 3);
  const numbers = ['a', 'b', 'c', 'a', 'd'].map((upload) => sequencer.numberNow(upload));
  assert.deepEqual(numbers, [1, 1, 1, 2, 1]);
  // d made four: b, numbered least recently (a was numbered again after it), is forgotten and starts over.
  assert.equal(sequencer.numberNow('b'), 1);
  // That forgot c; a and d are remembered.
  assert.equal(sequencer.numberNow('a'), 3);
  assert.equal(sequencer.numberNow('d'), 2);
  assert.equal(sequencer.numberNow('c'), 1);
});

test('the uploads forgotten over many numberings are always the least recently numbered ones', () => {
  const remembered = 50;
  const sequencer = new UploadSequencer(undefined, quiet, remembered);
  // The model: counts in an array, least recently numbered first.
  const model: { upload: string; count: number }[] = [];
  let seed = 7;
  // xorshift32: the same sequence on every run.
  const random = (below: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % below;
  };
  let forgotten = 0;
  for (let step = 0; step < 20_000; step++) {
    // New uploads and uploads numbered again, some of them long ago (forgotten by now, some of them).
    const upload = `upload-${random(step < 100 ? 60 : 400)}`;
    const at = model.findIndex((entry) => entry.upload === upload);
    const count = at === -1 ? 1 : (model[at]?.count ?? 0) + 1;
    if (at !== -1) model.splice(at, 1);
    model.push({ upload, count });
    if (model.length > remembered) {
      model.shift();
      forgotten += 1;
    }
    assert.equal(sequencer.numberNow(upload), count, `step ${step}, ${upload}`);
  }
  assert.ok(forgotten > 1000, `the limit was reached many times (${forgotten})`);
});
