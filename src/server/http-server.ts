import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobLeasesOn } from '../backends/shared-job-leases.ts';
import { loadWharfFile } from '../config/config-file.ts';
import type { Config } from '../config/load.ts';
import { HookEngine } from '../hooks/engine.ts';
import { loadHookModules } from '../hooks/modules/loader.ts';
import type { HookModules } from '../hooks/modules/registry.ts';
import { type RunHistory, recordRuns } from '../hooks/run-history.ts';
import { checkConfiguredTarget, TargetAllowList } from '../hooks/target-guard.ts';
import type { Locker } from '../locks/locker.ts';
import type { Logger } from '../logger.ts';
import { createTusRequestHandler, routeTusPath } from '../tus/handler.ts';
import { allActivity, type UploadActivity } from '../uploads/activity.ts';
import { composeUploadService } from '../uploads/compose.ts';
import type { UploadObserver } from '../uploads/events.ts';
import { HookObserver } from '../uploads/hook-bridge.ts';
import { moduleUploadsOf } from '../uploads/module-uploads.ts';
import type { BackendHealth, UploadService } from '../uploads/service.ts';
import { composeRunHistory, composeUploadState } from '../uploads/shared-state.ts';
import { isAuthorized } from './admin/auth.ts';
import { createDashboardHandler } from './admin/dashboard.ts';
import { outboxStatsOf } from './admin/delivery.ts';
import { LocalGuard } from './admin/local-guard.ts';
import { createAdminApi } from './admin/routes.ts';
import { answerClientErrors } from './client-errors.ts';
import { createCors } from './cors.ts';
import { endpointConfigs } from './endpoints.ts';
import { Metrics } from './metrics.ts';

export interface WharfServer {
  readonly server: Server;
  readonly service: UploadService;
  /** The port actually bound (useful with --port 0). */
  readonly port: number;
  /** The hooks engine (its run log shows every hook run). */
  readonly hooks: HookEngine;
  /** The hook modules loaded from `--hooks-modules-dir`. */
  readonly modules: HookModules;
  /** The persisted hook run history (with --admin). */
  readonly history: RunHistory | undefined;
  /** Stops accepting, interrupts bodies (keeping their bytes), waits up to the shutdown timeout. */
  close(): Promise<void>;
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
 */
function sendHealth(
  res: ServerResponse,
  shuttingDown: boolean,
  backends: readonly BackendHealth[] | undefined,
): void {
  const down = backends?.some((backend) => !backend.ok) ?? false;
  const status = shuttingDown ? 'stopping' : down ? 'unavailable' : 'ok';
  const report: Record<string, unknown> = { status };
  if (backends && backends.length > 0) {
    report.backends = Object.fromEntries(
      backends.map((backend) => [
        backend.name,
        backend.ok ? { status: 'ok' } : { status: 'down', error: backend.error },
      ]),
    );
  }
  res.statusCode = status === 'ok' ? 200 : 503;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(report));
}

function activityOption(activity: UploadActivity | undefined): { activity?: UploadActivity } {
  return activity === undefined ? {} : { activity };
}

/** Starts the HTTP server: health, CORS, access log, and the tus endpoint. */
export async function startServer(config: Config, options: StartOptions): Promise<WharfServer> {
  const { logger } = options;
  // Modules get the uploads service in their context, but the service's observer needs the modules first.
  let composed: UploadService | undefined;
  const uploads = moduleUploadsOf(() => {
    if (composed === undefined) throw new Error('the uploads service is not ready yet');
    return composed;
  });
  const modules = await loadHookModules(
    config.hooksModulesDir,
    (name) => ({ logger: logger.child({ module: name }), config, env: config.env, uploads, args: {} }),
    logger,
  );
  if (modules.modules.length > 0) logger.info({ modules: modules.modules }, 'hook modules loaded');
  const wharfFile =
    config.configFile === undefined
      ? undefined
      : await loadWharfFile(config.configFile, config.basePath, config.hooks);
  // Configured HTTP hooks must fit --hooks-allowed-urls (the flag-defined ones were checked with the options).
  const allowList = new TargetAllowList(config.admin.allowedUrls);
  for (const hook of wharfFile?.hooks ?? []) {
    if (hook.transport === 'http' && hook.url !== undefined) checkConfiguredTarget(hook.url, allowList);
  }
  // The default endpoint's state: its shared backend (Redis, PostgreSQL) also holds the hooks outbox.
  const mainState = composeUploadState(config);
  const hooks = new HookEngine(config.hooks, logger, {
    modules,
    ...(mainState.outboxStore !== undefined ? { outboxStore: mainState.outboxStore } : {}),
    ...(wharfFile !== undefined ? { pipeline: wharfFile } : {}),
  });
  const shutdown = new AbortController();
  const metrics = config.admin.metrics ? new Metrics({ processMetrics: true }) : undefined;
  // Under --workers, /metrics answers the sum over every worker.
  if (config.workers > 1) metrics?.joinCluster();
  const stopCountingRuns =
    metrics === undefined ? undefined : hooks.runs.subscribe((run) => metrics.run(run));
  metrics?.outboxFrom(() => outboxStatsOf(hooks));
  // The run history is kept only for the admin API: nothing else reads it.
  let history: RunHistory | undefined;
  let stopRecording: (() => void) | undefined;
  if (config.admin.enabled) {
    history = composeRunHistory(config, mainState, (error, dropped) => {
      logger.warn({ err: error, dropped }, 'hook run history: a batch could not be written');
    });
    await history.open();
    stopRecording = recordRuns(hooks.runs, history);
  }
  const admin =
    history === undefined
      ? undefined
      : createAdminApi({
          token: config.admin.token,
          host: config.host,
          engine: hooks,
          history,
          endpoints: () =>
            endpoints.map((endpoint) => ({ basePath: endpoint.config.basePath, service: endpoint.service })),
          allowedUrls: config.admin.allowedUrls,
          allowPrivateTargets: config.admin.allowPrivateTargets,
          logger,
        });
  // The page at /admin (no token: it holds no data, it asks for the token and calls /admin/api).
  const dashboard =
    admin === undefined
      ? undefined
      : createDashboardHandler(
          config.admin.token === undefined ? { localGuard: new LocalGuard(config.host) } : {},
        );
  if (admin !== undefined && config.admin.token === undefined) {
    logger.warn(
      { host: config.host },
      'the admin API has no token (--admin-token): any process on this machine can use it; web pages are refused by Host, Origin and Content-Type checks',
    );
  }
  // The default endpoint (`--url`) and every other endpoint of the config file, each with its own store.
  const endpoints: {
    config: Config;
    service: UploadService;
    tus: ReturnType<typeof createTusRequestHandler>;
  }[] = [];
  for (const endpointConfig of endpointConfigs(config, wharfFile?.endpoints ?? [])) {
    const endpointService = composeUploadService(endpointConfig, {
      logger,
      ...(endpoints.length === 0 ? { state: mainState } : {}),
      ...(options.locker ? { locker: options.locker } : {}),
      observer:
        options.observer ?? ((dataStore) => new HookObserver(hooks, dataStore, endpointConfig.basePath)),
      ...activityOption(allActivity([metrics?.uploads, admin?.stream.activityFor(endpointConfig.basePath)])),
    });
    await endpointService.prepare();
    endpoints.push({
      config: endpointConfig,
      service: endpointService,
      tus: createTusRequestHandler({
        settings: endpointConfig,
        service: endpointService,
        shutdown: shutdown.signal,
        logger,
      }),
    });
  }
  const main = endpoints[0];
  if (main === undefined) throw new Error('no endpoint to serve');
  const service = main.service;
  composed = service;
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
    const pathname = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const logAccess =
      config.accessLog && (config.healthAccessLog || (pathname !== healthPath && pathname !== livenessPath));
    if (logAccess || metrics !== undefined) {
      res.once('close', () => {
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
        sendHealth(res, stopping, undefined);
        return;
      }
      service
        .health()
        .then((backends) => sendHealth(res, false, backends))
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
  const leases = jobLeasesOn(mainState.backends[0], {
    ttlMs: config.lockTtlMs,
    onError: (error, job) => logger.warn({ err: error, job }, 'a job lease could not be renewed or released'),
  });
  if (options.sweep !== false) {
    modules.startSchedules(leases === undefined ? undefined : (job, tick) => leases.claim(job, tick));
  }

  let sweeper: NodeJS.Timeout | undefined;
  if (options.sweep !== false && config.uploadExpirationMs > 0 && config.extensions.has('expiration')) {
    let sweeping = false;
    const sweep = async (): Promise<number> => {
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
    modules,
    history,
    close: async () => {
      admin?.stream.close();
      if (sweeper) clearInterval(sweeper);
      modules.stopSchedules();
      await modules.init('server.stop').catch((error: unknown) => {
        logger.error({ err: error }, 'a hook module failed on server.stop');
      });
      shutdown.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
      await Promise.race([closed, deadline]);
      server.closeAllConnections();
      // Post hooks already accepted get the rest of the shutdown window, then the engine stops.
      await hooks.drain(Math.max(1000, config.shutdownTimeoutMs));
      await hooks.close();
      stopCountingRuns?.();
      stopRecording?.();
      await history?.close();
      await service.close();
    },
  };
}
