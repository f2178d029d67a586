import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Backend } from '../backends/backend.ts';
import { jobLeasesOn } from '../backends/shared-job-leases.ts';
import type { Config } from '../config/load.ts';
import type { HookEngine } from '../hooks/engine.ts';
import type { RunHistory } from '../hooks/history/run-history.ts';
import type { HookModules, ScheduleGate } from '../hooks/modules/registry.ts';
import type { Locker } from '../locks/locker.ts';
import type { Logger } from '../logger.ts';
import { createServer } from '../node-http.ts';
import { type RequestHandler, routeTusPath } from '../tus/handler.ts';
import type { UploadObserver } from '../uploads/events.ts';
import type { BackendHealth, UploadService } from '../uploads/service.ts';
import { isAuthorized } from './admin/auth.ts';
import type { DashboardHandler } from './admin/dashboard.ts';
import type { NamedHooksHealth } from './admin/named-hooks.ts';
import type { AdminApi } from './admin/routes.ts';
import { answerClientErrors } from './client-errors.ts';
import { createCors } from './cors.ts';
import type { Metrics } from './metrics.ts';

export interface WharfServer {
  readonly server: Server;
  readonly service: UploadService;
  /** The port actually bound (useful with --port 0). */
  readonly port: number;
  /** The hooks engine (its run log shows every hook run). */
  readonly hooks: HookEngine;
  /** The hook modules loaded from `--hooks-modules-dir` (the set new requests use: a reload replaces it). */
  readonly modules: HookModules;
  /** The persisted hook run history (with --admin). */
  readonly history: RunHistory | undefined;
  /** Stops accepting, interrupts bodies (keeping their bytes), waits up to the shutdown timeout. */
  close(): Promise<void>;
  /**
   * Loads the hook modules afresh and reads `--config` again, then replaces the modules (filters, actions,
   * routes, schedules) and the named hooks and bindings together (SIGHUP): requests in flight finish with the
   * hooks they started with. Rejects, keeping every running hook and module, when a module or the file cannot
   * be used.
   */
  reload(): Promise<ReloadResult>;
}

/** What a reload replaced. */
export interface ReloadResult {
  readonly file?: string;
  readonly version: number;
  readonly hooks: number;
  readonly bindings: number;
  /** The entry files of the hook modules now running (reloaded). */
  readonly modules?: readonly string[];
}

export interface StartOptions {
  readonly logger: Logger;
  readonly locker?: Locker;
  readonly observer?: UploadObserver;
  /**
   * Run the expiration sweep and hook module schedules in this process (in a cluster, only the worker in slot 1
   * does). With a shared Redis or PostgreSQL, each run also takes a cluster-wide lease, so that one instance
   * runs it.
   */
  readonly sweep?: boolean;
}

/**
 * /health is readiness: 503 while shutting down or while a shared backend (Redis, PostgreSQL) does not
 * answer, with each backend's state. /health/live is liveness: the process serves requests.
 * Named hooks stored through the admin API that are not loaded or do not fit make it `degraded` with their
 * state, still 200: uploads are refused (503) but downloads are served, and the admin API that repairs them
 * must stay reachable through the load balancer (with a shared store every instance is in the same state).
 */
function sendHealth(
  res: ServerResponse,
  shuttingDown: boolean,
  backends: readonly BackendHealth[] | undefined,
  namedHooks: NamedHooksHealth | undefined,
): void {
  const down = backends?.some((backend) => !backend.ok) ?? false;
  const degraded = namedHooks !== undefined && namedHooks.status !== 'ok';
  const status = shuttingDown ? 'stopping' : down ? 'unavailable' : degraded ? 'degraded' : 'ok';
  const report: Record<string, unknown> = { status };
  if (degraded && !shuttingDown) report.namedHooks = namedHooks;
  if (backends && backends.length > 0) {
    report.backends = Object.fromEntries(
      backends.map((backend) => [
        backend.name,
        backend.ok ? { status: 'ok' } : { status: 'down', error: backend.error },
      ]),
    );
  }
  res.statusCode = status === 'ok' || status === 'degraded' ? 200 : 503;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(report));
}

/** One endpoint of the service: its configuration, upload lifecycle and tus handler. */
export interface ServedEndpoint {
  readonly config: Config;
  readonly service: UploadService;
  readonly tus: RequestHandler;
}

/** What the composition root (src/compose.ts) builds and hands the server. */
export interface ServerParts {
  readonly hooks: HookEngine;
  readonly modules: HookModules;
  readonly history: RunHistory | undefined;
  readonly metrics: Metrics | undefined;
  readonly admin: AdminApi | undefined;
  readonly dashboard: DashboardHandler | undefined;
  /** The default endpoint first. */
  readonly endpoints: readonly ServedEndpoint[];
  /** The default endpoint's shared backend (Redis, PostgreSQL), for job leases; undefined without one. */
  readonly sharedBackend: Backend | undefined;
  /** Aborted when the server starts shutting down (the tus handlers listen to it). */
  readonly shutdown: AbortController;
  /** Disposers run on close, after the hooks engine stopped (run counters, history recording). */
  readonly disposers: readonly (() => void)[];
  /** The state of the named hooks stored through the admin API, for /health. */
  readonly namedHooks?: () => NamedHooksHealth;
  /** The same, after reading the stored version (another instance's change), for the expiration sweep. */
  readonly checkedNamedHooks?: () => Promise<NamedHooksHealth>;
  /** Reloads `--config` (SIGHUP); see {@link WharfServer.reload}. */
  readonly reload?: () => Promise<ReloadResult>;
  /**
   * Loads the hook modules afresh (SIGHUP), bound as the running ones; rejects with a HookModuleError naming
   * the file when one cannot be used. Absent: the modules stay as loaded at start.
   */
  readonly loadModules?: () => Promise<HookModules>;
}

/** Serves what it is handed: health, metrics, admin, module routes, CORS and the tus endpoints. */
export async function serve(config: Config, parts: ServerParts, options: StartOptions): Promise<WharfServer> {
  const { logger } = options;
  const { hooks, history, metrics, admin, dashboard, endpoints, shutdown } = parts;
  // The modules new requests and routes use; a reload replaces them (see `reload` below).
  let modules = parts.modules;
  /** Replaced modules still ending (their isolated runs in flight): shutdown waits for them. */
  const retiring = new Set<Promise<void>>();
  const main = endpoints[0];
  if (main === undefined) throw new Error('no endpoint to serve');
  const service = main.service;
  // Longest path first, so /files/images wins over /files.
  const routed = [...endpoints].sort((a, b) => b.config.basePath.length - a.config.basePath.length);
  const tusFor = (pathname: string) =>
    routed.find((endpoint) => routeTusPath(pathname, endpoint.config.basePath) !== undefined)?.tus;
  await modules.init('routes.before');
  await modules.init('routes.after');
  const cors = createCors(config.corsOrigins, config.hooks.httpProxyHeaders);
  const healthPath = '/health';
  const livenessPath = '/health/live';

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const pathname = query === -1 ? url : url.slice(0, query);
    const logAccess =
      config.accessLog && (config.healthAccessLog || (pathname !== healthPath && pathname !== livenessPath));
    if (logAccess || metrics !== undefined) {
      // 'close' comes once per response: `on` spares the wrapper `once` makes and removes per request.
      res.on('close', () => {
        metrics?.request(req.method, res.statusCode);
        if (!logAccess) return;
        logger.info(
          {
            method: req.method,
            url: req.url,
            status: res.statusCode,
            durationMs: Math.round((performance.now() - started) * 10) / 10,
            remoteAddr: req.socket.remoteAddress,
            finished: res.writableFinished,
          },
          'access',
        );
      });
    }
    if (
      (pathname === healthPath || pathname === livenessPath) &&
      (req.method === 'GET' || req.method === 'HEAD')
    ) {
      const stopping = shutdown.signal.aborted;
      if (pathname === livenessPath || stopping) {
        sendHealth(res, stopping, undefined, undefined);
        return;
      }
      service
        .health()
        .then((backends) => sendHealth(res, false, backends, parts.namedHooks?.()))
        .catch((error: unknown) => {
          logger.error({ err: error }, 'health check failed');
          res.destroy();
        });
      return;
    }
    if (metrics !== undefined && pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      if (config.admin.metricsToken !== undefined && !isAuthorized(req, config.admin.metricsToken)) {
        res.writeHead(401, {
          'WWW-Authenticate': 'Bearer',
          'Content-Type': 'text/plain; charset=utf-8',
          'Cache-Control': 'no-store',
        });
        res.end(
          req.method === 'HEAD'
            ? undefined
            : 'unauthorized: /metrics needs Authorization: Bearer <--metrics-token>\n',
        );
        return;
      }
      metrics
        .exposition()
        .then((text) => {
          res.writeHead(200, {
            'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
            'Cache-Control': 'no-store',
            'Content-Length': Buffer.byteLength(text),
          });
          res.end(req.method === 'HEAD' ? undefined : text);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'metrics failed');
          if (!res.headersSent) res.writeHead(503, { 'Cache-Control': 'no-store' });
          res.end();
        });
      return;
    }
    if (admin?.handle(req, res, pathname)) return;
    if (dashboard?.(req, res, pathname)) return;
    if (modules.routesBefore.handle(req, res, logger)) return;
    if (cors(req, res)) return;
    const tus = tusFor(pathname);
    if (tus === undefined && modules.routesAfter.handle(req, res, logger)) return;
    (tus ?? main.tus)(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'unhandled request failure');
      res.destroy();
    });
  };

  const server = createServer({
    maxHeaderSize: config.maxHeaderSize,
    // Uploads can take hours: no total request time limit. Stalls are caught by --network-timeout instead.
    requestTimeout: 0,
    headersTimeout: 60_000,
    keepAliveTimeout: 5_000,
  });
  server.on('request', handle);
  answerClientErrors(server);
  // Headers are validated before the client is told to send the body (Expect: 100-continue).
  server.on('checkContinue', handle);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  try {
    await modules.init('server.start');
  } catch (error) {
    server.close();
    await hooks.close();
    throw error;
  }
  // Like the expiration sweep, schedules run in one process of a cluster, not once per worker; instances that
  // share Redis or PostgreSQL take turns through leases on it, so each run happens once among them.
  const leases = jobLeasesOn(parts.sharedBackend, {
    ttlMs: config.lockTtlMs,
    onError: (error, job) => logger.warn({ err: error, job }, 'a job lease could not be renewed or released'),
  });
  const scheduleGate: ScheduleGate | undefined =
    leases === undefined ? undefined : (job, tick) => leases.claim(job, tick);
  if (options.sweep !== false) modules.startSchedules(scheduleGate);

  /**
   * Loads the modules afresh and runs their route and start handlers before anything changes; then reloads
   * --config; only when both worked are the new modules swapped in (the new schedules start, the old ones
   * stop, the old modules' server.stop runs and their isolated workers end after their runs in flight).
   */
  const reload = async (): Promise<ReloadResult> => {
    const fresh = await parts.loadModules?.();
    if (fresh !== undefined) {
      try {
        await fresh.init('routes.before');
        await fresh.init('routes.after');
        await fresh.init('server.start');
      } catch (error) {
        fresh.stopEmitter();
        throw error;
      }
    }
    let result: ReloadResult;
    try {
      result =
        parts.reload === undefined
          ? { version: hooks.hookSet.version, hooks: 0, bindings: 0 }
          : await parts.reload();
    } catch (error) {
      await fresh?.retire(0);
      throw error;
    }
    if (fresh === undefined) return result;
    const old = modules;
    modules = fresh;
    const set = hooks.replaceModules(fresh, parts.reload === undefined ? undefined : result.version);
    // The old schedules stop (synchronously, first thing retire does) before the new ones start.
    const retired = old.retire(config.hooks.executableTimeoutMs);
    retiring.add(retired);
    void retired.finally(() => retiring.delete(retired));
    if (options.sweep !== false) fresh.startSchedules(scheduleGate);
    return { ...result, version: set.version, modules: [...fresh.modules] };
  };

  let sweeper: NodeJS.Timeout | undefined;
  if (options.sweep !== false && config.uploadExpirationMs > 0 && config.extensions.has('expiration')) {
    let sweeping = false;
    /** Whether the sweep said it waits for the stored named hooks (said once, until it runs again). */
    let waiting = false;
    const sweep = async (): Promise<number> => {
      // The sweep's events (an expired upload is a failure of its finishing) go to the stored named hooks too:
      // while those are unknown or do not fit the config, it waits, as requests that may run hooks are refused
      // (named-hooks.ts), rather than remove uploads that hooks, such as a post-finish failure hook, should hear of.
      const named = await parts.checkedNamedHooks?.();
      if (named !== undefined && named.status !== 'ok') {
        if (!waiting) {
          waiting = true;
          logger.warn(
            { namedHooks: named },
            'the expiration sweep waits: the named hooks stored through the admin API are not in force (not loaded, or not fitting the config); expired uploads are kept until they are',
          );
        }
        return 0;
      }
      if (waiting) {
        waiting = false;
        logger.info(
          'the expiration sweep runs again: the named hooks stored through the admin API are in force',
        );
      }
      // One sweep per interval among the instances: the interval's number names the run.
      const lease = await leases?.claim(
        'expiration-sweep',
        Math.floor(Date.now() / config.expirationSweepIntervalMs),
      );
      if (leases !== undefined && lease === undefined) return 0;
      try {
        const counts = await Promise.all(endpoints.map((endpoint) => endpoint.service.sweepExpired()));
        return counts.reduce((sum, count) => sum + count, 0);
      } finally {
        await lease?.release();
      }
    };
    sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      sweep()
        .then((removed) => {
          if (removed > 0) logger.info({ removed }, 'expired uploads removed');
        })
        .catch((error: unknown) => logger.error({ err: error }, 'expiration sweep failed'))
        .finally(() => {
          sweeping = false;
        });
    }, config.expirationSweepIntervalMs);
    sweeper.unref();
  }

  return {
    server,
    service,
    port,
    hooks,
    get modules() {
      return modules;
    },
    history,
    reload,
    close: async () => {
      admin?.stream.close();
      if (sweeper) clearInterval(sweeper);
      modules.stopSchedules();
      await modules.init('server.stop').catch((error: unknown) => {
        logger.error({ err: error }, 'a hook module failed on server.stop');
      });
      modules.stopEmitter();
      shutdown.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
      await Promise.race([closed, deadline]);
      server.closeAllConnections();
      // Post hooks already accepted get the rest of the shutdown window, then the engine stops.
      await hooks.drain(Math.max(1000, config.shutdownTimeoutMs));
      // Modules a reload replaced end their isolated runs in flight (bounded by the hook timeout) first.
      await Promise.all(retiring);
      await hooks.close();
      for (const dispose of parts.disposers) dispose();
      await history?.close();
      await service.close();
    },
  };
}
