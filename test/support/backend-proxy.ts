import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a shared service (Redis, PostgreSQL) that a test can take away without touching the
 * service others share: `cut()` is a stopped service (connections closed, new ones closed at once),
 * `hang()` a hung one (connections stay open, nothing is forwarded either way).
 */
export interface BackendProxy {
  readonly port: number;
  /** Closes every connection and closes each new one at once, until {@link restore}. */
  cut(): void;
  /**
   * Cuts (as {@link cut}) at the moment a client sends bytes containing `pattern`, which are not forwarded: an
   * outage that lands exactly at a given command, whatever the test process is busy with then.
   */
  cutAt(pattern: string): void;
  /**
   * Closes each connection on which a client sends bytes containing `pattern` (not forwarded), until
   * {@link restore}; everything else is served: one kind of query finds the store gone, the others do not.
   */
  dropOn(pattern: string): void;
  /** Keeps connections open but forwards nothing (data waits), until {@link restore}. */
  hang(): void;
  /** Forwards again; what waited during a hang is delivered. */
  restore(): void;
  /** Connections accepted so far (a client that reconnected shows here). */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Data held back during a hang, per direction. */
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
}

export async function startBackendProxy(targetPort: number): Promise<BackendProxy> {
  let mode: 'open' | 'cut' | 'hang' = 'open';
  let accepted = 0;
  const pairs = new Set<Pair>();
  let cutPattern: string | undefined;
  let dropPattern: string | undefined;

  const cutAll = (): void => {
    mode = 'cut';
    for (const pair of pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    pairs.clear();
  };

  const forward = (from: Socket, to: Socket, held: Buffer[], fromClient: boolean, pair: Pair): void => {
    // The end of what came before, so a pattern split between two packets is still seen.
    let recent = '';
    from.on('data', (chunk: Buffer) => {
      if (fromClient && (cutPattern !== undefined || dropPattern !== undefined)) {
        const text = recent + chunk.toString('latin1');
        if (cutPattern !== undefined && text.includes(cutPattern)) {
          cutPattern = undefined;
          cutAll();
          return;
        }
        if (dropPattern !== undefined && text.includes(dropPattern)) {
          pairs.delete(pair);
          pair.client.destroy();
          pair.upstream.destroy();
          return;
        }
        recent = text.slice(-256);
      }
      if (mode === 'hang') held.push(chunk);
      else to.write(chunk);
    });
  };

  const server = createServer((client: Socket) => {
    accepted++;
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, toUpstream: [], toClient: [] };
    pairs.add(pair);
    forward(client, upstream, pair.toUpstream, true, pair);
    forward(upstream, client, pair.toClient, false, pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    // A side that closed ends the other once what was forwarded to it is flushed: a server that closes right
    // after its answer (an HTTP/1.0 one) must not lose the answer's tail.
    client.on('close', () => {
      pairs.delete(pair);
      upstream.end();
    });
    upstream.on('close', () => {
      pairs.delete(pair);
      client.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    cut: cutAll,
    cutAt: (pattern) => {
      cutPattern = pattern;
    },
    dropOn: (pattern) => {
      dropPattern = pattern;
    },
    hang: () => {
      mode = 'hang';
    },
    restore: () => {
      mode = 'open';
      dropPattern = undefined;
      for (const pair of pairs) {
        for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    connections: () => accepted,
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
