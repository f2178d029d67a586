/** Start and stop for the small HTTP servers tests run next to Wharf (hook receivers, scanners). */
import type { Server } from 'node:http';

/** Listens on a free loopback port and returns it. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Closes the server at once, dropping kept-alive and open connections. */
export async function closeNow(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
