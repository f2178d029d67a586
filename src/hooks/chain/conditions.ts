import type { UploadEvent } from '../events.ts';

/**
 * A binding's `when`: every key must match (AND). Keys: `event`, `metadata.<key>`, `method`,
 * `headers.<name>`, `size`, `endpoint`, and on post events `status` (the status code of the answer the client
 * got, e.g. `4*`). A value is a glob (`image/*`, `*` any text), a list of globs (any may match), or for `size` a
 * comparison (`> 1000`, `<= 1048576`, `= 0`).
 */
export type WhenCondition = Readonly<Record<string, string | readonly string[]>>;

export const conditionKeyPattern =
  /^(event|method|size|endpoint|status|metadata\.[^\s,]+|headers\.[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/;
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
    return `unknown condition "${key}" (expected event, method, size, endpoint, status, metadata.<key> or headers.<name>)`;
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

/** Whether a condition tests the answer's status: known only once the client got its answer. */
export function testsStatus(when: WhenCondition | undefined): boolean {
  return when?.status !== undefined;
}

/**
 * Whether the event satisfies every part of the condition. `status` is the status code of the answer the client
 * got (post events); a `status` condition never matches without one (no answer was sent).
 */
export function matchesWhen(
  when: WhenCondition | undefined,
  event: UploadEvent,
  endpoint: string,
  status?: number,
): boolean {
  if (when === undefined) return true;
  for (const [key, expected] of Object.entries(when)) {
    const patterns = typeof expected === 'string' ? [expected] : expected;
    if (key === 'status') {
      if (status === undefined || !patterns.some((pattern) => globMatches(pattern, String(status))))
        return false;
      continue;
    }
    if (key === 'size') {
      if (!patterns.some((pattern) => compare(pattern, event.upload.length))) return false;
      continue;
    }
    const value = actual(key, event, endpoint);
    if (value === null || !patterns.some((pattern) => globMatches(pattern, value))) return false;
  }
  return true;
}
