// @tus/server + @tus/file-store, configured like the other servers in the bench:
// file storage in one data dir, no hooks, loopback, base path /files/.
// Usage: node bench/peers/tus-node-server.mjs [port] [dataDir]   (or PORT / DATA_DIR env)
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const port = Number(process.argv[2] ?? process.env.PORT ?? 1080);
const directory = process.argv[3] ?? process.env.DATA_DIR ?? './bench/out/tus-node-data';
const host = process.env.HOST ?? '127.0.0.1';

const server = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const httpServer = server.listen({ host, port });

// Stop cleanly on the signals run.sh sends, so the process never outlives the bench.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    httpServer.close();
    httpServer.closeAllConnections();
    process.exit(0);
  });
}
