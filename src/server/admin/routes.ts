import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorCatalogue } from '../../errors.ts';
import type {
  DeadLetter,
  DeliveryControl,
  DeliveryNotice,
  TargetState,
} from '../../hooks/delivery/delivery-control.ts';
import {
  checkRuntimeTarget,
  redactTarget,
  redactTargetText,
  TargetAllowList,
  TargetRefusedError,
} from '../../hooks/delivery/target-guard.ts';
import type { HookEngine } from '../../hooks/engine.ts';
import { isBlockingEvent, isUploadEventName } from '../../hooks/events.ts';
import {
  type EventQuery,
  type EventStatus,
  type EventSummary,
  eventStatuses,
  type RunHistory,
} from '../../hooks/history/run-history.ts';
import type { RunRecord } from '../../hooks/history/run-log.ts';
import type { Logger } from '../../logger.ts';
import { isAuthorized } from './auth.ts';
import { outboxStatsOf } from './delivery.ts';
import { checkBodyType, LocalGuard, type LocalRefusal } from './local-guard.ts';
import { NamedHooksError, type RuntimeNamedHooks } from './named-hooks.ts';
import { AdminStream } from './sse.ts';
import { type AdminEndpoint, findUpload, listUploads, type UploadState } from './uploads.ts';

export const adminApiPrefix = '/admin/api';

export interface AdminApiOptions {
  readonly token: string | undefined;
  /** `--host`: without a token, requests must name it (or a loopback name) in `Host` (local-guard.ts). */
  readonly host: string;
  readonly engine: HookEngine;
  readonly history: RunHistory;
  readonly endpoints: () => readonly AdminEndpoint[];
  readonly allowedUrls: readonly string[];
  readonly allowPrivateTargets: boolean;
  readonly logger: Logger;
  /** Resolves host names for the private-address guard (tests pass their own). */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
  /** Named hooks and bindings changed at run time (`/admin/api/hooks`, `/admin/api/bindings`). */
  readonly namedHooks?: RuntimeNamedHooks;
}

/** A request the API refuses, with the status and message the client gets. */
class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 413,
    message: string,
  ) {
    super(message);
  }
}

const maxBodyBytes = 64 * 1024;

const targetEventRefusal: LocalRefusal = {
  status: errorCatalogue.ERR_ADMIN_TARGET_EVENT.status,
  code: 'ERR_ADMIN_TARGET_EVENT',
  message: errorCatalogue.ERR_ADMIN_TARGET_EVENT.message,
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new ApiError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(400, 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new ApiError(400, `${key} must be a non-empty string`);
  return value;
}

function optionalStrings(body: Record<string, unknown>, key: string): string[] | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
    throw new ApiError(400, `${key} must be an array of non-empty strings`);
  }
  return value as string[];
}

function timeParam(params: URLSearchParams, key: string): number | undefined {
  const text = params.get(key);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new ApiError(400, `${key} must be Unix milliseconds`);
  return value;
}

function limitParam(params: URLSearchParams, fallback: number): number {
  const text = params.get('limit');
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new ApiError(400, 'limit must be a positive integer');
  return Math.min(value, 1000);
}

function textParam(params: URLSearchParams, key: string): string | undefined {
  const text = params.get(key);
  return text === null || text === '' ? undefined : text;
}

/**
 * Run records and targets as the API shows them: a target by its label (scheme, host and port of a URL, the
 * base name of an executable; target-guard.ts), and the same masking in the messages that may quote it.
 */
function showRun(run: RunRecord): RunRecord {
  return {
    ...run,
    target: redactTarget(run.target),
    ...(run.error !== undefined ? { error: redactTargetText(run.error, run.target) } : {}),
    ...(run.output !== undefined ? { output: redactTargetText(run.output, run.target) } : {}),
  };
}

function showEvent(summary: EventSummary): EventSummary {
  return { ...summary, runs: summary.runs.map(showRun) };
}

function showTarget(target: TargetState): TargetState {
  return {
    ...target,
    name: redactTarget(target.name),
    ...(target.lastError !== undefined ? { lastError: redactTargetText(target.lastError, target.name) } : {}),
  };
}

function showDeadLetter(letter: DeadLetter): DeadLetter {
  return {
    ...letter,
    target: redactTarget(letter.target),
    lastError: redactTargetText(letter.lastError, letter.target),
  };
}

function showNotice(notice: DeliveryNotice): DeliveryNotice {
  return { ...notice, target: redactTarget(notice.target) };
}

function refuse(res: ServerResponse, req: IncomingMessage, refusal: LocalRefusal): true {
  sendJson(res, refusal.status, { error: refusal.message, code: refusal.code });
  req.resume();
  return true;
}

/**
 * The admin API under `/admin/api`: JSON over a bearer token (docs/admin.md). Returns a request handler that
 * answers and returns true for requests under the prefix, false for any other path.
 */
/** The admin API: its request handler and the live stream it serves. */
export interface AdminApi {
  handle(req: IncomingMessage, res: ServerResponse, pathname: string): boolean;
  readonly stream: AdminStream;
}

export function createAdminApi(options: AdminApiOptions): AdminApi {
  const { engine, history } = options;
  // Without a token, web pages the operator visits must not reach the API (local-guard.ts).
  const localGuard = options.token === undefined ? new LocalGuard(options.host) : undefined;
  const allowList = new TargetAllowList(options.allowedUrls);
  const stream = new AdminStream({
    runs: engine.runs,
    delivery: engine.delivery,
    endpoints: options.endpoints,
    showRun,
    showNotice,
  });

  const delivery = (): DeliveryControl => engine.delivery;

  /**
   * A target named in a path or body, by its label as the API shows it: its real name. The real name itself
   * is not accepted, so a secret in a URL never has to be sent (and land in an access log) to act on it.
   */
  const targetNamed = (shown: string): string => {
    const target = delivery()
      .targets()
      .find((candidate) => redactTarget(candidate.name) === shown);
    if (target === undefined) throw new ApiError(404, 'unknown target');
    return target.name;
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const method = req.method ?? 'GET';
    const parts = url.pathname
      .slice(adminApiPrefix.length)
      .split('/')
      .filter((part) => part !== '')
      .map((part) => {
        try {
          return decodeURIComponent(part);
        } catch {
          throw new ApiError(400, 'malformed path');
        }
      });
    const [resource, id, action, extra] = parts;
    const params = url.searchParams;
    const get = method === 'GET' || method === 'HEAD';
    if (extra !== undefined) throw new ApiError(404, 'not found');

    if (resource === 'stream' && id === undefined && get) {
      stream.attach(req, res);
      return;
    }
    if (resource === 'uploads' && action === undefined && get) {
      if (id === undefined) {
        const state = (params.get('state') ?? 'all') as UploadState;
        if (!['in_progress', 'finished', 'all'].includes(state)) {
          throw new ApiError(400, 'state must be in_progress, finished or all');
        }
        sendJson(res, 200, {
          uploads: await listUploads(options.endpoints(), state, limitParam(params, 100)),
        });
        return;
      }
      const upload = await findUpload(options.endpoints(), id);
      if (upload === undefined) throw new ApiError(404, 'unknown upload');
      const events = await history.events({ uploadId: id, limit: limitParam(params, 100) });
      sendJson(res, 200, { upload, events: events.map(showEvent) });
      return;
    }
    if (resource === 'events') {
      if (id === undefined && get) {
        const status = textParam(params, 'status');
        if (status !== undefined && !(eventStatuses as readonly string[]).includes(status)) {
          throw new ApiError(400, `status must be one of ${eventStatuses.join(', ')}`);
        }
        const uploadId = textParam(params, 'uploadId');
        const event = textParam(params, 'event');
        const since = timeParam(params, 'since');
        const query: EventQuery = {
          limit: limitParam(params, 100),
          ...(uploadId !== undefined ? { uploadId } : {}),
          ...(event !== undefined ? { event } : {}),
          ...(status !== undefined ? { status: status as EventStatus } : {}),
          ...(since !== undefined ? { since } : {}),
        };
        sendJson(res, 200, { events: (await history.events(query)).map(showEvent) });
        return;
      }
      if (id !== undefined && action === undefined && get) {
        const summary = await history.event(id);
        if (summary === undefined) throw new ApiError(404, 'unknown event');
        sendJson(res, 200, showEvent(summary));
        return;
      }
      if (id !== undefined && action === 'resend' && method === 'POST') {
        const body = await readJson(req);
        const target = optionalString(body, 'target');
        const requeued = await delivery().resend(id, target === undefined ? undefined : targetNamed(target));
        if (requeued === 0) throw new ApiError(404, 'nothing to resend for this event');
        sendJson(res, 202, { requeued });
        return;
      }
    }
    if (resource === 'resend' && id === undefined && method === 'POST') {
      const body = await readJson(req);
      const since = body.since;
      if (typeof since !== 'number' || !Number.isFinite(since) || since < 0) {
        throw new ApiError(400, 'since must be Unix milliseconds');
      }
      const target = optionalString(body, 'target');
      const requeued = await delivery().recover(
        since,
        target === undefined ? undefined : targetNamed(target),
      );
      sendJson(res, 202, { requeued });
      return;
    }
    if (resource === 'dead-letters' && id === undefined && get) {
      const target = textParam(params, 'target');
      const uploadId = textParam(params, 'uploadId');
      const since = timeParam(params, 'since');
      const letters = await delivery().deadLetters({
        ...(target !== undefined ? { target: targetNamed(target) } : {}),
        ...(uploadId !== undefined ? { uploadId } : {}),
        ...(since !== undefined ? { since } : {}),
      });
      sendJson(res, 200, { deadLetters: letters.map(showDeadLetter) });
      return;
    }
    if (resource === 'targets') {
      if (id === undefined && get) {
        sendJson(res, 200, { targets: delivery().targets().map(showTarget) });
        return;
      }
      if (id === undefined && method === 'POST') {
        const body = await readJson(req);
        const url = optionalString(body, 'url');
        if (url === undefined) throw new ApiError(400, 'url is required');
        const events = optionalStrings(body, 'events');
        // A run-time target joins the post chains only: a blocking hook added by an API call could refuse
        // every upload, and its answer would have to be trusted like configuration (docs/admin.md).
        if (events?.some((event) => !isUploadEventName(event) || isBlockingEvent(event))) {
          refuse(res, req, targetEventRefusal);
          return;
        }
        const secrets = optionalStrings(body, 'secrets');
        // Standard Webhooks secrets: `whsec_` and base64. The secret itself is never echoed.
        if (secrets?.some((secret) => !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret))) {
          throw new ApiError(400, 'secrets must be whsec_<base64> strings');
        }
        await checkRuntimeTarget(url, {
          allowList,
          allowPrivate: options.allowPrivateTargets,
          ...(options.resolve !== undefined ? { resolve: options.resolve } : {}),
        });
        const added = delivery().addHttpTarget({
          url,
          ...(events !== undefined ? { events } : {}),
          ...(secrets !== undefined ? { secrets } : {}),
        });
        options.logger.info({ target: redactTarget(added.name) }, 'hook target added through the admin API');
        sendJson(res, 201, showTarget(added));
        return;
      }
      if (id !== undefined && (action === 'disable' || action === 'enable') && method === 'POST') {
        const state = delivery().setTargetEnabled(targetNamed(id), action === 'enable');
        if (state === undefined) throw new ApiError(404, 'unknown target');
        options.logger.info(
          { target: redactTarget(state.name) },
          `hook target ${action}d through the admin API`,
        );
        sendJson(res, 200, showTarget(state));
        return;
      }
      if (id !== undefined && action === 'ping' && method === 'POST') {
        sendJson(res, 200, showRun(await delivery().ping(targetNamed(id))));
        return;
      }
    }
    const namedHooks = options.namedHooks;
    if (
      (resource === 'hooks' || resource === 'bindings') &&
      namedHooks !== undefined &&
      action === undefined
    ) {
      if (id === undefined && get) {
        const listed = await namedHooks.list();
        sendJson(
          res,
          200,
          resource === 'hooks'
            ? listed
            : {
                version: listed.version,
                bindings: listed.bindings,
                ...(listed.problems !== undefined ? { problems: listed.problems } : {}),
              },
        );
        return;
      }
      if (resource === 'hooks' && id !== undefined && method === 'PUT') {
        const declaration = await readJson(req);
        // The URL guard of run-time targets (allow-list, private addresses), once the declaration is valid.
        const created = await namedHooks.putHook(id, declaration, async () => {
          if (typeof declaration.url !== 'string') return;
          await checkRuntimeTarget(declaration.url, {
            allowList,
            allowPrivate: options.allowPrivateTargets,
            ...(options.resolve !== undefined ? { resolve: options.resolve } : {}),
          });
        });
        options.logger.info(
          { hook: id },
          `named hook ${created ? 'created' : 'replaced'} through the admin API`,
        );
        sendJson(res, created ? 201 : 200, { name: id, created });
        return;
      }
      if (resource === 'hooks' && id !== undefined && method === 'DELETE') {
        await namedHooks.deleteHook(id);
        options.logger.info({ hook: id }, 'named hook deleted through the admin API');
        res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
        return;
      }
      if (
        resource === 'bindings' &&
        (method === 'POST' ? id === undefined : id !== undefined) &&
        (method === 'POST' || method === 'PUT')
      ) {
        const binding = await namedHooks.putBinding(id, await readJson(req));
        options.logger.info(
          { binding: binding.id, hook: binding.hook },
          `binding ${id === undefined ? 'added' : 'replaced'} through the admin API`,
        );
        sendJson(res, id === undefined ? 201 : 200, binding);
        return;
      }
      if (resource === 'bindings' && id !== undefined && method === 'DELETE') {
        await namedHooks.deleteBinding(id);
        options.logger.info({ binding: id }, 'binding deleted through the admin API');
        res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
        return;
      }
    }
    if (resource === 'stats' && id === undefined && get) {
      const outbox = outboxStatsOf(engine);
      sendJson(res, 200, {
        outbox: { ...outbox, oldestPendingAt: outbox.oldestPendingAt ?? null },
        runs: engine.runs.totals(),
      });
      return;
    }
    throw new ApiError(404, 'not found');
  };

  return {
    stream,
    handle(req, res, pathname) {
      if (pathname !== adminApiPrefix && !pathname.startsWith(`${adminApiPrefix}/`)) return false;
      // Without a token: Host, Origin and JSON checks first (local-guard.ts). With one: the token first, then
      // only the type of a body.
      const guarded = localGuard?.check(req);
      if (guarded !== undefined) return refuse(res, req, guarded);
      if (!isAuthorized(req, options.token)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        sendJson(res, 401, { error: 'unauthorized' });
        req.resume();
        return true;
      }
      const badBody = localGuard === undefined ? checkBodyType(req) : undefined;
      if (badBody !== undefined) return refuse(res, req, badBody);
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      route(req, res, url).catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (error instanceof ApiError) {
          sendJson(res, error.status, { error: error.message });
          return;
        }
        if (error instanceof TargetRefusedError) {
          sendJson(res, error.status, { error: error.message });
          return;
        }
        if (error instanceof NamedHooksError) {
          const { status, message } = errorCatalogue[error.code];
          sendJson(res, status, {
            error: message,
            code: error.code,
            ...(error.problems.length > 0 ? { problems: error.problems } : {}),
          });
          return;
        }
        options.logger.error({ err: error, path: pathname }, 'admin API request failed');
        sendJson(res, 500, { error: 'internal error' });
      });
      return true;
    },
  };
}
