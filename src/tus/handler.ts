import type { IncomingMessage, ServerResponse } from 'node:http';
import { backendFailureIn } from '../backends/backend.ts';
import { WharfError } from '../errors.ts';
import type { BodyMeter } from '../uploads/body-meter.ts';
import type { RequestDescription } from '../uploads/events.ts';
import type { UploadService } from '../uploads/service.ts';
import type { TusExchange, TusSettings } from './context.ts';
import { tusVersion } from './headers.ts';
import { handleDraftRequest } from './ietf/handler.ts';
import { requestedDraft } from './ietf/interop.ts';
import { handleDelete } from './methods/delete.ts';
import { handleGet } from './methods/get.ts';
import { handleHead } from './methods/head.ts';
import { handleOptions } from './methods/options.ts';
import { handlePatch } from './methods/patch.ts';
import { handlePost } from './methods/post.ts';
import { describeRequest } from './request-info.ts';
import { sendError } from './respond.ts';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface TusHandlerDependencies {
  readonly settings: TusSettings;
  readonly service: UploadService;
  readonly shutdown: AbortSignal;
  readonly logger: {
    error(object: object, message: string): void;
    info(object: object, message: string): void;
    warn(object: object, message: string): void;
  };
  /**
   * The named hooks a request starting now runs with (taken once, at its start, so a change never reaches a
   * request in flight); a promise when the current set must first be checked against a shared store.
   */
  readonly hookSet?: (
    method: string,
  ) => RequestDescription['hookSet'] | Promise<RequestDescription['hookSet']>;
}

const uploadMethods = 'OPTIONS, HEAD, PATCH, GET, DELETE';

/**
 * The tus extensions an operator turned off that the IETF draft's requests still do: the draft has a body on the
 * creation, a length known only at the end and its own digest (Content-Digest) in its core, so its handler does not
 * refuse them (creation, termination and getting it does honour).
 */
function unhonouredByTheDraft(settings: TusHandlerDependencies['settings']): string[] {
  if (settings.ietfDraft === false) return [];
  return (['creation-with-upload', 'creation-defer-length', 'checksum'] as const).filter(
    (name) => !settings.extensions.has(name),
  );
}

const slash = 0x2f;
const collection = { kind: 'collection' } as const;

/** Where a path points: the collection, one upload, or outside the endpoint. */
export function routeTusPath(
  pathname: string,
  basePath: string,
): { kind: 'collection' } | { kind: 'upload'; id: string } | undefined {
  if (!pathname.startsWith(basePath)) return undefined;
  if (pathname.length === basePath.length) return collection;
  if (pathname.charCodeAt(basePath.length) !== slash) return undefined;
  // Leading and trailing slashes are dropped by index: a regular expression per request cost more than the rest.
  let start = basePath.length + 1;
  let end = pathname.length;
  while (start < end && pathname.charCodeAt(start) === slash) start++;
  while (end > start && pathname.charCodeAt(end - 1) === slash) end--;
  if (start === end) return collection;
  const rest = pathname.slice(start, end);
  if (!rest.includes('%')) return { kind: 'upload', id: rest };
  let id: string;
  try {
    id = decodeURIComponent(rest);
  } catch {
    return { kind: 'upload', id: '' };
  }
  return { kind: 'upload', id };
}

function requireExtension(
  exchange: TusExchange,
  name: Parameters<TusSettings['extensions']['has']>[0],
): void {
  if (!exchange.settings.extensions.has(name)) {
    throw new WharfError('ERR_EXTENSION_DISABLED', {
      message: `the ${name} extension is disabled`,
      headers: { Allow: allowedMethods(exchange) },
    });
  }
}

/** The methods this endpoint answers on the requested resource: a disabled extension's method is not listed. */
function allowedMethods(exchange: TusExchange): string {
  const { extensions } = exchange.settings;
  if (exchange.uploadId === undefined) return extensions.has('creation') ? 'OPTIONS, POST' : 'OPTIONS';
  return uploadMethods
    .split(', ')
    .filter(
      (method) =>
        (method !== 'DELETE' || extensions.has('termination')) &&
        (method !== 'GET' || extensions.has('getting')),
    )
    .join(', ');
}

async function dispatch(exchange: TusExchange): Promise<void> {
  const { method, uploadId } = exchange;
  if (method === 'OPTIONS') return handleOptions(exchange);
  // Tus-Resumable is checked on every tus request (HEAD included); GET is plain HTTP download.
  if (method !== 'GET' && exchange.req.headers['tus-resumable'] !== tusVersion) {
    throw new WharfError('ERR_UNSUPPORTED_VERSION');
  }
  if (uploadId === undefined) {
    if (method !== 'POST')
      throw new WharfError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: allowedMethods(exchange) } });
    requireExtension(exchange, 'creation');
    return handlePost(exchange);
  }
  switch (method) {
    case 'HEAD':
      return handleHead(exchange, uploadId);
    case 'PATCH':
      return handlePatch(exchange, uploadId);
    case 'DELETE':
      requireExtension(exchange, 'termination');
      return handleDelete(exchange, uploadId);
    case 'GET':
      requireExtension(exchange, 'getting');
      return handleGet(exchange, uploadId);
    default:
      throw new WharfError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: allowedMethods(exchange) } });
  }
}

/** Upper-cased, without a call when it is already (node:http's req.method always is; toUpperCase is a runtime call). */
function upperCase(method: string): string {
  for (let index = 0; index < method.length; index++) {
    const code = method.charCodeAt(index);
    if (code >= 0x61 || code < 0x41) return method.toUpperCase();
  }
  return method;
}

/** The answer was cut because the client went away while it was being sent (pipeline's premature close). */
function closedByClient(res: ServerResponse, error: unknown): boolean {
  return (
    res.destroyed &&
    !res.writableFinished &&
    (error as { code?: unknown } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
  );
}

/**
 * The tus protocol as one `(req, res)` handler. Requests outside the base path get 404, so it can be
 * mounted as-is in node:http, Express or Fastify (`reply.hijack()`).
 */
export function createTusRequestHandler(dependencies: TusHandlerDependencies): RequestHandler {
  const { settings, shutdown } = dependencies;
  const unhonoured = unhonouredByTheDraft(settings);
  if (unhonoured.length > 0) {
    dependencies.logger.warn(
      { basePath: settings.basePath, extensions: unhonoured },
      `tus extensions turned off here still apply to IETF draft requests (${unhonoured.join(', ')}): the draft ` +
        'always takes a body with the creation, a length given later and Content-Digest; --ietf-draft=false turns the draft off',
    );
  }
  // One shutdown listener for all bodies, rather than one per request on a shared signal.
  const activeBodies = new Set<BodyMeter>();
  const shuttingDown = (): boolean => shutdown.aborted;
  shutdown.addEventListener(
    'abort',
    () => {
      for (const body of activeBodies) body.interrupt(new WharfError('ERR_SERVER_SHUTDOWN'));
    },
    { once: true },
  );
  return async (req, res) => {
    res.setHeader('Tus-Resumable', tusVersion);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const override = req.headers['x-http-method-override'];
    const method = upperCase(
      typeof override === 'string' && override !== '' ? override : (req.method ?? 'GET'),
    );
    const isHead = method === 'HEAD';
    try {
      const pinned = dependencies.hookSet?.(method);
      const hookSet = pinned instanceof Promise ? await pinned : pinned;
      // Express strips its mount path from req.url; originalUrl keeps the full path.
      const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
      const query = url.indexOf('?');
      const pathname = query === -1 ? url : url.slice(0, query);
      const route = routeTusPath(pathname, settings.basePath);
      if (!route) throw new WharfError('ERR_NOT_FOUND');
      // Upload-Draft-Interop-Version marks the IETF draft; without it (or with the draft off) it is tus 1.0.
      const draft = settings.ietfDraft === false ? undefined : requestedDraft(req);
      if (draft === 'unsupported' && req.headers['tus-resumable'] === undefined) {
        res.removeHeader('Tus-Resumable');
        throw new WharfError('ERR_IETF_INTEROP_VERSION');
      }
      const rules = draft === 'unsupported' ? undefined : draft;
      const exchange: TusExchange = {
        req,
        res,
        method,
        uploadId: route.kind === 'upload' ? route.id : undefined,
        settings,
        service: dependencies.service,
        describeRequest: describeRequest(
          req,
          method,
          settings.behindProxy,
          rules === undefined ? 'tus-v1' : 'ietf-draft',
          res,
          hookSet,
        ),
        activeBodies,
        shuttingDown,
      };
      if (rules !== undefined) await handleDraftRequest(exchange, rules);
      else await dispatch(exchange);
    } catch (error) {
      const backendFailure = backendFailureIn(error);
      if (closedByClient(res, error)) {
        // A download the client stopped reading (a player seeking, a cancelled fetch) is routine, not a fault.
        dependencies.logger.info(
          { method, url: req.url },
          'client closed the connection before the answer ended',
        );
      } else if (backendFailure) {
        // Named, password masked; a warning: nothing is lost and the client retries.
        dependencies.logger.warn(
          {
            backend: backendFailure.backend,
            address: backendFailure.address,
            reason: backendFailure.message,
            method,
            url: req.url,
          },
          `${backendFailure.backend} unavailable: answered 503 (423 to HEAD) with Retry-After`,
        );
      } else if (
        error instanceof WharfError &&
        (error.code === 'ERR_NAMED_HOOKS_UNAVAILABLE' || error.code === 'ERR_NAMED_HOOKS_UNFIT')
      ) {
        // Not logged per request: the load's retries log the cause, the read of an unfit document its problems
        // (server/admin/named-hooks.ts).
      } else if (!(error instanceof WharfError) || error.status >= 500) {
        dependencies.logger.error({ err: error, method, url: req.url }, 'request failed');
      }
      sendError(req, res, error, isHead);
    }
  };
}
