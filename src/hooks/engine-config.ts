import { defaultDeadLetterLimit } from './delivery/dead-letters.ts';
import { defaultRetrySchedule } from './delivery/retry-policy.ts';
import { HookConfigError } from './errors.ts';
import type { UploadEventName } from './events.ts';
import { isCloudEventSource } from './formats/cloudevents.ts';
import { type CloudEventsSettings, type HookFormatName, isHookFormatName } from './formats/index.ts';
import type { AmqpHooksConfig } from './transports/amqp.ts';
import type { KafkaHooksConfig } from './transports/kafka.ts';
import { WebhookSecretError, webhookKeys } from './transports/webhook-signature.ts';

/** The hooks configuration, as `config/` resolves it from flags and environment. */
export interface HooksConfig {
  /** `--hooks`: events not in this set fire nothing. */
  readonly enabledEvents: ReadonlySet<UploadEventName>;
  /** `--hooks-format`. */
  readonly format: HookFormatName;
  /** `--hooks-file`: one executable for every event (a bare name is looked up in PATH). */
  readonly hooksFile: string | undefined;
  /** `--hooks-dir`: a directory holding one executable per hook name. */
  readonly hooksDir: string | undefined;
  /** `--hooks-http-urls`, called in this order for blocking events. */
  readonly httpUrls: readonly string[];
  /** `--hooks-http-proxy-headers`: client headers copied to HTTP hook requests. */
  readonly httpProxyHeaders: readonly string[];
  /** `--http-hook-timeout` (seconds on the command line, default 2 s). */
  readonly httpTimeoutMs: number;
  /** `--hooks-executable-timeout` (seconds on the command line, default 30 s), for file and dir hooks. */
  readonly executableTimeoutMs: number;
  /** Non-blocking deliveries running at once. */
  readonly postConcurrency: number;
  /** Non-blocking deliveries waiting to run; more are dropped, logged and recorded as `skipped`. */
  readonly postQueueLimit: number;
  /** `--hooks-amqp-*`: publish every event to RabbitMQ (never blocking). */
  readonly amqp?: AmqpHooksConfig;
  /** `--hooks-kafka-*`: send every event to Kafka (never blocking). */
  readonly kafka?: KafkaHooksConfig;
  /** Folder of the durable outbox journal for broker deliveries; unset keeps the outbox in memory. */
  readonly outboxDirectory?: string;
  /** Undelivered broker deliveries kept at most (default 100000). */
  readonly outboxLimit?: number;
  /** Longest wait between two attempts while a broker is down (default 30 s). */
  readonly outboxMaxBackoffMs?: number;
  /** Deliver non-blocking HTTP hooks through the outbox (default true, when it has a journal or a store). */
  readonly httpOutbox?: boolean;
  /** `--hooks-http-secret`: Standard Webhooks `whsec_` secrets (newest first) signing every `httpUrls` request. */
  readonly httpSecrets?: readonly string[];
  /** `--hooks-cloudevents-*`: how `format: cloudevents` events are sent (default structured). */
  readonly cloudEvents?: CloudEventsSettings;
  /** Delays (ms) before the 2nd, 3rd, … attempt at an HTTP target; then dead (default 5s,30s,2m,10m,1h). */
  readonly retrySchedule?: readonly number[];
  /** A target failing every attempt this long is disabled (default 5 days). */
  readonly disableAfterMs?: number;
  /** Dead letters kept at most; beyond it the oldest are dropped, counted and logged (default 10000). */
  readonly deadLetterLimit?: number;
  /**
   * `--hooks-stop-code` (tusd 1's flag): a file or dir `post-receive` hook exiting with this code stops the upload,
   * as a tusd 2 `StopUpload` answer does. Absent or 0: no exit code stops an upload.
   */
  readonly stopCode?: number;
}

function positiveNumber(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new HookConfigError(`${name} must be a positive number`);
  return value;
}

function integerAtLeast(value: number, minimum: number, name: string): number {
  if (!Number.isInteger(value) || value < minimum) {
    throw new HookConfigError(`${name} must be an integer >= ${minimum}`);
  }
  return value;
}

function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new HookConfigError(`hook URL "${value}" is not an absolute URL`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HookConfigError(`hook URL "${value}" must use http or https`);
  }
  return value;
}

/**
 * Headers that frame a message or belong to one connection (RFC 9110 §7.6.1, RFC 9112 §6): copied from the
 * client's request they would describe a body or a connection other than the hook request's own.
 */
const framingHeaders = new Set([
  'connection',
  'content-length',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function proxyHeaders(names: readonly string[]): readonly string[] {
  const framing = names.filter((name) => framingHeaders.has(name.toLowerCase()));
  if (framing.length > 0) {
    throw new HookConfigError(
      `--hooks-http-proxy-headers: ${framing.join(', ')} cannot be copied onto a hook request: they describe the ` +
        "client's own connection or body, not the hook request Wharf sends",
    );
  }
  return Object.freeze([...names]);
}

/** Signing secrets, checked (the error names a position, never a secret). */
function httpSecrets(secrets: readonly string[]): readonly string[] {
  try {
    webhookKeys(secrets, 'httpSecrets');
  } catch (cause) {
    if (cause instanceof WebhookSecretError) throw new HookConfigError(cause.message);
    throw cause;
  }
  return Object.freeze([...secrets]);
}

function cloudEventsSettings(settings: CloudEventsSettings): CloudEventsSettings {
  if (settings.mode !== 'structured' && settings.mode !== 'binary') {
    throw new HookConfigError(`unknown CloudEvents mode "${String(settings.mode)}"`);
  }
  if (settings.source !== undefined && !isCloudEventSource(settings.source)) {
    throw new HookConfigError('the CloudEvents source must be an absolute URI or an absolute path');
  }
  return Object.freeze({ ...settings });
}

/** The configuration checked (a bad value throws a HookConfigError naming it) and frozen. */
export function frozenConfig(config: HooksConfig): HooksConfig {
  if (!isHookFormatName(config.format)) throw new HookConfigError(`unknown hooks format "${config.format}"`);
  return Object.freeze({
    enabledEvents: new Set(config.enabledEvents),
    format: config.format,
    hooksFile: config.hooksFile === '' ? undefined : config.hooksFile,
    hooksDir: config.hooksDir === '' ? undefined : config.hooksDir,
    httpUrls: Object.freeze(config.httpUrls.map(httpUrl)),
    httpProxyHeaders: proxyHeaders(config.httpProxyHeaders),
    httpTimeoutMs: positiveNumber(config.httpTimeoutMs, 'httpTimeoutMs'),
    executableTimeoutMs: positiveNumber(config.executableTimeoutMs, 'executableTimeoutMs'),
    postConcurrency: integerAtLeast(config.postConcurrency, 1, 'postConcurrency'),
    postQueueLimit: integerAtLeast(config.postQueueLimit, 0, 'postQueueLimit'),
    ...(config.amqp === undefined ? {} : { amqp: Object.freeze({ ...config.amqp }) }),
    ...(config.kafka === undefined ? {} : { kafka: Object.freeze({ ...config.kafka }) }),
    ...(config.outboxDirectory === undefined ? {} : { outboxDirectory: config.outboxDirectory }),
    outboxLimit: integerAtLeast(config.outboxLimit ?? 100_000, 1, 'outboxLimit'),
    outboxMaxBackoffMs: positiveNumber(config.outboxMaxBackoffMs ?? 30_000, 'outboxMaxBackoffMs'),
    httpOutbox: config.httpOutbox !== false,
    ...(config.httpSecrets !== undefined && config.httpSecrets.length > 0
      ? { httpSecrets: httpSecrets(config.httpSecrets) }
      : {}),
    ...(config.cloudEvents !== undefined ? { cloudEvents: cloudEventsSettings(config.cloudEvents) } : {}),
    retrySchedule: Object.freeze(
      (config.retrySchedule ?? defaultRetrySchedule).map((delay) =>
        integerAtLeast(delay, 0, 'retrySchedule'),
      ),
    ),
    disableAfterMs: positiveNumber(config.disableAfterMs ?? 5 * 86_400_000, 'disableAfterMs'),
    deadLetterLimit: integerAtLeast(config.deadLetterLimit ?? defaultDeadLetterLimit, 1, 'deadLetterLimit'),
    ...(config.stopCode !== undefined && config.stopCode !== 0
      ? { stopCode: integerAtLeast(config.stopCode, 1, 'stopCode') }
      : {}),
  });
}
