import { formatDuration, parseDuration, parseRetrySchedule } from '../hooks/delivery/retry-policy.ts';
import type { HooksConfig } from '../hooks/engine-config.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

const group = 'Hook outbox (at-least-once delivery)';

/** Delivery control: how HTTP targets are retried, when an event is dead and when a target is disabled. */
export const deliveryOptions: readonly OptionSpec[] = [
  {
    key: 'hooksRetrySchedule',
    flag: 'hooks-retry-schedule',
    env: ['WHARF_HOOKS_RETRY_SCHEDULE'],
    kind: 'string',
    default: '5s,30s,2m,10m,1h',
    help: 'Delays before the 2nd, 3rd, … attempt of a post hook at an HTTP target (units ms, s, m, h, d; each with ±20 % jitter; a Retry-After answer can only make a delay longer). An event still failing after the last one is dead-lettered: kept in the outbox store and listed until it is resent. Empty: dead after one failed attempt.',
    group,
  },
  {
    key: 'hooksDisableAfter',
    flag: 'hooks-disable-after',
    env: ['WHARF_HOOKS_DISABLE_AFTER'],
    kind: 'string',
    default: '5d',
    help: 'A target failing every attempt for this long (units ms, s, m, h, d) is disabled with a warning: its events wait, unsent, until it is enabled again. A target answering 410 Gone or `webhook-delivery: disable` is disabled at once.',
    group,
  },
  {
    key: 'hooksDeadLetterLimit',
    flag: 'hooks-dead-letter-limit',
    env: ['WHARF_HOOKS_DEAD_LETTER_LIMIT'],
    kind: 'integer',
    min: 1,
    default: '10000',
    help: 'Dead letters kept at most in the outbox store (the journal, Redis or PostgreSQL; with a shared store, in total over all instances). Beyond it the oldest are dropped, logged at warn and counted (wharf_hook_dead_letters_dropped_total).',
    group,
  },
];

function parsed<T>(flag: string, text: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (error) {
    throw new ConfigError(`--${flag}: ${(error as Error).message}`);
  }
}

export function deliveryConfig(
  options: RawOptions,
): Pick<HooksConfig, 'retrySchedule' | 'disableAfterMs' | 'deadLetterLimit'> {
  const schedule = options.hooksRetrySchedule;
  const disableAfter = options.hooksDisableAfter;
  const disableAfterMs = parsed(
    'hooks-disable-after',
    typeof disableAfter === 'string' ? disableAfter : '5d',
    parseDuration,
  );
  if (disableAfterMs <= 0) {
    throw new ConfigError(
      `--hooks-disable-after: must be longer than 0, got ${formatDuration(disableAfterMs)}`,
    );
  }
  return {
    retrySchedule: parsed(
      'hooks-retry-schedule',
      typeof schedule === 'string' ? schedule : '5s,30s,2m,10m,1h',
      parseRetrySchedule,
    ),
    disableAfterMs,
    deadLetterLimit: Number(options.hooksDeadLetterLimit ?? 10_000),
  };
}
