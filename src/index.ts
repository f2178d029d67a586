import type { IncomingMessage, ServerResponse } from 'node:http';
import { type FetchPeer, toFetchHandler } from './adapters/fetch.ts';
import { checkLibraryOptions } from './config/library-options.ts';
import { type Config, configFromOptions } from './config/load.ts';
import type { WharfOptions } from './config/option-types.ts';
import { createLogger, type Logger } from './logger.ts';
import { createTusRequestHandler } from './tus/handler.ts';
import { composeUploadService } from './uploads/compose.ts';
import type { UploadObserver } from './uploads/events.ts';
import type { UploadService } from './uploads/service.ts';

export type { FetchPeer } from './adapters/fetch.ts';
export { composeWharf, startServer } from './compose.ts';
export type { Config } from './config/load.ts';
export { ConfigError } from './config/option-table.ts';
export type { WharfOptions } from './config/option-types.ts';
export { type ErrorCode, WharfError } from './errors.ts';
export type { HookAnswer, HookHttpResponse, UploadChange } from './hooks/chain/answers.ts';
export { HookError } from './hooks/modules/hook-error.ts';
export type {
  ActionHandler,
  FilterHandler,
  FilterPayload,
  HookMeta,
  HookModule,
  HookModuleContext,
  HookRegistrar,
  HookRouter,
  InitEventName,
  InitHandler,
  InitMeta,
  ModuleEmitter,
  ModuleEventListener,
  ModuleUpload,
  ModuleUploads,
  RouteHandler,
  ScheduledRun,
  ScheduleHandler,
} from './hooks/modules/types.ts';
export type { UploadRecord } from './info/upload-record.ts';
export type { WharfServer } from './server/http-server.ts';
export * from './webhooks.ts';

export interface TusHandlerOptions {
  /**
   * Any option of the option table by its camelCase key, e.g. `{ url: '/files', dataDir: './uploads',
   * maxFileSize: '1GiB' }`. Defaults are the CLI's; an unknown key or a bad value throws a ConfigError with the
   * CLI's message (an unknown key names the nearest known one).
   */
  readonly options?: WharfOptions;
  readonly logger?: Logger;
  readonly observer?: UploadObserver;
}

/** A tus handler usable in node:http, Express and Fastify, plus the service behind it. */
export interface TusHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  readonly config: Config;
  readonly service: UploadService;
  /**
   * Interrupts in-flight bodies (their bytes are kept), then closes every connection the handler opened
   * (Redis, PostgreSQL, the object store's client) and the files it holds, as the server's shutdown does.
   * Call it after the HTTP server stopped taking requests; calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/**
 * Creates the tus request handler.
 * @example
 * const tus = createTusHandler({ options: { url: '/files', dataDir: './uploads' } });
 * http.createServer(tus).listen(1081);
 * // Express: app.all(['/files', '/files/*id'], tus);
 */
export function createTusHandler(handlerOptions: TusHandlerOptions = {}): TusHandler {
  const config = configFromOptions(checkLibraryOptions(handlerOptions.options ?? {}));
  const logger = handlerOptions.logger ?? createLogger(config.logLevel);
  const service = composeUploadService(config, {
    logger,
    ...(handlerOptions.observer ? { observer: handlerOptions.observer } : {}),
  });
  const ready = service.prepare();
  const shutdown = new AbortController();
  const handle = createTusRequestHandler({ settings: config, service, shutdown: shutdown.signal, logger });
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    ready
      .then(() => handle(req, res))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'tus handler failed');
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shutdown.abort();
      // Connections are opened by prepare(): wait for it (a failed one still may have opened some).
      await ready.catch(() => undefined);
      await service.close();
    })();
    return closing;
  };
  return Object.assign(handler, { config, service, close });
}

/** A Web-standard tus handler (Hono, Bun, Deno, Next.js route handlers), plus the service behind it. */
export interface FetchHandler {
  /** `peer` is the client's address when the host gives it (Bun's `server.requestIP()`, Deno's `remoteAddr`). */
  (request: Request, peer?: FetchPeer): Promise<Response>;
  readonly config: Config;
  readonly service: UploadService;
  /** Interrupts in-flight bodies (their bytes are kept). */
  close(): void;
}

/**
 * Creates the tus handler as `(Request) => Promise<Response>`. Both bodies stream: the request's is read as the
 * store writes, the download is a ReadableStream fed as the reader pulls; nothing is held whole in memory.
 * @example
 * const tus = createFetchHandler({ options: { url: '/files', dataDir: './uploads' } });
 * app.all('/files/*', (c) => tus(c.req.raw));   // Hono
 * export { tus as GET, tus as POST, tus as PATCH, tus as HEAD, tus as DELETE, tus as OPTIONS }; // Next.js
 */
export function createFetchHandler(handlerOptions: TusHandlerOptions = {}): FetchHandler {
  const tus = createTusHandler(handlerOptions);
  const handle = toFetchHandler(tus);
  return Object.assign((request: Request, peer?: FetchPeer) => handle(request, peer), {
    config: tus.config,
    service: tus.service,
    close: tus.close,
  });
}
