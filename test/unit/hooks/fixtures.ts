import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEntry } from '../../../src/hooks/delivery/outbox-journal.ts';
import type { HookLogger } from '../../../src/hooks/engine.ts';
import type { HooksConfig } from '../../../src/hooks/engine-config.ts';
import { type UploadEvent, type UploadEventName, uploadEventNames } from '../../../src/hooks/events.ts';
import type { AmqpHooksConfig } from '../../../src/hooks/transports/amqp.ts';

export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error' | 'debug';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps every entry, so tests can look at what was logged (and what was not). */
export function captureLogger(): { logger: HookLogger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (fields: Record<string, unknown>, message: string): void => {
      entries.push({ level, fields, message });
    };
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, entries };
}

export function hooksConfig(overrides: Partial<HooksConfig> = {}): HooksConfig {
  return {
    enabledEvents: new Set<UploadEventName>(uploadEventNames),
    format: 'default',
    hooksFile: undefined,
    hooksDir: undefined,
    httpUrls: [],
    httpProxyHeaders: [],
    httpTimeoutMs: 2000,
    executableTimeoutMs: 5000,
    postConcurrency: 4,
    postQueueLimit: 100,
    ...overrides,
  };
}

/** A creation request as the core would describe it (the rustus seed's example). */
export function sampleEvent(
  name: UploadEventName = 'pre-create',
  overrides: Partial<UploadEvent> = {},
): UploadEvent {
  return {
    name,
    upload: {
      id: '3cd911fe-eba0-499a-b220-b1d1b947b80f',
      offset: 0,
      length: 220,
      path: null,
      createdAt: 1658671969,
      deferredSize: false,
      isPartial: false,
      isFinal: false,
      parts: null,
      storage: 'file_storage',
      metadata: { filename: 'shrek2.mkv' },
    },
    request: {
      uri: '/files/',
      method: 'POST',
      remoteAddr: '127.0.0.1',
      headers: {
        host: ['rustus.localhost'],
        'upload-length': ['220'],
        'user-agent': ['curl/7.84.0'],
        accept: ['*/*'],
        'upload-metadata': ['filename c2hyZWsyLm1rdg=='],
        'tus-resumable': ['1.0.0'],
      },
    },
    ...overrides,
  };
}

/** The outbox journal's entry number `index` for the target `amqp`: one upload each, added at 1000 + index. */
export function journalEntry(index: number): StoredEntry {
  return {
    target: 'amqp',
    delivery: {
      eventId: `event-${index}`,
      event: 'post-finish',
      hook: 'post-finish',
      uploadId: `upload-${index}`,
      sequence: 1,
      payload: JSON.stringify({ upload: { id: `upload-${index}` } }),
      request: { uri: '/files/', method: 'PATCH', remoteAddr: '127.0.0.1', headers: {} },
    },
    addedAt: 1000 + index,
  };
}

/** A temporary directory removed when the test ends. */
export async function temporaryDirectory(context: { after(fn: () => Promise<void>): void }): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'wharf-hooks-'));
  context.after(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** Writes an executable `/bin/sh` script. */
export async function writeScript(directory: string, name: string, body: string): Promise<string> {
  const file = join(directory, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

export interface CapturedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export type HookHandler = (request: CapturedRequest, response: ServerResponse) => void | Promise<void>;

export interface HookServer {
  readonly url: string;
  readonly requests: CapturedRequest[];
  /** Resolves with the `count`-th request (1-based), already received or still to come. */
  nthRequest(count: number): Promise<CapturedRequest>;
  close(): Promise<void>;
}

/** A real HTTP hook receiver on an ephemeral loopback port, recording every request it gets. */
export async function startHookServer(
  context: { after(fn: () => Promise<void>): void },
  handler: HookHandler = (_request, response) => {
    response.writeHead(200).end();
  },
): Promise<HookServer> {
  const requests: CapturedRequest[] = [];
  const waiters: { count: number; resolve: (request: CapturedRequest) => void }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const captured: CapturedRequest = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(captured);
      for (const waiter of waiters.filter((candidate) => candidate.count === requests.length)) {
        waiter.resolve(captured);
      }
      void Promise.resolve(handler(captured, response)).catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  context.after(close);
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    nthRequest(count) {
      const existing = requests[count - 1];
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close,
  };
}

/** A URL on which nothing listens (a port that was just released). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hooks`;
}

/** A gate a test opens when it wants held responses to go out. */
export function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * AMQP settings that change nothing on the shared broker: the default exchange, no declarations, one connection
 * and one channel.
 */
export function amqpTestConfig(url: string, queuesPrefix: string, publishTimeoutMs: number): AmqpHooksConfig {
  return {
    url,
    exchange: '',
    exchangeKind: 'topic',
    routingKey: undefined,
    queuesPrefix,
    declareExchange: false,
    declareQueues: false,
    durableExchange: false,
    durableQueues: false,
    autoDelete: true,
    celery: false,
    connectionPoolSize: 1,
    channelPoolSize: 1,
    idleConnectionTimeoutMs: undefined,
    idleChannelsTimeoutMs: undefined,
    publishTimeoutMs,
  };
}
