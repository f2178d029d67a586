import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OldestFirst } from '../../src/oldest-first.ts';

// xorshift32: the same sequence on every run.
function randomFrom(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

test('evicts the least recently inserted key, a deleted and re-inserted key counting as new', () => {
  const map = new Map<string, number>([
    ['a', 1],
    ['b', 2],
    ['c', 3],
  ]);
  const oldest = new OldestFirst(map);
  assert.deepEqual(oldest.evict(), ['a', 1]);
  map.delete('b');
  map.set('b', 20);
  assert.deepEqual(oldest.evict(), ['c', 3]);
  assert.deepEqual(oldest.evict(), ['b', 20]);
  assert.equal(map.size, 0);
  assert.equal(oldest.evict(), undefined);
});

test('starts over once its iterator came to the end of the Map, and after clear()', () => {
  const map = new Map<string, number>([['a', 1]]);
  const oldest = new OldestFirst(map);
  assert.deepEqual(oldest.evict(), ['a', 1]);
  // The iterator is now at the end; an evict of the empty Map spends it.
  assert.equal(oldest.evict(), undefined);
  map.set('b', 2);
  map.set('c', 3);
  assert.deepEqual(oldest.evict(), ['b', 2]);
  map.clear();
  map.set('d', 4);
  map.set('e', 5);
  assert.deepEqual(oldest.evict(), ['d', 4]);
  assert.deepEqual([...map.keys()], ['e']);
});

test('over many operations it evicts exactly what a model LRU evicts', () => {
  const limit = 40;
  const map = new Map<string, number>();
  const oldest = new OldestFirst(map);
  // The model: keys least recently used first, in an array.
  const model: { key: string; value: number }[] = [];
  const random = randomFrom(11);
  let evicted = 0;
  for (let step = 0; step < 30_000; step++) {
    const roll = random(100);
    if (roll < 2) {
      map.clear();
      model.length = 0;
      continue;
    }
    const key = `k${random(step < 200 ? 50 : 300)}`;
    const at = model.findIndex((entry) => entry.key === key);
    if (roll < 12) {
      // A plain delete (the key's file was removed, say), which leaves a hole the iterator steps over.
      map.delete(key);
      if (at !== -1) model.splice(at, 1);
      continue;
    }
    // Used: deleted and re-inserted at the end, then the oldest beyond the limit goes.
    map.delete(key);
    map.set(key, step);
    if (at !== -1) model.splice(at, 1);
    model.push({ key, value: step });
    if (map.size > limit) {
      const expected = model.shift();
      assert.deepEqual(oldest.evict(), expected === undefined ? undefined : [expected.key, expected.value]);
      evicted += 1;
    }
    assert.equal(map.size, model.length);
  }
  assert.deepEqual(
    [...map.entries()],
    model.map((entry) => [entry.key, entry.value]),
  );
  // Positive control: the run did evict, many times.
  assert.ok(evicted > 5_000, `evicted ${evicted}`);
});
