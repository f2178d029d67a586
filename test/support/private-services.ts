/**
 * Service instances of a test's own (Redis, PostgreSQL, RabbitMQ, Kafka), for tests that stop and start them:
 * started by the same scripts/services/*.sh as the shared ones, but on ports picked free at run time and with
 * their data in a fresh temporary folder, so two runs of one test file at once (Node 20, 22 and 24 side by side)
 * never stop each other's instance, and the shared services are never touched.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { repoRoot } from './wharf-process.ts';

const run = promisify(execFile);

function listenOn(port: number): Promise<import('node:net').Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * A free loopback port `port` for which `port + offset` is free too for each of `offsets` (a RabbitMQ node's
 * distribution port, a Kafka controller's port). Picked below the kernel's ephemeral range (32768 and up): a port
 * from that range can be taken by any outgoing connection between this check and the service binding it, or while
 * a test has the service stopped (a private Kafka once failed to start that way).
 */
export async function freePort(offsets: readonly number[] = []): Promise<number> {
  const highest = 32_000 - Math.max(0, ...offsets);
  // 20000 and up where the offsets allow it (RabbitMQ's distribution port 20000 above leaves 10000-12000).
  const lowest = Math.min(20_000, highest - 2_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lowest + Math.floor(Math.random() * (highest - lowest));
    const servers = await Promise.all([0, ...offsets].map((offset) => listenOn(port + offset)));
    const ok = servers.every((server) => server !== undefined);
    await Promise.all(
      servers.map(
        (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
      ),
    );
    if (ok) return port;
  }
  throw new Error(`no free port from ${lowest} with ${offsets.join(', ')} above it free`);
}

/** SIGKILL to `pid`, then waits (up to 10 s) until it is gone. */
async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let waited = 0; waited < 10_000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PrivateService {
  /** Where a client connects: a URL (Redis, PostgreSQL, RabbitMQ) or host:port (Kafka). */
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the instance and removes its data folder. */
  remove(): Promise<void>;
}

type Action = 'start' | 'launch' | 'stop';

async function privateService(
  script: string,
  url: (port: number) => string,
  env: (port: number, dir: string) => Record<string, string>,
  offsets: readonly number[] = [],
  /** Its process id file: at the end the instance is killed at once (its data is thrown away anyway). */
  pidFile?: (dir: string) => string,
  /** Starts it, when that is more than the script's `start` (given a way to run the script and the data folder). */
  start?: (action: (command: Action) => Promise<void>, dir: string, port: number) => Promise<void>,
): Promise<PrivateService> {
  const port = await freePort(offsets);
  const dir = await mkdtemp(path.join(tmpdir(), `wharf-private-${path.basename(script, '.sh')}-`));
  const action = async (command: Action): Promise<void> => {
    await run('bash', [path.join(repoRoot, 'scripts/services', script), command], {
      env: { ...process.env, ...env(port, dir) },
      timeout: 300_000,
    });
  };
  return {
    url: url(port),
    port,
    start: () => (start === undefined ? action('start') : start(action, dir, port)),
    stop: () => action('stop'),
    remove: async () => {
      const pid =
        pidFile === undefined ? Number.NaN : Number(await readFile(pidFile(dir), 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0) await killAndWait(pid);
      await action('stop').catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis with an append-only file (a restart keeps its records), on a free port. */
export function privateRedis(): Promise<PrivateService> {
  return privateService(
    'redis.sh',
    (port) => `redis://127.0.0.1:${port}/0`,
    (port, dir) => ({ WHARF_REDIS_PORT: String(port), WHARF_REDIS_DIR: dir }),
  );
}

/** A PostgreSQL cluster with the `wharf` role and the `wharf_test` database, on a free port. */
export function privatePostgres(): Promise<PrivateService> {
  return privateService(
    'postgres.sh',
    (port) => `postgres://wharf:wharf@127.0.0.1:${port}/wharf_test`,
    (port, dir) => ({ WHARF_POSTGRES_PORT: String(port), WHARF_POSTGRES_DIR: dir }),
  );
}

/**
 * Waits until the RabbitMQ at `url` opens an AMQP connection and a channel on it: then it serves clients (it starts
 * its listeners last, once booted). Up to 120 s, as rabbitmq.sh `start` waits.
 */
async function awaitAmqp(url: string, logDir: string, node: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      // A connect timeout, so a listener that accepts and never answers cannot hold the wait.
      const connection = await connect(url, { timeout: 5_000 });
      try {
        const channel = await connection.createChannel();
        await channel.close();
        return;
      } finally {
        await connection.close().catch(() => {});
      }
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const log = await readFile(path.join(logDir, `${node}-startup.log`), 'utf8').catch(() => '');
  throw new Error(
    `RabbitMQ node ${node} did not serve AMQP within 120 s (${String(lastError)}); its startup log ends:\n${log.slice(-3000)}`,
  );
}

/**
 * A RabbitMQ node of its own (own name, port, distribution port and data folder). It is started by rabbitmq.sh's
 * `launch` and found ready by an AMQP connection and channel, and stopped by SIGTERM to its Erlang VM (rabbitmq.sh
 * `stop`): no rabbitmqctl run, each of which boots an Erlang VM of its own.
 */
export function privateRabbitmq(): Promise<PrivateService & { readonly node: string }> {
  const node = `wharf-private-${randomBytes(4).toString('hex')}@localhost`;
  const pidFile = (dir: string) => path.join(dir, 'mnesia', `${node}.pid`);
  const url = (port: number) => `amqp://guest:guest@127.0.0.1:${port}`;
  // rabbitmq.sh puts the node's distribution port 20000 above its AMQP port.
  return privateService(
    'rabbitmq.sh',
    url,
    (port, dir) => ({
      WHARF_TEST_AMQP_PORT: String(port),
      WHARF_TEST_RABBITMQ_NODE: node,
      WHARF_RABBITMQ_DIR: dir,
    }),
    [20_000],
    pidFile,
    async (action, dir, port) => {
      await action('launch');
      await awaitAmqp(url(port), path.join(dir, 'log'), node);
    },
  ).then((service) => ({ ...service, node }));
}

/** A single-node Kafka (broker and controller, the controller one port above), `url` is host:port. */
export function privateKafka(): Promise<PrivateService> {
  return privateService(
    'kafka.sh',
    (port) => `127.0.0.1:${port}`,
    // Short-lived: JVM flags for a broker that lives for seconds (kafka.sh says which, and what they save).
    (port, dir) => ({
      WHARF_TEST_KAFKA_PORT: String(port),
      WHARF_KAFKA_STATE_DIR: dir,
      WHARF_TEST_KAFKA_SHORT_LIVED: '1',
    }),
    [1],
    (dir) => path.join(dir, 'kafka.pid'),
  );
}
