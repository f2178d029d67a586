import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { renderHelp } from '../config/help.ts';
import { buildConfig, type Config, parseCommandLine } from '../config/load.ts';
import { ConfigError } from '../config/option-table.ts';
import { unknownVariables } from '../config/unknown-env.ts';
import { ClusterLocker, serveClusterLocks } from '../locks/cluster.ts';
import { createLogger, type Logger } from '../logger.ts';

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/*
 * The server, `hooks check` and the cluster's metrics are imported where they are used, not at the top: --help,
 * --version, a configuration error and the --workers primary then load about 35 of Wharf's modules instead of
 * about 175 (docs/architecture.md, "Start cost").
 */

async function serve(givenConfig: Config, logger: Logger, inCluster: boolean): Promise<void> {
  // A worker listens on the port its primary picked for --port 0 (see runPrimary).
  const workerPort = inCluster ? Number(givenConfig.env.WHARF_WORKER_PORT ?? 0) : 0;
  const config = workerPort > 0 ? Object.freeze({ ...givenConfig, port: workerPort }) : givenConfig;
  // SIGHUP's default ends the process: one sent while the server starts (a deploy script, the --workers primary
  // forwarding one to a worker still starting) is held and reloads once the server runs, as the file may have
  // changed after it was read.
  let reload: (() => void) | undefined;
  let reloadAsked = false;
  process.on('SIGHUP', () => {
    if (reload === undefined) reloadAsked = true;
    else reload();
  });
  const [{ startServer }, { HookModuleError }] = await Promise.all([
    import('../compose.ts'),
    import('../hooks/modules/loader.ts'),
  ]);
  const wharf = await startServer(config, {
    logger,
    // The roles follow the slot, not the worker id: a worker replacing the one in slot 1 takes them over.
    ...(inCluster ? { sweep: config.env.WHARF_WORKER_SLOT === '1' } : {}),
    // Shared info storages bring a lock shared by every process; file records need the primary's locks.
    ...(inCluster && config.infoStorage === 'file-info-storage' ? { locker: new ClusterLocker() } : {}),
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal means "now".
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    wharf
      .close()
      .then(() => {
        logger.flush();
        process.exit(0);
      })
      .catch(() => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP reloads the hook modules and --config: requests in flight keep the hooks they started with; a
  // failure keeps the old set and names the file at fault (a module's entry file, or the config file).
  let reloading = Promise.resolve();
  reload = () => {
    reloading = reloading.then(() =>
      wharf.reload().then(
        (result) => logger.info({ ...result }, 'configuration reloaded'),
        (error: unknown) =>
          logger.error(
            {
              file: error instanceof HookModuleError ? error.file : config.configFile,
              error: error instanceof Error ? error.message : String(error),
            },
            'configuration reload failed; the running hooks are kept',
          ),
      ),
    );
  };
  if (reloadAsked) reload();
  logger.info(
    { host: config.host, port: wharf.port, basePath: `${config.basePath}/`, dataDir: config.dataDir },
    `wharf listening on http://${config.host}:${wharf.port}${config.basePath}/`,
  );
}

/** A port free on `host` now: the system's pick for port 0. */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error(`no port on ${host}`);
  return address.port;
}

async function runPrimary(config: Config, logger: Logger): Promise<void> {
  let stopping = false;
  /** Workers that listen, and so handle SIGHUP; see the SIGHUP handler below. */
  const listened = new Set<number>();
  /** Workers still starting when a SIGHUP came: each gets it once it listens. */
  const reloadOwed = new Set<number>();
  // Each worker reloads --config itself (and logs how it went). Installed first: SIGHUP's default ends the
  // process. A worker still starting would be ended by it too (before its own handler is installed): it gets the
  // signal once it listens, and reloads what may have changed since it read the file.
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker === undefined) continue;
      if (listened.has(worker.id)) worker.process.kill('SIGHUP');
      else reloadOwed.add(worker.id);
    }
  });
  /*
   * With --port 0 the primary picks the port, once, and every worker, a replacement too, listens on it. Were the
   * workers to listen on port 0 themselves, node:cluster would share one port among them only while one of them
   * listens: when the last listening worker dies (say the first to start, killed while the others still load),
   * the primary closes that port, and the next worker to listen gets another one, so the port Wharf announced
   * refuses every connection from then on. (Another program could take the picked port before the first worker
   * listens; the worker then fails to start, as with a fixed port in use.)
   */
  const workerPort = config.port === 0 ? { WHARF_WORKER_PORT: String(await freePort(config.host)) } : {};
  // Each worker keeps its slot number across restarts, so a replacement resumes its predecessor's hook outbox.
  const slots = new Map<number, number>();
  const fork = (slot: number): number => {
    const worker = cluster.fork({ WHARF_WORKER_SLOT: String(slot), ...workerPort });
    slots.set(worker.id, slot);
    serveClusterLocks(worker);
    return worker.id;
  };
  // Workers answer /metrics with the sum over all of them, which this process gathers.
  if (config.admin.metrics) (await import('../server/metrics-cluster.ts')).serveClusterMetrics();
  /*
   * One of the first workers that exits before it listened could not start (the port in use, a backend
   * unreachable, a config file a worker refuses): the others would fail the same way, so the primary stops with
   * that worker's exit code, as a single process (and tusd) exits when it cannot listen, instead of replacing it
   * again and again. A replacement that cannot start while others serve is forked again after a wait that
   * doubles (1 s to 30 s), so a backend away for a while costs a few attempts, not a loop.
   */
  const firstWorkers = new Set<number>();
  let failedReplacements = 0;
  let exitCode = 0;
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(exitCode);
    for (const worker of workers) worker?.process.kill(signal);
  };
  cluster.on('listening', (worker) => {
    listened.add(worker.id);
    firstWorkers.delete(worker.id);
    failedReplacements = 0;
    if (reloadOwed.delete(worker.id)) worker.process.kill('SIGHUP');
  });
  for (let slot = 1; slot <= config.workers; slot++) firstWorkers.add(fork(slot));
  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.get(worker.id) ?? worker.id;
    slots.delete(worker.id);
    const hadListened = listened.delete(worker.id);
    reloadOwed.delete(worker.id);
    const first = firstWorkers.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    if (hadListened) {
      logger.error({ worker: slot, code, signal }, 'worker exited; starting a new one');
      fork(slot);
      return;
    }
    if (first) {
      logger.fatal(
        { worker: slot, code, signal },
        'a worker could not start (its error is logged above); stopping every worker',
      );
      exitCode = code === 0 || code === null ? 1 : code;
      stop('SIGTERM');
      return;
    }
    const waitMs = Math.min(1000 * 2 ** failedReplacements, 30_000);
    failedReplacements++;
    logger.error(
      { worker: slot, code, signal, retryInMs: waitMs },
      'a replacement worker could not start (its error is logged above); starting another after a wait',
    );
    setTimeout(() => {
      if (!stopping) fork(slot);
    }, waitMs);
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function unknownMessage(variable: string, nearest: string): string {
  return `unknown environment variable ${variable} is ignored; did you mean ${nearest}?`;
}

/** The `wharf` command. The only place that calls process.exit. */
export async function main(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  let config: Config;
  // Warned once, by the process the user started (cluster workers read the same environment).
  const misspelt = cluster.isPrimary ? unknownVariables(env) : [];
  let tusdWarnings: readonly string[] = [];
  try {
    const commandLine = parseCommandLine(argv);
    if (cluster.isPrimary) tusdWarnings = commandLine.warnings ?? [];
    if (commandLine.help) {
      process.stdout.write(renderHelp());
      return;
    }
    if (commandLine.version) {
      process.stdout.write(`${packageVersion()}\n`);
      return;
    }
    const [command, subcommand, extra] = commandLine.positionals;
    const checking = command === 'hooks' && subcommand === 'check' && extra === undefined;
    if (commandLine.positionals.length > 0 && !checking) {
      throw new ConfigError(`unexpected argument ${JSON.stringify(commandLine.positionals[0])} (see --help)`);
    }
    config = buildConfig(commandLine.options, env);
    if (checking) {
      for (const { variable, nearest } of misspelt)
        process.stderr.write(`wharf: warning: ${unknownMessage(variable, nearest)}\n`);
      try {
        const { checkHooks } = await import('./hooks-check.ts');
        process.stdout.write(await checkHooks(config));
      } catch (error) {
        process.stderr.write(`wharf: ${(error as Error).message}\n`);
        process.exit(1);
      }
      return;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`wharf: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  for (const warning of tusdWarnings) logger.warn({}, warning);
  for (const { variable, nearest } of misspelt)
    logger.warn({ variable, nearest }, unknownMessage(variable, nearest));
  if (config.workers > 1 && cluster.isPrimary) {
    await runPrimary(config, logger);
    return;
  }
  try {
    await serve(config, logger, config.workers > 1);
  } catch (error) {
    logger.fatal({ err: error }, 'wharf failed to start');
    logger.flush();
    process.stderr.write(`wharf: ${(error as Error).message}\n`);
    // A --config file Wharf cannot use is a configuration error like a bad flag: exit 2, as docs/configuration.md says.
    process.exit(error instanceof ConfigError ? 2 : 1);
  }
}
