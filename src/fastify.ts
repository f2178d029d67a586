import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTusHandler, type TusHandler, type TusHandlerOptions } from './index.ts';

/**
 * The parts of Fastify this plugin uses, spelled out so the package needs no Fastify types to build: Fastify's
 * own instance satisfies them.
 */
export interface FastifyLike {
  addContentTypeParser(
    contentType: string,
    parser: (
      request: unknown,
      payload: IncomingMessage,
      done: (error: Error | null, body?: unknown) => void,
    ) => void,
  ): void;
  all(path: string, handler: (request: { raw: IncomingMessage }, reply: FastifyReplyLike) => void): unknown;
  addHook(name: 'onClose', hook: () => Promise<void>): unknown;
}
interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): void;
}

/**
 * Wharf as a Fastify plugin: `app.register(wharf, { options: { url: '/files', dataDir: './uploads' } })` serves
 * tus at the `url` option (register it without a `prefix`; `url` is the path). Bodies are left unparsed for
 * Wharf to stream (in this plugin's own scope: the app's other routes keep their parsers), and the reply is
 * hijacked so Wharf answers on the raw response. Closing the app interrupts in-flight bodies.
 */
export default async function wharf(app: FastifyLike, options: TusHandlerOptions): Promise<void> {
  const tus: TusHandler = createTusHandler(options);
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  const route = (request: { raw: IncomingMessage }, reply: FastifyReplyLike): void => {
    reply.hijack();
    tus(request.raw, reply.raw);
  };
  const base = tus.config.basePath.replace(/\/$/, '');
  app.all(base === '' ? '/' : base, route);
  app.all(`${base}/*`, route);
  app.addHook('onClose', async () => tus.close());
}
