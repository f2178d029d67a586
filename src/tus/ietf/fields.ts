/**
 * The structured fields (RFC 8941) the draft uses, read as it asks: a value that is not of the field's type
 * makes the whole field count as absent.
 */

type HeaderValue = string | readonly string[] | undefined;

function single(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/** An sf-integer that is not negative (at most 15 digits, RFC 8941 3.3.1), or undefined. */
export function parseSfInteger(value: HeaderValue): number | undefined {
  const text = single(value)?.trim();
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** An sf-boolean (`?1` / `?0`, RFC 8941 3.3.6), or undefined. */
export function parseSfBoolean(value: HeaderValue): boolean | undefined {
  const text = single(value)?.trim();
  if (text === '?1') return true;
  if (text === '?0') return false;
  return undefined;
}

export function sfBoolean(value: boolean): string {
  return value ? '?1' : '?0';
}

/** An sf-dictionary of integers, in the order given (`max-size=100, max-age=60`). */
export function sfIntegerDictionary(entries: ReadonlyArray<readonly [string, number]>): string {
  return entries.map(([key, value]) => `${key}=${Math.max(0, Math.floor(value))}`).join(', ');
}
