/**
 * rustus builds payloads with serde_json without `preserve_order`, so every object reaches receivers with its
 * keys sorted by their UTF-8 bytes. Wharf writes the same order: the literal objects in the format builders
 * list their fields sorted, and these helpers sort the user-controlled maps (headers, metadata).
 */

/**
 * Orders strings by Unicode code point, which is the order of their UTF-8 bytes. UTF-16 code units give the same
 * order except where a surrogate (half of a code point above U+FFFF) meets a unit from U+E000 to U+FFFF: the
 * surrogate's code point is the larger. Compared unit by unit, without building arrays of code points (this
 * runs for every pair of header names of every hook payload).
 */
export function compareCodePoints(left: string, right: string): number {
  const common = Math.min(left.length, right.length);
  for (let index = 0; index < common; index += 1) {
    const leftUnit = left.charCodeAt(index);
    const rightUnit = right.charCodeAt(index);
    if (leftUnit === rightUnit) continue;
    const leftSurrogate = leftUnit >= 0xd800 && leftUnit <= 0xdfff;
    const rightSurrogate = rightUnit >= 0xd800 && rightUnit <= 0xdfff;
    if (leftSurrogate !== rightSurrogate) return leftSurrogate ? 1 : -1;
    return leftUnit - rightUnit;
  }
  return left.length - right.length;
}

export function sortedEntries<Value>(record: Readonly<Record<string, Value>>): [string, Value][] {
  return Object.entries(record).sort(([left], [right]) => compareCodePoints(left, right));
}

/**
 * Up to this many keys are sorted by insertion: request headers and metadata are a handful of keys, often
 * nearly in order already, and insertion sorting them costs a fraction of `Array.prototype.sort` with a
 * comparator (this ran for every hook payload). Larger maps (a client may send many headers) take the
 * O(n log n) sort.
 */
const insertionSortLimit = 24;

/** The record's own keys in code-point order. */
export function sortedKeys(record: Readonly<Record<string, unknown>>): string[] {
  const keys = Object.keys(record);
  if (keys.length > insertionSortLimit) return keys.sort(compareCodePoints);
  for (let index = 1; index < keys.length; index += 1) {
    const key = keys[index] as string;
    let at = index - 1;
    while (at >= 0 && compareCodePoints(keys[at] as string, key) > 0) {
      keys[at + 1] = keys[at] as string;
      at -= 1;
    }
    keys[at + 1] = key;
  }
  return keys;
}

/**
 * A copy with sorted keys, as a prototype-less object so a key like `__proto__` stays a plain key. Made as `{}`
 * whose prototype is then dropped: Object.create(null) gives an object in V8's dictionary mode, which
 * JSON.stringify serialises on its slow path (two of these per hook payload: headers and metadata).
 */
export function sortedRecord<Value, Result>(
  record: Readonly<Record<string, Value>>,
  mapValue: (value: Value) => Result | undefined,
): Record<string, Result> {
  const result: Record<string, Result> = {};
  Object.setPrototypeOf(result, null);
  for (const key of sortedKeys(record)) {
    const mapped = mapValue(record[key] as Value);
    if (mapped !== undefined) result[key] = mapped;
  }
  return result;
}
