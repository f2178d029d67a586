import type { UploadEvent } from '../events.ts';

/**
 * A binding's `when`: every key must match (AND). Keys: `event`, `metadata.<key>`, `method`,
 * `headers.<name>`, `size`, `endpoint`. A value is a glob (`image/*`, `*` any text), a list of globs (any may
 * match), or for `size` a comparison (`> 1000`, `<= 1048576`, `= 0`).
 */
export type WhenCondition = Readonly<Record<string, string | readonly string[]>>;

export const conditionKeyPattern =
  /^(event|method|size|endpoint|metadata\.[^\s,]+|headers\.[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/;
const comparison = /^(<=|>=|<|>|=)\s*(\d+)$/;

function globMatches(pattern: string, text: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's').test(text);
}

function compare(expression: string, value: number | null): boolean {
  const match = comparison.exec(expression.trim());
  if (match === null) return value !== null && globMatches(expression, String(value));
  if (value === null) return false;
  const limit = Number(match[2]);
  switch (match[1]) {
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    default:
      return value === limit;
  }
}

/** Checks a condition's syntax; returns the reason it is wrong, or undefined. */
export function conditionProblem(key: string, value: unknown): string | undefined {
  if (!conditionKeyPattern.test(key)) {
    return `unknown condition "${key}" (expected event, method, size, endpoint, metadata.<key> or headers.<name>)`;
  }
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0 || values.some((item) => typeof item !== 'string')) {
    return `condition "${key}" must be a string or a list of strings`;
  }
  return undefined;
}

function actual(key: string, event: UploadEvent, endpoint: string): string | null {
  if (key === 'event') return event.name;
  if (key === 'method') return event.request.method;
  if (key === 'endpoint') return endpoint;
  if (key.startsWith('metadata.')) return event.upload.metadata[key.slice('metadata.'.length)] ?? null;
  if (key.startsWith('headers.'))
    return event.request.headers[key.slice('headers.'.length).toLowerCase()]?.[0] ?? null;
  return null;
}

/** Whether the event satisfies every part of the condition. */
export function matchesWhen(when: WhenCondition | undefined, event: UploadEvent, endpoint: string): boolean {
  if (when === undefined) return true;
  for (const [key, expected] of Object.entries(when)) {
    const patterns = typeof expected === 'string' ? [expected] : expected;
    if (key === 'size') {
      if (!patterns.some((pattern) => compare(pattern, event.upload.length))) return false;
      continue;
    }
    const value = actual(key, event, endpoint);
    if (value === null || !patterns.some((pattern) => globMatches(pattern, value))) return false;
  }
  return true;
}
