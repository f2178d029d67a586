/**
 * rustus builds payloads with serde_json without `preserve_order`, so every object reaches receivers with its
 * keys sorted by their UTF-8 bytes. Wharf writes the same order: the literal objects in the format builders
 * list their fields sorted, and these helpers sort the user-controlled maps (headers, metadata).
 */

/** Orders strings by Unicode code point, which is the order of their UTF-8 bytes. */
export function compareCodePoints(left: string, right: string): number {
  const leftPoints = Array.from(left);
  const rightPoints = Array.from(right);
  const common = Math.min(leftPoints.length, rightPoints.length);
  for (let index = 0; index < common; index += 1) {
    const difference = leftPoints[index]!.codePointAt(0)! - rightPoints[index]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return leftPoints.length - rightPoints.length;
}

export function sortedEntries<Value>(record: Readonly<Record<string, Value>>): [string, Value][] {
  return Object.entries(record).sort(([left], [right]) => compareCodePoints(left, right));
}

/** A copy with sorted keys, as a prototype-less object so a key like `__proto__` stays a plain key. */
export function sortedRecord<Value, Result>(
  record: Readonly<Record<string, Value>>,
  mapValue: (value: Value) => Result | undefined,
): Record<string, Result> {
  const result: Record<string, Result> = Object.create(null);
  for (const [key, value] of sortedEntries(record)) {
    const mapped = mapValue(value);
    if (mapped !== undefined) result[key] = mapped;
  }
  return result;
}
