import path from 'node:path';
import type { HooksConfig } from '../hooks/engine-config.ts';
import type { OptionSpec, RawOptions } from './option-table.ts';

const group = 'Hook outbox (at-least-once delivery)';

/** The durable outbox that broker hooks (AMQP, Kafka) and HTTP post hooks are delivered through. */
export const outboxOptions: readonly OptionSpec[] = [
  {
    key: 'hooksOutboxDir',
    flag: 'hooks-outbox-dir',
    env: ['WHARF_HOOKS_OUTBOX_DIR'],
    kind: 'string',
    help: 'Folder of the outbox journal: broker events are kept there until the broker confirmed them (written within 5 ms, unless confirmed sooner), so an outage or a restart loses none; a crash can lose the last few milliseconds. Default: <data-dir>/.wharf-outbox. Unused with redis-info-storage or db-info-storage: the outbox then lives in that shared store.',
    group,
  },
  {
    key: 'hooksOutboxLimit',
    flag: 'hooks-outbox-limit',
    env: ['WHARF_HOOKS_OUTBOX_LIMIT'],
    kind: 'integer',
    min: 1,
    default: '100000',
    help: 'Undelivered broker events kept at most (per process; with a shared info store, also in total over all instances). When full, the oldest are kept and new ones are dropped, counted and logged.',
    group,
  },
  {
    key: 'hooksOutboxMaxBackoff',
    flag: 'hooks-outbox-max-backoff',
    env: ['WHARF_HOOKS_OUTBOX_MAX_BACKOFF'],
    kind: 'integer',
    min: 1,
    default: '30',
    help: 'Longest wait, in seconds, between two attempts while a broker is down (retries start at 0.2 s and double, with jitter). Also bounds how long after a broker comes back the events start flowing again.',
    group,
  },
  {
    key: 'hooksHttpOutbox',
    flag: 'hooks-http-outbox',
    env: ['WHARF_HOOKS_HTTP_OUTBOX'],
    kind: 'boolean',
    default: 'true',
    help: 'Deliver non-blocking (post-*) HTTP hooks through the outbox: journaled, retried per --hooks-retry-schedule until the endpoint answers 2xx (a 4xx other than 408/425/429 dead-letters the event at once; 410 Gone disables the target), in order per upload, resumed after a restart. false: one attempt, as in rustus.',
    group,
  },
];

/**
 * The outbox settings. With `--workers`, each worker process has its own journal (`worker-<slot>`): two processes
 * must never append to one file, and a worker started to replace a dead one takes over its slot and its journal.
 */
export function outboxConfig(
  options: RawOptions,
  env: Readonly<Record<string, string | undefined>>,
): Pick<HooksConfig, 'outboxDirectory' | 'outboxLimit' | 'outboxMaxBackoffMs' | 'httpOutbox'> {
  const directory = options.hooksOutboxDir;
  const dataDir = typeof options.dataDir === 'string' ? options.dataDir : './data';
  const base =
    typeof directory === 'string' && directory !== '' ? directory : path.join(dataDir, '.wharf-outbox');
  const slot = env.WHARF_WORKER_SLOT;
  return {
    outboxDirectory: slot !== undefined && /^\d+$/.test(slot) ? path.join(base, `worker-${slot}`) : base,
    outboxLimit: Number(options.hooksOutboxLimit),
    outboxMaxBackoffMs: Number(options.hooksOutboxMaxBackoff) * 1000,
    httpOutbox: options.hooksHttpOutbox !== false,
  };
}
