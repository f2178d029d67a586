import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newEventId } from '../../../src/hooks/event-id.ts';

test('event ids are random version 4 UUIDs, as crypto.randomUUID gives, and never repeat across draws of random bytes', () => {
  const ids = new Set<string>();
  // 256 ids per draw of random bytes: these span several draws.
  for (let index = 0; index < 5000; index++) {
    const id = newEventId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    ids.add(id);
  }
  assert.equal(ids.size, 5000);
  // Every hex digit shows up in every free position: the bytes are random, not a counter or a constant.
  const seen = Array.from({ length: 36 }, () => new Set<string>());
  for (const id of ids) for (let at = 0; at < 36; at++) seen[at]?.add(id[at] as string);
  for (let at = 0; at < 36; at++) {
    const expected = [8, 13, 18, 23].includes(at) ? 1 : at === 14 ? 1 : at === 19 ? 4 : 16;
    assert.equal(seen[at]?.size, expected, `position ${at}`);
  }
});
