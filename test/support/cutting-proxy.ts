import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CuttingProxy {
  readonly server: Server;
  readonly port: number;
  /** How many connections the proxy cut (0 or 1). */
  cuts(): number;
  /** Request bytes forwarded to the server, over every connection. */
  forwarded(): number;
  /** Request bytes forwarded after the cut (what the client sent to finish). */
  forwardedAfterCut(): number;
}

/** A TCP proxy to 127.0.0.1:`targetPort` that cuts, once, the first connection to carry more than
 * `cutAfter` bytes of request data (clients that open a connection per request get cut too). */
export async function cuttingProxy(targetPort: number, cutAfter: number): Promise<CuttingProxy> {
  let cut = 0;
  let forwardedInAll = 0;
  let afterCut = 0;
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    let forwarded = 0;
    client.on('data', (chunk: Buffer) => {
      forwarded += chunk.length;
      if (cut === 0 && forwarded > cutAfter) {
        cut++;
        client.destroy();
        upstream.destroy();
        return;
      }
      forwardedInAll += chunk.length;
      if (cut > 0) afterCut += chunk.length;
      // Backpressure, so that what was forwarded before a cut has reached the server rather than sat in a buffer.
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    // Like a server that closes its socket: a client still sending (a paused one, above) gets a reset, not a hang.
    upstream.on('close', () => client.end(() => client.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    cuts: () => cut,
    forwarded: () => forwardedInAll,
    forwardedAfterCut: () => afterCut,
  };
}
