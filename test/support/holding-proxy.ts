import { connect, createServer, type Server, type Socket } from 'node:net';

export interface HoldingProxy {
  readonly server: Server;
  readonly port: number;
  /** From now on, the first request bytes containing `pattern` (and all after them on that connection) are held. */
  holdAt(pattern: string): void;
  /** Whether the proxy is holding a connection's request bytes now. */
  holding(): boolean;
  /**
   * From now on, the first request bytes containing `pattern` are not forwarded; the client gets `reply`
   * instead, as if the server had refused the command (a Redis error reply such as `-READONLY ...`).
   */
  failAt(pattern: string, reply: string): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy to 127.0.0.1:`targetPort` that can hold one command back: once armed with a pattern, the
 * connection whose request bytes contain it forwards nothing more, so the server never sees that command.
 * Held bytes are dropped when the client goes (a killed process), never delivered late.
 */
export async function holdingProxy(targetPort: number): Promise<HoldingProxy> {
  let pattern: string | undefined;
  let held = 0;
  let failing: { pattern: string; reply: string } | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let holding = false;
    // The end of what was forwarded, so a pattern split between two packets is still seen.
    let recent = '';
    client.on('data', (chunk: Buffer) => {
      if (holding) return;
      const text = recent + chunk.toString('latin1');
      if (failing !== undefined && text.includes(failing.pattern)) {
        client.write(failing.reply);
        failing = undefined;
        return;
      }
      if (pattern !== undefined && text.includes(pattern)) {
        pattern = undefined;
        holding = true;
        held++;
        return;
      }
      recent = text.slice(-256);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      if (holding) held--;
      holding = false;
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on('close', () => {
      client.destroy();
      sockets.delete(upstream);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    holdAt: (text) => {
      pattern = text;
    },
    holding: () => held > 0,
    failAt: (text, reply) => {
      failing = { pattern: text, reply };
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
