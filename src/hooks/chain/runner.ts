import { failureOf } from '../delivery/delivery-verdict.ts';
import type { Outbox } from '../delivery/outbox.ts';
import { redactTarget, redactTargetText } from '../delivery/target-guard.ts';
import type { UploadEvent } from '../events.ts';
import type { FormattedEvent } from '../formats/index.ts';
import type { RunLog, RunRecord, RunStatus } from '../history/run-log.ts';
import type { HookLogger } from '../hook-logger.ts';
import type { ModuleRun } from '../modules/registry.ts';
import { cloudEventEnvironment } from '../transports/cloudevents-bindings.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../transports/types.ts';
import {
  type HookAnswer,
  HookAnswerError,
  type HookHttpResponse,
  type MergedAnswer,
  mergeAnswers,
  parseHookAnswer,
} from './answers.ts';
import { matchesWhen, testsStatus } from './conditions.ts';
import {
  type ChainEntry,
  type CompiledChain,
  describeTarget,
  type TargetEntry,
  targetOf,
} from './entries.ts';
import { type BoundHook, runsFor } from './pipeline.ts';
import type { PostQueue } from './post-queue.ts';
import { type BlockingOutcome, reject, rejectionByAnswer, rejectionFor } from './rejections.ts';

/**
 * Gives the status code of the answer the client got (undefined: none was sent), for entries whose `when` tests
 * `status`. Called only when such an entry runs: the promise and its listeners on the response cost a request.
 */
export type AnswerStatus = () => Promise<number | undefined>;

/** Why an entry was not run; every skipped record carries one of these. */
export const skipReasons = {
  earlierFailed: 'not run: an earlier blocking hook failed',
  closed: 'the hooks engine closed',
  queueFull: 'queue full',
  outboxFull: 'outbox full',
} as const;
export type SkipReason = (typeof skipReasons)[keyof typeof skipReasons];

/** Told of a post-receive hook's `StopUpload` answer (or `--hooks-stop-code` exit). */
export type StopUploadListener = (uploadId: string, response: HookHttpResponse | undefined) => void;

/** One transport delivery, its answer read. */
export interface Delivered {
  readonly result: DeliveryResult;
  readonly record: RunRecord;
  readonly answer?: HookAnswer;
  readonly invalidAnswer?: string;
}

/** What the runner is handed (the engine builds these). */
export interface RunnerParts {
  readonly runs: RunLog;
  readonly logger: HookLogger;
  /** Non-blocking runs that do not go through the outbox (module actions, non-durable targets). */
  readonly queue: PostQueue;
  readonly postQueueLimit: number;
  /** Where durable post deliveries are stored, then delivered with retries in per-upload order. */
  readonly outbox: Outbox;
  /** Aborted when the engine closes. */
  readonly signal: AbortSignal;
  /** The event in `--hooks-format` (flag-defined and run-time targets). */
  formatEvent(event: UploadEvent, eventId: string): FormattedEvent;
  /** A named hook's payload: its format plus the `hook` section. */
  payloadFor(bound: BoundHook, event: UploadEvent, eventId: string): FormattedEvent;
  /** Keeps an outbox addition of the event being handed out (its number is settled after it). */
  collect(addition: Promise<unknown>): void;
  /** A post-receive hook asked to stop the upload (tusd 2's `StopUpload`, or `--hooks-stop-code`). */
  readonly stopUpload: StopUploadListener;
  /** `--hooks-stop-code`: a post-receive executable exiting with it stops the upload (0: none). */
  readonly stopCode?: number;
}

function runStatusOf(result: DeliveryResult): RunStatus {
  if (result.kind === 'delivered') return 'completed';
  if (result.kind === 'timed_out') return 'timed_out';
  return 'failed';
}

/** How much of an executable's stderr one log line carries (the transport keeps at most 4 KiB of it). */
const stderrLogLimit = 1024;

function excerpt(text: string, limit = 200): string {
  const trimmed = text.trim();
  return trimmed.length <= limit ? trimmed : `${trimmed.slice(0, limit)}…`;
}

/** The run record's error: the verdict's description, with an executable's stderr after it. */
function errorOf(result: DeliveryResult): string | undefined {
  if (result.kind === 'delivered') return undefined;
  const failure = failureOf(result);
  const stderr = result.kind === 'exited' ? excerpt(result.stderr) : '';
  return stderr === '' ? failure : `${failure}: ${stderr}`;
}

/** One event on its way through the chain: the event as the entries so far left it, and its id. */
interface Run {
  event: UploadEvent;
  readonly eventId: string;
  readonly blocking: boolean;
  /** The `--hooks-format` delivery, built once per state of the event. */
  flagDelivery?: {
    readonly event: UploadEvent;
    /** Without `env`: what the outbox stores (it keeps no environment). */
    readonly delivery: HookDelivery;
    /** With `env`, made when an entry runs an executable or is queued. */
    withEnv?: HookDelivery;
  };
}

/** How one blocking entry went. */
interface StepOutcome {
  /** The client's answer when the entry refused or failed; undefined when the operation goes on. */
  readonly outcome?: BlockingOutcome;
  /** A refusal the entry decided (a reject answer, a module's HookError), as opposed to a breakage. */
  readonly decided: boolean;
  readonly answer?: HookAnswer;
  /** A filter's upload after its change (applied as is). */
  readonly upload?: UploadEvent['upload'];
}

/**
 * Runs a compiled chain. Every entry, whatever declared it, is run the same way: `when` and `runOn` decide
 * whether it runs, `critical` whether its failure ends a blocking event, and every run (completed, failed,
 * timed out, skipped and why) is recorded by {@link ChainRunner.record}, the one place run records are written.
 */
export class ChainRunner {
  readonly #parts: RunnerParts;

  constructor(parts: RunnerParts) {
    this.#parts = parts;
  }

  get #closed(): boolean {
    return this.#parts.signal.aborted;
  }

  /**
   * Runs the chain of a `pre-*` event in order and stops at the first failure of a critical entry (the rest are
   * recorded skipped). Deferred entries (brokers) hear of the event once the whole chain let it through.
   */
  async runBlocking(chain: CompiledChain, event: UploadEvent, eventId: string): Promise<BlockingOutcome> {
    const run: Run = { event, eventId, blocking: true };
    const endpoint = event.endpoint ?? '';
    const entries = (chain ?? []).filter((entry) => matchesWhen(entry.when, event, endpoint));
    let merged: MergedAnswer | undefined;
    const warnings: string[] = [];
    const deferred: TargetEntry[] = [];
    for (const [index, entry] of entries.entries()) {
      if (entry.kind === 'action') continue;
      if (entry.kind === 'target' && entry.deferred) {
        deferred.push(entry);
        continue;
      }
      const step = await this.#runBlockingEntry(entry, run);
      if (step.outcome === undefined) {
        if (step.answer !== undefined) merged = mergeAnswers(merged, step.answer);
        if (step.upload !== undefined) {
          run.event = { ...run.event, upload: step.upload };
        } else if (step.answer !== undefined) {
          // Later entries see the id and metadata an earlier one chose.
          const change = step.answer.changeUpload;
          if (change?.id !== undefined || change?.metadata !== undefined) {
            run.event = {
              ...run.event,
              upload: {
                ...run.event.upload,
                ...(change.id !== undefined ? { id: change.id } : {}),
                ...(change.metadata !== undefined ? { metadata: { ...change.metadata } } : {}),
              },
            };
          }
        }
        continue;
      }
      // A refusal is a decision; only failures of non-critical entries become warnings.
      if (!entry.critical && !step.decided) {
        warnings.push(nameOf(entry, run.event));
        continue;
      }
      for (const skipped of [...deferred, ...entries.slice(index + 1)]) {
        this.skip(skipped, run, skipReasons.earlierFailed);
      }
      return step.outcome;
    }
    // Brokers hear of a pre-* event once the chain let it through, and never hold it up (as in rustus, where a
    // rejected pre-create never reaches AMQP or Kafka).
    for (const entry of deferred) this.#post(entry, { ...run, blocking: false });
    if (warnings.length > 0) {
      this.#parts.logger.warn(
        { eventId, hook: event.name, uploadId: event.upload.id, failed: warnings },
        'operation completed with warnings',
      );
    }
    return {
      kind: 'continue',
      ...(merged !== undefined ? { answer: merged } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  }

  /**
   * Hands every entry of a post event whose `runOn` and `when` fit it to the outbox or the post queue. An entry
   * whose `when` tests the answer's `status` waits for `answered` (the status code of the answer the client
   * got), so it is stored or queued once the answer is sent, not before.
   */
  runPost(chain: CompiledChain, event: UploadEvent, eventId: string, answered?: AnswerStatus): void {
    const failed = event.error !== undefined;
    const endpoint = event.endpoint ?? '';
    const run: Run = { event, eventId, blocking: false };
    for (const entry of chain ?? []) {
      if (!runsFor(entry.runOn, failed)) continue;
      const status = testsStatus(entry.when) ? answered?.() : undefined;
      if (status !== undefined) {
        status.then(
          (status) => {
            if (matchesWhen(entry.when, event, endpoint, status)) this.#post(entry, run);
          },
          () => undefined,
        );
        continue;
      }
      if (!matchesWhen(entry.when, event, endpoint)) continue;
      this.#post(entry, run);
    }
  }

  /**
   * A failed operation, heard by the run-on-failure entries of every post event whose operation it ends
   * (`failureHeardBy`): each entry runs once per failure, as the first of those events it is bound to, even
   * when it is bound to several of them.
   */
  runFailure(
    chains: readonly { readonly name: UploadEvent['name']; readonly chain: CompiledChain }[],
    event: UploadEvent,
    eventId: string,
    answered?: AnswerStatus,
  ): void {
    const endpoint = event.endpoint ?? '';
    const heard = new Set<unknown>();
    for (const { name, chain } of chains) {
      const named: UploadEvent = name === event.name ? event : { ...event, name };
      const run: Run = { event: named, eventId, blocking: false };
      for (const entry of chain ?? []) {
        if (!runsFor(entry.runOn, true)) continue;
        const identity = failureIdentity(entry);
        if (heard.has(identity)) continue;
        // An entry that tests the answer's status waits for it, as in runPost; it still counts as heard here,
        // so the same failure never reaches it twice through another of its events.
        const status = testsStatus(entry.when) ? answered?.() : undefined;
        if (status !== undefined) {
          heard.add(identity);
          status.then(
            (status) => {
              if (matchesWhen(entry.when, named, endpoint, status)) this.#post(entry, run);
            },
            () => undefined,
          );
          continue;
        }
        if (!matchesWhen(entry.when, named, endpoint)) continue;
        heard.add(identity);
        this.#post(entry, run);
      }
    }
  }

  async #runBlockingEntry(entry: ChainEntry, run: Run): Promise<StepOutcome> {
    if (entry.kind === 'filter') {
      const { run: moduleRun, outcome } = await entry.step.run(run.event, run.eventId, entry.timeoutMs);
      this.#recordModule(run, moduleRun);
      if (outcome.kind === 'continue') {
        return {
          decided: false,
          upload: outcome.upload,
          ...(outcome.answer !== undefined ? { answer: { reject: false, ...outcome.answer } } : {}),
        };
      }
      const { kind: _kind, broken, ...rejection } = outcome;
      // A module's HookError or reject answer is its decision, like a hook answering `reject`.
      return { outcome: { kind: 'reject', ...rejection }, decided: broken !== true };
    }
    if (entry.kind === 'action') return { decided: false };
    const delivery = this.#deliveryFor(entry, run);
    const delivered = await this.#deliverWithRetries(entry, delivery, true);
    const outcome = this.#blockingFailure(entry.bound?.hook.name ?? run.event.name, delivered);
    const answer = delivered.answer;
    return {
      decided: answer?.reject === true,
      ...(outcome !== undefined ? { outcome } : {}),
      ...(outcome === undefined && answer !== undefined ? { answer } : {}),
    };
  }

  /** What a failed blocking delivery means for the client; undefined when the hook let the operation go on. */
  #blockingFailure(hook: string, delivered: Delivered): BlockingOutcome | undefined {
    const { result, answer, invalidAnswer } = delivered;
    if (result.kind !== 'delivered') return rejectionFor(hook, result);
    if (invalidAnswer !== undefined)
      return reject(502, `Hook "${hook}" answered an invalid response: ${invalidAnswer}`);
    if (answer?.reject) return rejectionByAnswer(hook, answer);
    return undefined;
  }

  /** Delivers, trying again (up to the entry's `retries`) when it could not be run or reached or timed out. */
  async #deliverWithRetries(
    entry: TargetEntry,
    delivery: HookDelivery,
    blocking: boolean,
  ): Promise<Delivered> {
    for (let attempt = 0; ; attempt++) {
      // A failure of a hook that lets the operation go on is a warning (Borgitory's "completed with warnings").
      const goesOn = !entry.critical && (blocking || entry.bound?.hook.continueOnFailure === true);
      const delivered = await this.deliver(entry.transport, delivery, blocking, undefined, goesOn);
      const kind = delivered.result.kind;
      const retriable = kind === 'unreachable' || kind === 'spawn_failed' || kind === 'timed_out';
      if (!retriable || attempt >= entry.retries || this.#closed) return delivered;
    }
  }

  /** One non-blocking entry: stored in the outbox (durable, ordered, retried) or queued; skipped when it cannot. */
  #post(entry: ChainEntry, run: Run): void {
    if (entry.kind === 'filter') return;
    if (this.#closed) {
      this.skip(entry, run, skipReasons.closed);
      return;
    }
    if (entry.kind === 'target' && entry.outboxName !== undefined) {
      const delivery = this.#deliveryFor(entry, run, false);
      this.#pending(entry, run, delivery);
      // Stored first, then delivered (and retried) by the outbox; refused only when the outbox is full. A
      // store that takes entries at once (the file journal) answers at once: no promise per event and target.
      const added = this.#parts.outbox.offer(entry.outboxName, delivery);
      if (added === true) return;
      if (added === false) {
        this.skip(entry, run, this.#closed ? skipReasons.closed : skipReasons.outboxFull);
        return;
      }
      this.#parts.collect(
        added.then((stored) => {
          if (!stored) this.skip(entry, run, this.#closed ? skipReasons.closed : skipReasons.outboxFull);
        }),
      );
      return;
    }
    const delivery = entry.kind === 'target' ? this.#deliveryFor(entry, run) : undefined;
    this.#pending(entry, run, delivery);
    const queued = this.#parts.queue.push(async () => {
      if (this.#closed) return this.skip(entry, run, skipReasons.closed);
      if (entry.kind === 'action') {
        const moduleRun = await entry.step.run(run.event, run.eventId);
        this.#recordModule(run, moduleRun);
        if (moduleRun.stopUpload !== undefined) {
          this.#parts.stopUpload(run.event.upload.id, moduleRun.stopUpload.response);
        }
        return;
      }
      if (delivery !== undefined) await this.#deliverWithRetries(entry, delivery, false);
    });
    if (queued) return;
    this.skip(entry, run, skipReasons.queueFull);
    this.#parts.logger.warn(
      {
        eventId: run.eventId,
        hook: run.event.name,
        target: redactTarget(targetOf(entry, run.event.name)),
        uploadId: run.event.upload.id,
        queueLimit: this.#parts.postQueueLimit,
      },
      'hook queue full; event dropped for this target',
    );
  }

  /** Records an entry that did not run, and why. */
  skip(entry: ChainEntry, run: Run, reason: SkipReason): void {
    this.record({
      ...this.#identity(entry, run),
      status: 'skipped',
      startedAt: Date.now(),
      durationMs: 0,
      error: reason,
    });
  }

  /** The one place a run record is written (completed, failed, timed out, skipped). */
  record(record: RunRecord): RunRecord {
    this.#parts.runs.add(record);
    return record;
  }

  #identity(entry: ChainEntry, run: Run): Omit<RunRecord, 'status' | 'durationMs' | 'startedAt'> {
    return {
      eventId: run.eventId,
      event: run.event.name,
      hook: nameOf(entry, run.event),
      target: targetOf(entry, run.event.name),
      uploadId: run.event.upload.id,
      blocking: run.blocking,
    };
  }

  /** A post run waiting for the queue or the outbox shows as `pending` until its final record. */
  #pending(entry: ChainEntry, run: Run, delivery: HookDelivery | undefined): void {
    // Built whole here (every post event makes one per entry), not spread from #identity's object.
    this.#parts.runs.setPending({
      eventId: run.eventId,
      event: run.event.name,
      hook: nameOf(entry, run.event),
      target: targetOf(entry, run.event.name),
      uploadId: delivery !== undefined ? delivery.uploadId : run.event.upload.id,
      blocking: run.blocking,
      status: 'pending',
      startedAt: Date.now(),
      durationMs: 0,
    });
  }

  /** A delivery the outbox will try again shows as `pending` with its next attempt's number. */
  retrying(
    transport: HookTransport,
    delivery: Pick<HookDelivery, 'eventId' | 'event' | 'hook' | 'label' | 'uploadId'>,
    attempt: number,
  ): void {
    this.#parts.runs.addPending({
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.label ?? delivery.hook,
      target: describeTarget(transport, delivery.hook),
      uploadId: delivery.uploadId,
      blocking: false,
      startedAt: Date.now(),
      attempt,
    });
  }

  #recordModule(run: Run, moduleRun: ModuleRun): void {
    this.record({
      eventId: run.eventId,
      event: run.event.name,
      hook: run.event.name,
      target: moduleRun.target,
      uploadId: run.event.upload.id,
      blocking: run.blocking,
      status: moduleRun.status,
      startedAt: Date.now(),
      durationMs: moduleRun.durationMs,
      ...(moduleRun.error !== undefined ? { error: moduleRun.error } : {}),
    });
  }

  /**
   * The delivery of a target entry: a named hook's own payload, else the `--hooks-format` one. `withEnv: false`
   * for an entry that goes to the outbox: it stores no environment, so none is built (six strings and an object
   * for every event and target).
   */
  #deliveryFor(entry: TargetEntry, run: Run, withEnv = true): HookDelivery {
    if (entry.bound !== undefined) {
      const bound = entry.bound;
      const base = this.#bareDelivery(
        run.eventId,
        run.event,
        this.#parts.payloadFor(bound, run.event, run.eventId),
      );
      const named = base as { -readonly [K in keyof HookDelivery]: HookDelivery[K] };
      named.label = bound.hook.name;
      if (withEnv) {
        const env = environmentOf(run.event, base.cloudEvent);
        env.WHARF_HOOK_NAME = bound.hook.name;
        env.WHARF_HOOK_ARGS = JSON.stringify(bound.args);
        named.env = env;
      }
      return named;
    }
    let cached = run.flagDelivery;
    if (cached?.event !== run.event) {
      cached = {
        event: run.event,
        delivery: this.#bareDelivery(run.eventId, run.event, this.#parts.formatEvent(run.event, run.eventId)),
      };
      run.flagDelivery = cached;
    }
    if (!withEnv) return cached.delivery;
    cached.withEnv ??= { ...cached.delivery, env: environmentOf(run.event, cached.delivery.cloudEvent) };
    return cached.withEnv;
  }

  /** A delivery of this event with this payload: what every transport is handed. */
  delivery(eventId: string, event: UploadEvent, formatted: FormattedEvent): HookDelivery {
    const delivery = this.#bareDelivery(eventId, event, formatted) as {
      -readonly [K in keyof HookDelivery]: HookDelivery[K];
    };
    delivery.env = environmentOf(event, formatted.cloudEvent);
    return delivery;
  }

  /** {@link ChainRunner.delivery} without `env`. */
  #bareDelivery(eventId: string, event: UploadEvent, formatted: FormattedEvent): HookDelivery {
    const { payload, cloudEvent } = formatted;
    // Optional fields are set once the object is built: a literal with conditional spreads takes V8's slow
    // path, and every event builds one delivery per format.
    const delivery: { -readonly [K in keyof HookDelivery]: HookDelivery[K] } = {
      eventId,
      event: event.name,
      hook: event.name,
      uploadId: event.upload.id,
      payload,
      request: event.request,
      signal: this.#parts.signal,
    };
    if (event.sequence !== undefined) delivery.sequence = event.sequence;
    if (cloudEvent !== undefined) delivery.cloudEvent = cloudEvent;
    return delivery;
  }

  /** Runs one delivery through its transport and records it; a blocking one's answer is read. */
  async deliver(
    transport: HookTransport,
    delivery: HookDelivery,
    blocking: boolean,
    attempt?: number,
    /** The operation goes on when this run fails: a failure is recorded with `warning: true`. */
    goesOn = false,
  ): Promise<Delivered> {
    const startedAt = Date.now();
    const target = describeTarget(transport, delivery.hook);
    const running: { -readonly [K in keyof RunRecord]: RunRecord[K] } = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.label ?? delivery.hook,
      target,
      uploadId: delivery.uploadId,
      blocking,
      status: 'running',
      startedAt,
      durationMs: 0,
    };
    if (attempt !== undefined) running.attempt = attempt;
    this.#parts.runs.setRunning(running);
    const started = performance.now();
    let result: DeliveryResult;
    try {
      result = await transport.deliver(delivery);
    } catch (error) {
      // Transports resolve with a typed result; this guards against a bug turning into a stuck request.
      result = { kind: 'spawn_failed', detail: `unexpected transport error: ${String(error)}` };
    }
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    // Blocking hooks decide by their answer. A post hook's answer decides nothing, except tusd 2's StopUpload
    // on post-receive; anything else it asks for is reported as not honoured, never dropped silently.
    let answer: HookAnswer | undefined;
    let invalidAnswer: string | undefined;
    let notHonoured: readonly string[] | undefined;
    if (result.kind === 'delivered' && delivery.event !== 'ping') {
      try {
        answer = parseHookAnswer(result.answer, delivery.event);
      } catch (cause) {
        if (!(cause instanceof HookAnswerError)) throw cause;
        if (blocking) invalidAnswer = cause.message;
        else notHonoured = [`invalid answer: ${cause.message}`];
      }
      notHonoured = answer?.notHonoured ?? notHonoured;
      if (!blocking && answer?.stopUpload === true)
        this.#parts.stopUpload(delivery.uploadId, answer.httpResponse);
      if (!blocking) answer = undefined;
    }
    // tusd 1's -hooks-stop-code: an executable's exit code asks to stop the upload.
    const stopCode = this.#parts.stopCode ?? 0;
    if (
      !blocking &&
      stopCode !== 0 &&
      delivery.event === 'post-receive' &&
      result.kind === 'exited' &&
      result.exitCode === stopCode
    ) {
      this.#parts.stopUpload(delivery.uploadId, undefined);
    }
    // The record's optional fields as plain locals (no object of them per delivery).
    const answerText =
      result.kind === 'delivered'
        ? result.answer
        : result.kind === 'exited'
          ? result.stderr
          : result.kind === 'responded'
            ? result.body
            : undefined;
    // A broker's confirm and a hook's empty answer are '': no trimmed copy of them.
    const output =
      answerText !== undefined && answerText !== '' && answerText.trim() !== ''
        ? excerpt(answerText)
        : undefined;
    const error =
      invalidAnswer !== undefined
        ? `invalid answer: ${invalidAnswer}`
        : answer?.reject
          ? 'rejected by its answer'
          : errorOf(result);
    let recordError = error;
    const exitCode = result.kind === 'delivered' || result.kind === 'exited' ? result.exitCode : undefined;
    const httpStatus =
      result.kind === 'delivered' || result.kind === 'responded' ? result.httpStatus : undefined;

    const status = error !== undefined && result.kind === 'delivered' ? 'failed' : runStatusOf(result);
    if (notHonoured !== undefined && error === undefined) {
      recordError = `answer not honoured: ${notHonoured.join('; ')}`;
      this.#parts.logger.warn(
        {
          eventId: delivery.eventId,
          hook: delivery.label ?? delivery.hook,
          target: redactTarget(transport.describe(delivery.hook)),
          uploadId: delivery.uploadId,
          notHonoured,
        },
        'hook answer not honoured in part',
      );
    }
    // A refusal the hook answered is a decision, never a warning: the operation stops even then.
    const warning = goesOn && (status === 'failed' || status === 'timed_out') && answer?.reject !== true;
    // A new record: watchers may keep the running one.
    const final: { -readonly [K in keyof RunRecord]: RunRecord[K] } = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: running.hook,
      target,
      uploadId: delivery.uploadId,
      blocking,
      status,
      startedAt,
      durationMs,
    };
    if (attempt !== undefined) final.attempt = attempt;
    if (output !== undefined) final.output = output;
    if (recordError !== undefined) final.error = recordError;
    if (exitCode !== undefined && exitCode !== null) final.exitCode = exitCode;
    if (httpStatus !== undefined) final.httpStatus = httpStatus;
    if (warning) final.warning = true;
    const record = this.record(final);
    this.#log(record, result);
    // Set once built, not spread into the literal (V8's slow path, once per delivery).
    const delivered: { -readonly [K in keyof Delivered]: Delivered[K] } = { result, record };
    if (answer !== undefined) delivered.answer = answer;
    if (invalidAnswer !== undefined) delivered.invalidAnswer = invalidAnswer;
    return delivered;
  }

  /** Logs one run. Never logs the payload or request headers (they may carry credentials). */
  #log(record: RunRecord, result: DeliveryResult): void {
    const logger = this.#parts.logger;
    const completed = result.kind === 'delivered' && record.status === 'completed';
    if (completed && logger.isLevelEnabled?.('debug') === false) return;
    // Targets by their label: no URL path, query or password, no executable path (target-guard.ts).
    const fields: Record<string, unknown> = { ...record, target: redactTarget(record.target) };
    // An executable that cannot run is reported with its path; the label stands for it (target-guard.ts).
    if (record.error !== undefined) fields.error = redactTargetText(record.error, record.target);
    if (record.output !== undefined) fields.output = redactTargetText(record.output, record.target);
    if (completed) {
      logger.debug(fields, 'hook run completed');
      return;
    }
    if (result.kind === 'delivered') {
      logger.info(fields, 'blocking hook refused the operation by its answer');
      return;
    }
    if (result.kind === 'exited') {
      // The client gets a fixed message, never stderr (paths, commands, credentials): the reason is logged here.
      fields.stderr = redactTargetText(excerpt(result.stderr, stderrLogLimit), record.target);
      logger.warn(fields, record.blocking ? 'blocking hook rejected the operation' : 'hook run failed');
      return;
    }
    if (result.kind === 'responded' && result.body !== '') fields.responseBody = excerpt(result.body);
    if (record.blocking && result.kind === 'responded')
      logger.info(fields, 'blocking hook rejected the operation');
    else if (record.blocking) logger.error(fields, 'blocking hook failed; the operation is cancelled');
    else if (result.kind === 'not_runnable' || result.kind === 'spawn_failed') {
      logger.error(fields, 'hook could not be run');
    } else if (result.kind !== 'aborted') logger.warn(fields, 'hook run failed');
  }
}

/** What executables get in their environment besides the payload (upload offset and length, endpoint, tusd's). */
function environmentOf(event: UploadEvent, cloudEvent: FormattedEvent['cloudEvent']): Record<string, string> {
  const env: Record<string, string> = {
    WHARF_UPLOAD_OFFSET: String(event.upload.offset),
    WHARF_UPLOAD_LENGTH: event.upload.length === null ? '' : String(event.upload.length),
    WHARF_ENDPOINT: event.endpoint ?? '',
    // tusd 2's file hooks read these; tusd has no id yet in pre-create.
    TUS_ID: event.name === 'pre-create' ? '' : event.upload.id,
    TUS_SIZE: String(event.upload.length ?? 0),
    TUS_OFFSET: String(event.upload.offset),
  };
  if (cloudEvent !== undefined) Object.assign(env, cloudEventEnvironment(cloudEvent));
  return env;
}

/** The hook name run records give an entry: a named hook's name, else the event's. */
function nameOf(entry: ChainEntry, event: UploadEvent): string {
  return entry.kind === 'target' && entry.bound !== undefined ? entry.bound.hook.name : event.name;
}

/** What makes two entries of different events the same hook for a failure: a named hook, a module's handler. */
function failureIdentity(entry: ChainEntry): unknown {
  if (entry.kind === 'target' && entry.bound !== undefined) return `named:${entry.bound.hook.name}`;
  if (entry.kind === 'action') return entry.step.handler ?? entry;
  return entry;
}
