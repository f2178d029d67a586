import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Loopback HTTP hook targets for the tests of kept-alive connections (http-close, named-hooks-replaced). */

export interface KeptAliveTarget {
  readonly url: string;
  /** Requests answered. */
  requests(): number;
  /** Connections open now. */
  open(): number;
  /** Connections ever made. */
  connections(): number;
  /** The next requests are held unanswered until `release` (resolves once one is held). */
  hold(): Promise<void>;
  release(): void;
}

/** A hook target that answers 200 and keeps connections alive for a minute; it sees which are still open. */
export async function keptAliveTarget(context: {
  after(fn: () => Promise<void>): void;
}): Promise<KeptAliveTarget> {
  let requests = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  let holding = false;
  const held: ServerResponse[] = [];
  let heldOne: (() => void) | undefined;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      if (holding) {
        held.push(response);
        heldOne?.();
        return;
      }
      requests++;
      response.writeHead(200).end();
    });
  });
  // Longer than the test: a connection that closes was closed by Wharf, not by the target's keep-alive timeout.
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  context.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    requests: () => requests,
    open: () => sockets.size,
    connections: () => connections,
    hold: () => {
      holding = true;
      return new Promise<void>((resolve) => {
        heldOne = resolve;
      });
    },
    release: () => {
      holding = false;
      for (const response of held.splice(0)) {
        requests++;
        response.writeHead(200).end();
      }
    },
  };
}
