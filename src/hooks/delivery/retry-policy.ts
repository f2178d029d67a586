/**
 * When the outbox tries an event again. HTTP targets follow a schedule of delays per event (Standard Webhooks,
 * Svix): attempt n+1 waits the n-th delay, and an event still failing after the last one is dead-lettered.
 * Brokers follow a capped exponential backoff with no end: a broker outage is no fault of the event, and the
 * outbox promises to deliver it once the broker is back.
 */
export type RetryPolicy =
  | { readonly kind: 'schedule'; readonly delaysMs: readonly number[] }
  | { readonly kind: 'backoff'; readonly initialMs: number; readonly maxMs: number };

/** `5s,30s,2m,10m,1h`, then dead: about 1 h 13 min of trying. */
export const defaultRetrySchedule: readonly number[] = Object.freeze([
  5_000, 30_000, 120_000, 600_000, 3_600_000,
]);

const unitMs: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses one duration: a number with a unit (`100ms`, `1.5s`, `2m`, `1h`, `5d`); a bare number is seconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (match === null) throw new RangeError(`"${text}" is not a duration (e.g. 100ms, 5s, 2m, 1h, 5d)`);
  const value = Number(match[1]) * (unitMs[(match[2] ?? 's').toLowerCase()] ?? 1000);
  return Math.round(value);
}

/** Parses a comma-separated schedule (`100ms,1s,2m`); an empty text means "no retry: dead after one attempt". */
export function parseRetrySchedule(text: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map(parseDuration);
}

/**
 * A schedule as a config file gives it: a list of durations (`[100ms, 1s]`; a bare number is seconds) or a
 * comma-separated string (`100ms,1s,2m`). `[]` and `''` mean no retry (dead after one failed attempt).
 */
export function retryScheduleOf(value: unknown): number[] {
  if (typeof value === 'string') return parseRetrySchedule(value);
  if (!Array.isArray(value)) {
    throw new RangeError('must be a list of durations or a comma-separated string (e.g. 100ms,1s,2m)');
  }
  return value.map((item) => {
    if (typeof item === 'number' && Number.isFinite(item) && item >= 0) return Math.round(item * 1000);
    if (typeof item === 'string') return parseDuration(item);
    throw new RangeError(`${JSON.stringify(item)} is not a duration (e.g. 100ms, 5s, 2m, 1h, 5d)`);
  });
}

/** Writes a delay as a user would type it (`5s`, `2m`, `150ms`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Spreads a delay over ±20 %: instances (and events) that failed together do not all come back at the same
 * moment. `random` is injectable for tests.
 */
export function withJitter(delayMs: number, random: () => number = Math.random): number {
  return Math.max(0, Math.round(delayMs * (0.8 + random() * 0.4)));
}

/**
 * The delay before the next attempt after `attempts` failed ones (1 after the first failure), or undefined
 * when the schedule is used up (the event is dead). Jitter included.
 */
export function nextDelay(
  policy: RetryPolicy,
  attempts: number,
  random: () => number = Math.random,
): number | undefined {
  if (policy.kind === 'schedule') {
    const delay = policy.delaysMs[attempts - 1];
    return delay === undefined ? undefined : withJitter(delay, random);
  }
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30));
  return withJitter(base, random);
}

/** The delays a target shows to operators (the backoff's first few, for brokers). */
export function scheduleOf(policy: RetryPolicy): readonly number[] {
  if (policy.kind === 'schedule') return policy.delaysMs;
  const delays: number[] = [];
  for (let delay = policy.initialMs; delays.length < 20; delay *= 2) {
    delays.push(Math.min(delay, policy.maxMs));
    if (delay >= policy.maxMs) break;
  }
  return delays;
}

/** The longest `Retry-After` honoured: a receiver cannot park an event for more than a day. */
const retryAfterCapMs = 86_400_000;

/**
 * Unix ms before which a target asked not to be called again: `Retry-After` in seconds or as an HTTP date
 * (RFC 9110 §10.2.3). Undefined when the header is absent or unreadable.
 */
export function retryAfterUntil(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return now + Math.min(Number(text) * 1000, retryAfterCapMs);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(date, now), now + retryAfterCapMs);
}
