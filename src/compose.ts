import { type EndpointDeclaration, loadWharfFile, type WharfFile } from './config/config-file.ts';
import type { Config } from './config/load.ts';
import { ConfigError } from './config/option-table.ts';
import { boundModules } from './hooks/chain/pipeline.ts';
import { composeHookParts } from './hooks/compose-hooks.ts';
import { checkConfiguredTarget, TargetAllowList } from './hooks/delivery/target-guard.ts';
import { HookEngine } from './hooks/engine.ts';
import { type RunHistory, recordRuns } from './hooks/history/run-history.ts';
import { loadHookModules } from './hooks/modules/loader.ts';
import type { HookModules } from './hooks/modules/registry.ts';
import { createDashboardHandler } from './server/admin/dashboard.ts';
import { outboxStatsOf } from './server/admin/delivery.ts';
import { LocalGuard } from './server/admin/local-guard.ts';
import { RuntimeNamedHooks } from './server/admin/named-hooks.ts';
import { createAdminApi } from './server/admin/routes.ts';
import { endpointConfigs } from './server/endpoints.ts';
import {
  type ServedEndpoint,
  type ServerParts,
  type StartOptions,
  serve,
  type WharfServer,
} from './server/http-server.ts';
import { Metrics } from './server/metrics.ts';
import { createTusRequestHandler } from './tus/handler.ts';
import { allActivity, type UploadActivity } from './uploads/activity.ts';
import { composeUploadService } from './uploads/compose.ts';
import { HookObserver } from './uploads/hook-bridge.ts';
import { moduleUploadsOf } from './uploads/module-uploads.ts';
import type { UploadService } from './uploads/service.ts';
import { composeRunHistory, composeUploadState } from './uploads/shared-state.ts';

/*
 * The composition root: the one place that builds Wharf from the frozen configuration, the stores and locks
 * of each endpoint (uploads/compose.ts, uploads/shared-state.ts), the hook modules, named hooks and the hook
 * chain (hooks/compose-hooks.ts builds the transports, named hooks and outbox, handed to hooks/engine.ts), the run history, metrics, the admin API, the tus handlers, then the server that
 * serves them. Nothing below it constructs a collaborator it was not handed.
 */

function activityOption(activity: UploadActivity | undefined): { activity?: UploadActivity } {
  return activity === undefined ? {} : { activity };
}

/** Builds every part of the service from the configuration. */
export async function composeWharf(config: Config, options: StartOptions): Promise<ServerParts> {
  const { logger } = options;
  // Modules get the uploads service in their context, but the service's observer needs the modules first.
  let composed: UploadService | undefined;
  const uploads = moduleUploadsOf(() => {
    if (composed === undefined) throw new Error('the uploads service is not ready yet');
    return composed;
  });
  const moduleContext = (name: string) => ({
    logger: logger.child({ module: name }),
    config,
    env: config.env,
    uploads,
    args: {},
  });
  const modules = await loadHookModules(
    config.hooksModulesDir,
    moduleContext,
    logger,
    config.hooks.executableTimeoutMs,
  );
  if (modules.modules.length > 0) logger.info({ modules: modules.modules }, 'hook modules loaded');
  const wharfFile =
    config.configFile === undefined
      ? undefined
      : await loadWharfFile(config.configFile, config.basePath, config.hooks);
  // Configured HTTP hooks must fit --hooks-allowed-urls (the flag-defined ones were checked with the options).
  const allowList = new TargetAllowList(config.admin.allowedUrls);
  for (const hook of wharfFile?.hooks ?? []) {
    if ((hook.transport === 'http' || hook.transport === 'notify') && hook.url !== undefined)
      checkConfiguredTarget(hook.url, allowList);
  }
  // The default endpoint's state: its shared backend (Redis, PostgreSQL) also holds the hooks outbox.
  const mainState = composeUploadState(config);
  // The hooks' transports, named hooks, outbox and its store are built here, then handed to the engine.
  const hookParts = composeHookParts(config.hooks, logger, {
    modules,
    ...(mainState.outboxStore !== undefined ? { outboxStore: mainState.outboxStore } : {}),
    ...(wharfFile !== undefined ? { pipeline: wharfFile } : {}),
  });
  const hooks = new HookEngine(config.hooks, logger, hookParts);
  await hooks.loadClients();
  // Named hooks and bindings changed through the admin API, on the default endpoint's info storage: loaded
  // now, checked by every request that may run hooks when the storage is shared (another instance changes it).
  // A storage that does not answer now is asked again in the background; until it answers, requests that may
  // run hooks get 503 (named-hooks.ts).
  let currentFile = wharfFile;
  const declared = endpointConfigs(config, wharfFile?.endpoints ?? []);
  const namedHooks = new RuntimeNamedHooks({
    store: mainState.namedHooksStore,
    engine: hooks,
    file: () => currentFile,
    endpoints: declared.map((endpoint) => endpoint.basePath),
    inherited: config.hooks,
    logger,
  });
  await namedHooks.start();
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
          namedHooks,
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
  const endpoints: ServedEndpoint[] = [];
  for (const endpointConfig of declared) {
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
        hookSet: (method) => namedHooks.pin(method),
      }),
    });
  }
  const main = endpoints[0];
  if (main === undefined) throw new Error('no endpoint to serve');
  composed = main.service;
  const configFile = config.configFile;
  const reload =
    configFile === undefined
      ? undefined
      : async () => {
          const file = await loadWharfFile(configFile, config.basePath, config.hooks);
          checkReloadable(file, wharfFile?.endpoints ?? []);
          for (const hook of file.hooks) {
            if ((hook.transport === 'http' || hook.transport === 'notify') && hook.url !== undefined)
              checkConfiguredTarget(hook.url, allowList);
          }
          // The stored hooks joined; a file that would make them stop fitting is refused (named-hooks.ts).
          const set = namedHooks.reload(file);
          currentFile = file;
          return {
            file: configFile,
            version: set.version,
            hooks: file.hooks.length,
            bindings: file.bindings.length,
          };
        };
  // The modules named hooks bind: a reload cannot change them (compose-hooks.ts), so the new set binds the same.
  const bound = boundModules(wharfFile);
  let reloads = 0;
  const loadModules = async (): Promise<HookModules> => {
    reloads++;
    const fresh = await loadHookModules(
      config.hooksModulesDir,
      moduleContext,
      logger,
      config.hooks.executableTimeoutMs,
      reloads,
    );
    try {
      fresh.bind(bound);
    } catch (error) {
      fresh.stopEmitter();
      throw error;
    }
    return fresh;
  };
  return {
    hooks,
    modules,
    loadModules,
    history,
    metrics,
    admin,
    dashboard,
    endpoints,
    sharedBackend: mainState.backends[0],
    shutdown,
    disposers: [stopCountingRuns, stopRecording, () => namedHooks.stop()].filter(
      (dispose) => dispose !== undefined,
    ),
    namedHooks: () => namedHooks.health(),
    checkedNamedHooks: () => namedHooks.checkedHealth(),
    ...(reload !== undefined ? { reload } : {}),
  };
}

/** An endpoint as far as a reload may not change it: everything but its hooks. */
function servedShape(endpoint: EndpointDeclaration): string {
  const { globalHooks: _globalHooks, extensions, ...rest } = endpoint;
  return JSON.stringify({ ...rest, extensions: extensions === undefined ? null : [...extensions].sort() });
}

/**
 * A reload replaces hooks and bindings only: endpoints (paths, data folders, limits, extensions) are served by
 * stores and handlers built at start, so a file that changes them is refused and the running hooks are kept.
 */
function checkReloadable(file: WharfFile, running: readonly EndpointDeclaration[]): void {
  const before = running.map(servedShape).sort().join('\n');
  const after = file.endpoints.map(servedShape).sort().join('\n');
  if (before !== after) {
    throw new ConfigError(
      `${file.file}: its endpoints (paths, data folders, limits, extensions) differ from the running ones; they change only with a restart, so the running hooks are kept`,
    );
  }
}

/** Builds the service from the configuration and starts serving it. */
export async function startServer(config: Config, options: StartOptions): Promise<WharfServer> {
  return serve(config, await composeWharf(config, options), options);
}
