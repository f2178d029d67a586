import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** `url` with its host and port replaced by the proxy's. */
  readonly url: string;
  /** Client connections open now. */
  open(): number;
  /** Client connections ever made. */
  connections(): number;
  /** Client connections whose client side went away (the client closed or destroyed its socket). */
  closedByClient(): number;
  /**
   * From now on nothing is forwarded either way and both sockets stay open, as a server that stopped answering
   * (hung, or a network that drops everything) looks to a client.
   */
  freeze(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 to the host and port of `url` (a broker's), counting its client connections, that can
 * freeze.
 */
export async function tcpProxy(url: string, defaultPort: number): Promise<TcpProxy> {
  const target = new URL(url);
  let frozen = false;
  let connections = 0;
  let closedByClient = 0;
  const clients = new Set<Socket>();
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    connections++;
    clients.add(client);
    const upstream = connect(Number(target.port || defaultPort), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (!frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk);
    });
    client.on('close', () => {
      clients.delete(client);
      closedByClient++;
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(typeof address === 'object' && address !== null ? address.port : 0);
  return {
    url: proxied.toString(),
    open: () => clients.size,
    connections: () => connections,
    closedByClient: () => closedByClient,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
