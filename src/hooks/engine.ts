import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { HookConfigError } from './errors.ts';
import type { UploadEvent, UploadEventName } from './events.ts';
import { formatPayload, type HookFormatName, isHookFormatName } from './formats/index.ts';
import { Outbox } from './outbox.ts';
import { PostQueue } from './post-queue.ts';
import { RunLog, type RunRecord, type RunStatus } from './run-log.ts';
import { type AmqpHooksConfig, AmqpHookTransport } from './transports/amqp.ts';
import { DirHookTransport, FileHookTransport } from './transports/file.ts';
import { HttpHookTransport } from './transports/http.ts';
import { type KafkaHooksConfig, KafkaHookTransport } from './transports/kafka.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';

/** What the engine needs from a logger; a pino logger fits. */
export interface HookLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}

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
  /** Deliver non-blocking HTTP hooks through the outbox too (retried until the endpoint accepts them). */
  readonly httpOutbox?: boolean;
}

/**
 * An HTTP endpoint that answers 4xx (other than 408 Request Timeout and 429 Too Many Requests) has decided:
 * sending the same event again cannot change its mind, and retrying would hold up that endpoint's later events.
 */
function refusedForGood(result: DeliveryResult): boolean {
  return (
    result.kind === 'responded' &&
    result.httpStatus >= 400 &&
    result.httpStatus < 500 &&
    result.httpStatus !== 408 &&
    result.httpStatus !== 429
  );
}

/** The decision of the blocking hooks on one event. */
export type BlockingOutcome =
  | { kind: 'continue' }
  | { kind: 'reject'; status: number; body: string; headers: Record<string, string> };

export interface HookEngineOptions {
  /** Run records kept in memory (default 1000). */
  readonly runLogCapacity?: number;
  /** The environment hook executables inherit before Wharf's additions (default: Wharf's own). */
  readonly executableEnv?: NodeJS.ProcessEnv;
}

const plainText = 'text/plain; charset=utf-8';
const skippedAfterFailure = 'not run: an earlier blocking hook failed';

function reject(status: number, body: string, contentType: string = plainText): BlockingOutcome {
  return { kind: 'reject', status, body, headers: { 'Content-Type': contentType } };
}

/**
 * What the client sees when a blocking hook fails: the one place hook results become HTTP statuses.
 * - file/dir hook exits non-zero: 400 with its stderr (trimmed), or a message with the exit code;
 * - file/dir hook missing or not executable: 400 naming the hook (rustus's dir-hook behaviour);
 * - file/dir hook cannot be started otherwise (e.g. payload too long for argv): 500;
 * - HTTP hook answers non-2xx: its status, body and Content-Type (a final 1xx/3xx becomes 502);
 * - HTTP hook unreachable: 502; any hook timing out: 504; the engine closing: 503.
 */
export function rejectionFor(
  hook: string,
  result: Exclude<DeliveryResult, { kind: 'delivered' }>,
): BlockingOutcome {
  switch (result.kind) {
    case 'exited': {
      const reason = result.stderr.trim();
      if (reason !== '') return reject(400, reason);
      if (result.exitCode !== null)
        return reject(400, `Hook "${hook}" failed with exit code ${result.exitCode}`);
      return reject(400, `Hook "${hook}" was killed by signal ${result.signal ?? 'unknown'}`);
    }
    case 'not_runnable':
      return reject(400, `Hook "${hook}" failed: its executable was not found or is not executable`);
    case 'spawn_failed':
      return reject(500, `Hook "${hook}" could not be started`);
    case 'responded':
      if (result.httpStatus >= 400 && result.httpStatus <= 599) {
        return reject(result.httpStatus, result.body, result.contentType ?? plainText);
      }
      return reject(502, `Hook "${hook}" answered with unexpected status ${result.httpStatus}`);
    case 'unreachable':
      return reject(502, `Hook "${hook}" failed: the hook endpoint could not be reached`);
    case 'timed_out':
      return reject(504, `Hook "${hook}" did not answer within ${result.timeoutMs} ms`);
    case 'aborted':
      return reject(503, 'Hooks are shutting down; retry later');
  }
}

function runStatusOf(result: DeliveryResult): RunStatus {
  if (result.kind === 'delivered') return 'completed';
  if (result.kind === 'timed_out') return 'timed_out';
  return 'failed';
}

function excerpt(text: string, limit = 200): string {
  const trimmed = text.trim();
  return trimmed.length <= limit ? trimmed : `${trimmed.slice(0, limit)}…`;
}

function errorOf(result: DeliveryResult): string | undefined {
  switch (result.kind) {
    case 'delivered':
      return undefined;
    case 'exited': {
      const how =
        result.exitCode !== null
          ? `exited with code ${result.exitCode}`
          : `killed by signal ${result.signal}`;
      const stderr = excerpt(result.stderr);
      return stderr === '' ? how : `${how}: ${stderr}`;
    }
    case 'not_runnable':
    case 'spawn_failed':
    case 'unreachable':
      return result.detail;
    case 'responded':
      return `HTTP ${result.httpStatus}`;
    case 'timed_out':
      return `timed out after ${result.timeoutMs} ms`;
    case 'aborted':
      return 'aborted: the hooks engine closed';
  }
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

function frozenConfig(config: HooksConfig): HooksConfig {
  if (!isHookFormatName(config.format)) throw new HookConfigError(`unknown hooks format "${config.format}"`);
  return Object.freeze({
    enabledEvents: new Set(config.enabledEvents),
    format: config.format,
    hooksFile: config.hooksFile === '' ? undefined : config.hooksFile,
    hooksDir: config.hooksDir === '' ? undefined : config.hooksDir,
    httpUrls: Object.freeze(config.httpUrls.map(httpUrl)),
    httpProxyHeaders: Object.freeze([...config.httpProxyHeaders]),
    httpTimeoutMs: positiveNumber(config.httpTimeoutMs, 'httpTimeoutMs'),
    executableTimeoutMs: positiveNumber(config.executableTimeoutMs, 'executableTimeoutMs'),
    postConcurrency: integerAtLeast(config.postConcurrency, 1, 'postConcurrency'),
    postQueueLimit: integerAtLeast(config.postQueueLimit, 0, 'postQueueLimit'),
    ...(config.amqp === undefined ? {} : { amqp: Object.freeze({ ...config.amqp }) }),
    ...(config.kafka === undefined ? {} : { kafka: Object.freeze({ ...config.kafka }) }),
    ...(config.outboxDirectory === undefined ? {} : { outboxDirectory: config.outboxDirectory }),
    outboxLimit: integerAtLeast(config.outboxLimit ?? 100_000, 1, 'outboxLimit'),
    outboxMaxBackoffMs: positiveNumber(config.outboxMaxBackoffMs ?? 30_000, 'outboxMaxBackoffMs'),
    httpOutbox: config.httpOutbox === true,
  });
}

/**
 * Delivers upload events to the configured hooks (file, dir, HTTP), rustus-compatible.
 *
 * Blocking events ({@link HookEngine.runBlocking}) visit the targets in order (file, dir, then each URL) and
 * stop at the first failure, which becomes the client's answer. Non-blocking events ({@link HookEngine.emit})
 * go to every target independently through a bounded queue and never hold up the request. Every delivery is
 * recorded in {@link HookEngine.runs}.
 *
 * @example
 * const engine = new HookEngine({ ...config, httpUrls: ['http://localhost:8080/hooks'] }, logger);
 * const outcome = await engine.runBlocking(event); // { kind: 'continue' } or { kind: 'reject', status, ... }
 * engine.emit(postEvent);
 * await engine.drain(5000);
 * await engine.close();
 */
export class HookEngine {
  readonly runs: RunLog;
  readonly config: HooksConfig;
  readonly #logger: HookLogger;
  /** Targets that take part in blocking events (file, dir, HTTP), in rustus's order. */
  readonly #transports: readonly HookTransport[];
  /** Broker targets: every event reaches them, but never blocking (a pre-* event once the filters passed). */
  readonly #brokers: readonly HookTransport[];
  /** Where broker deliveries wait until the broker confirmed them; undefined without brokers. */
  readonly #outbox: Outbox | undefined;
  /** Targets whose non-blocking deliveries go through the outbox, with their stable journal names. */
  readonly #outboxNames = new Map<HookTransport, string>();
  readonly #queue: PostQueue;
  readonly #closing = new AbortController();

  constructor(config: HooksConfig, logger: HookLogger, options: HookEngineOptions = {}) {
    this.config = frozenConfig(config);
    this.#logger = logger;
    this.runs = new RunLog(options.runLogCapacity ?? 1000);
    this.#queue = new PostQueue(this.config.postConcurrency, this.config.postQueueLimit);
    // Every running delivery listens on this one signal (up to the post concurrency): not a leak.
    setMaxListeners(0, this.#closing.signal);

    const executableOptions = {
      timeoutMs: this.config.executableTimeoutMs,
      // Hooks inherit Wharf's environment, as in rustus; the library caller may pass another one.
      baseEnv: options.executableEnv ?? process.env,
      onStdout: (delivery: HookDelivery, stdout: string) => {
        this.#logger.debug({ eventId: delivery.eventId, hook: delivery.hook, stdout }, 'hook stdout');
      },
    };
    const transports: HookTransport[] = [];
    const outboxTargets = new Map<string, HookTransport>();
    if (this.config.hooksFile !== undefined) {
      transports.push(new FileHookTransport(this.config.hooksFile, executableOptions));
    }
    if (this.config.hooksDir !== undefined) {
      transports.push(new DirHookTransport(this.config.hooksDir, executableOptions));
    }
    for (const url of this.config.httpUrls) {
      const transport = new HttpHookTransport(url, {
        timeoutMs: this.config.httpTimeoutMs,
        proxyHeaders: this.config.httpProxyHeaders,
      });
      transports.push(transport);
      if (this.config.httpOutbox === true) outboxTargets.set(`http:${url}`, transport);
    }
    this.#transports = transports;
    const brokers = new Map<string, HookTransport>();
    if (this.config.amqp !== undefined) brokers.set('amqp', new AmqpHookTransport(this.config.amqp));
    if (this.config.kafka !== undefined) brokers.set('kafka', new KafkaHookTransport(this.config.kafka));
    this.#brokers = [...brokers.values()];
    for (const [name, transport] of brokers) outboxTargets.set(name, transport);
    for (const [name, transport] of outboxTargets) this.#outboxNames.set(transport, name);
    this.#outbox =
      outboxTargets.size === 0
        ? undefined
        : new Outbox(outboxTargets, {
            directory: this.config.outboxDirectory,
            limit: this.config.outboxLimit ?? 100_000,
            maxBackoffMs: this.config.outboxMaxBackoffMs ?? 30_000,
            concurrency: this.config.postConcurrency,
            logger,
            signal: this.#closing.signal,
            deliver: (transport, delivery) => this.#deliver(transport, delivery, false),
            isFinal: refusedForGood,
          });
    for (const broker of this.#brokers) {
      // Declarations happen early when the broker is up; when it is down, the first delivery retries them.
      broker.open?.().catch((error: unknown) => {
        this.#logger.warn(
          { target: broker.describe('*'), error: String(error) },
          'hook broker not reachable at startup; events wait for it',
        );
      });
    }
  }

  /** True when an event of this name would reach at least one target: lets the core skip building it. */
  listens(name: UploadEventName): boolean {
    return this.#transports.length + this.#brokers.length > 0 && this.config.enabledEvents.has(name);
  }

  /** The targets an event of this name goes to: blocking order (`file:…`, `dir:…`, `http:…`), then brokers. */
  targetsFor(name: UploadEventName): string[] {
    if (!this.listens(name)) return [];
    return [...this.#transports, ...this.#brokers].map((transport) => transport.describe(name));
  }

  /** Broker deliveries not yet confirmed, and those refused because the outbox was full (since start). */
  get outbox(): { readonly pending: number; readonly dropped: number } {
    return { pending: this.#outbox?.pending ?? 0, dropped: this.#outbox?.dropped ?? 0 };
  }

  /** Whether {@link HookEngine.close} was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Runs the blocking hooks of a `pre-*` event in order, stopping at the first failure. Never throws: any
   * failure is a `reject` carrying the status, body and headers the client should receive.
   */
  async runBlocking(event: UploadEvent): Promise<BlockingOutcome> {
    if (!this.listens(event.name)) return { kind: 'continue' };
    if (this.closed) return rejectionFor(event.name, { kind: 'aborted' });
    const eventId = randomUUID();
    const payload = formatPayload(this.config.format, event);
    this.#logger.debug(
      { eventId, hook: event.name, uploadId: event.upload.id, targets: this.#transports.length },
      'running blocking hooks',
    );

    const delivery = this.#delivery(eventId, event, payload);
    for (const [index, transport] of this.#transports.entries()) {
      const result = await this.#deliver(transport, delivery, true);
      if (result.kind === 'delivered') continue;

      for (const skipped of this.#transports.slice(index + 1)) {
        this.#record(skipped, delivery, true, Date.now(), 0, 'skipped', { error: skippedAfterFailure });
      }
      return rejectionFor(event.name, result);
    }
    // Brokers hear of a pre-* event once the filters let it through, and never hold it up (as in rustus,
    // where a rejected pre-create never reaches AMQP or Kafka).
    this.#enqueue(this.#brokers, delivery);
    return { kind: 'continue' };
  }

  /**
   * Queues a non-blocking event for every target; returns at once. Each target is delivered to on its own,
   * so one failing target does not hide the event from the others.
   */
  emit(event: UploadEvent): void {
    if (!this.listens(event.name)) return;
    const eventId = randomUUID();
    const payload = formatPayload(this.config.format, event);
    const delivery = this.#delivery(eventId, event, payload);
    this.#logger.debug(
      { eventId, hook: event.name, uploadId: event.upload.id, targets: this.#transports.length },
      'queueing hook event',
    );

    this.#enqueue([...this.#transports, ...this.#brokers], delivery);
  }

  #enqueue(transports: readonly HookTransport[], delivery: HookDelivery): void {
    const { eventId } = delivery;
    for (const transport of transports) {
      const outboxName = this.#outboxNames.get(transport);
      if (outboxName !== undefined && this.#outbox !== undefined && !this.closed) {
        // Journaled now, delivered (and retried) by the outbox; refused only when the outbox is full.
        if (!this.#outbox.add(outboxName, delivery)) {
          this.#record(transport, delivery, false, Date.now(), 0, 'skipped', { error: 'outbox full' });
        }
        continue;
      }
      if (this.closed) {
        this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
          error: 'the hooks engine closed',
        });
        continue;
      }
      const queued = this.#queue.push(async () => {
        if (this.closed) {
          this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
            error: 'the hooks engine closed',
          });
          return;
        }
        await this.#deliver(transport, delivery, false);
      });
      if (!queued) {
        const record = this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
          error: 'queue full',
        });
        this.#logger.warn(
          {
            eventId,
            hook: delivery.hook,
            target: record.target,
            uploadId: delivery.uploadId,
            queueLimit: this.config.postQueueLimit,
          },
          'hook queue full; event dropped for this target',
        );
      }
    }
  }

  /** Waits until every queued non-blocking delivery has finished, or `timeoutMs` has passed. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const idle = Promise.all([this.#queue.idle(), this.#outbox?.idle()]).then(() => false);
    const gaveUp = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    if (gaveUp) {
      this.#logger.warn(
        {
          running: this.#queue.running,
          waiting: this.#queue.waiting,
          outboxPending: this.#outbox?.pending ?? 0,
          timeoutMs,
        },
        'hook deliveries still pending after drain timeout',
      );
    }
  }

  /**
   * Stops the engine: running hooks are aborted (executables killed, requests cancelled), queued deliveries
   * are recorded as skipped, later events fire nothing and blocking ones are rejected with 503. Call
   * {@link HookEngine.drain} first to let pending deliveries finish.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#queue.idle();
    await this.#outbox?.close();
    await Promise.all([...this.#transports, ...this.#brokers].map((transport) => transport.close?.()));
  }

  #delivery(eventId: string, event: UploadEvent, payload: string): HookDelivery {
    return {
      eventId,
      event: event.name,
      hook: event.name,
      uploadId: event.upload.id,
      payload,
      request: event.request,
      signal: this.#closing.signal,
    };
  }

  async #deliver(
    transport: HookTransport,
    delivery: HookDelivery,
    blocking: boolean,
  ): Promise<DeliveryResult> {
    const startedAt = Date.now();
    const started = performance.now();
    let result: DeliveryResult;
    try {
      result = await transport.deliver(delivery);
    } catch (error) {
      // Transports resolve with a typed result; this guards against a bug turning into a stuck request.
      result = { kind: 'spawn_failed', detail: `unexpected transport error: ${String(error)}` };
    }
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    const extra: { error?: string; exitCode?: number; httpStatus?: number } = {};
    const error = errorOf(result);
    if (error !== undefined) extra.error = error;
    const exitCode = result.kind === 'delivered' || result.kind === 'exited' ? result.exitCode : undefined;
    if (exitCode !== undefined && exitCode !== null) extra.exitCode = exitCode;
    const httpStatus =
      result.kind === 'delivered' || result.kind === 'responded' ? result.httpStatus : undefined;
    if (httpStatus !== undefined) extra.httpStatus = httpStatus;

    const record = this.#record(
      transport,
      delivery,
      blocking,
      startedAt,
      durationMs,
      runStatusOf(result),
      extra,
    );
    this.#log(record, result);
    return result;
  }

  #record(
    transport: HookTransport,
    delivery: HookDelivery,
    blocking: boolean,
    startedAt: number,
    durationMs: number,
    status: RunStatus,
    extra: { error?: string; exitCode?: number; httpStatus?: number },
  ): RunRecord {
    const record: RunRecord = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.hook,
      target: transport.describe(delivery.hook),
      uploadId: delivery.uploadId,
      blocking,
      status,
      startedAt,
      durationMs,
      ...extra,
    };
    this.runs.add(record);
    return record;
  }

  /** Logs one run. Never logs the payload or request headers (they may carry credentials). */
  #log(record: RunRecord, result: DeliveryResult): void {
    const fields: Record<string, unknown> = { ...record };
    if (result.kind === 'delivered') {
      this.#logger.debug(fields, 'hook run completed');
      return;
    }
    if (result.kind === 'responded' && result.body !== '') fields.responseBody = excerpt(result.body);
    const hookDecided = result.kind === 'exited' || result.kind === 'responded';
    if (record.blocking && hookDecided) this.#logger.info(fields, 'blocking hook rejected the operation');
    else if (record.blocking) this.#logger.error(fields, 'blocking hook failed; the operation is cancelled');
    else if (result.kind === 'not_runnable' || result.kind === 'spawn_failed') {
      this.#logger.error(fields, 'hook could not be run');
    } else if (result.kind !== 'aborted') this.#logger.warn(fields, 'hook run failed');
  }
}
