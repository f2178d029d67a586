import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobinProxy {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /**
   * Which upstream (index) served each request, in order: `${method} ${index} ${status}`; `refused` for a dead
   * upstream the request then left for the next one.
   */
  readonly served: string[];
  /** Holds new requests until release() (the upstreams keep serving those already forwarded). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/**
 * A load balancer for tests: each request goes to the next upstream in turn, bodies streamed both ways.
 * An upstream that refuses connections (a killed instance) is skipped from then on, as a real balancer's
 * health check would, and the request that found it dead goes on to the next one (as nginx's default
 * proxy_next_upstream does: nothing of it reached the dead one, its body is read only once connected). A request
 * whose instance dies while serving it answers 502 (or is cut) and the tus client retries. Without that next
 * try, a client's request that is no tus client's (a test's plain GET of the finished upload) failed with 502
 * whenever it was the first to meet the killed instance.
 */
export async function startRoundRobinProxy(upstreams: readonly string[]): Promise<RoundRobinProxy> {
  const served: string[] = [];
  const dead = new Set<number>();
  let next = 0;
  const pick = (): number | undefined => {
    for (let tries = 0; tries < upstreams.length; tries++) {
      const index = next++ % upstreams.length;
      if (!dead.has(index)) return index;
    }
    return undefined;
  };
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  const forward = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    const index = pick();
    if (index === undefined) {
      res.statusCode = 502;
      res.end('no upstream');
      return;
    }
    const entry = served.push(`${req.method} ${index}`) - 1;
    const target = new URL(req.url ?? '/', upstreams[index]);
    let connected = false;
    const upstream = httpRequest(
      target,
      { method: req.method, headers: req.headers, agent: false },
      (reply) => {
        served[entry] += ` ${reply.statusCode}`;
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
        reply.on('error', () => res.destroy());
      },
    );
    upstream.once('socket', (socket) => {
      const start = (): void => {
        connected = true;
        req.pipe(upstream);
      };
      if (socket.connecting) socket.once('connect', start);
      else start();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' && !connected) {
        dead.add(index);
        served[entry] += ' refused';
        forward(req, res);
        return;
      }
      served[entry] += ' 502';
      // The rest of the client's body goes nowhere: read it away, so the client finishes sending and reads the
      // 502 at once (a body left unread stalls the client until its connection gives up, seconds later).
      req.unpipe(upstream);
      req.resume();
      if (!res.headersSent) {
        res.statusCode = 502;
        res.end(`upstream ${index} failed: ${error.code ?? error.message}`);
      } else {
        res.destroy();
      }
    });
    // The client went away: so does the request to the instance (it keeps what arrived).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  };
  const server: Server = createServer((req, res) => {
    if (gate) void gate.promise.then(() => forward(req, res));
    else forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    served,
    hold: () => {
      if (gate) return;
      let open: () => void = () => undefined;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release: () => {
      const current = gate;
      gate = undefined;
      current?.open();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
