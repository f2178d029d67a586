import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HookRouter, RouteHandler } from './types.ts';

interface Route {
  readonly method: string | undefined;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
  readonly owner: string;
}

function segmentsOf(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '');
}

/** Returns the route's parameters when `segments` match its pattern (`:name` matches one segment). */
function matchSegments(
  pattern: readonly string[],
  segments: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, part] of pattern.entries()) {
    const segment = segments[index] ?? '';
    if (part.startsWith(':')) {
      try {
        params[part.slice(1)] = decodeURIComponent(segment);
      } catch {
        return undefined;
      }
    } else if (part !== segment) return undefined;
  }
  return params;
}

export interface RouteFailureLogger {
  error(object: Record<string, unknown>, message: string): void;
}

/**
 * Custom routes added by hook modules. Exact paths, `:name` parameters; first registered wins. A handler that
 * throws or rejects answers 500 (if nothing was sent yet) and is logged.
 */
export class ModuleRouter {
  readonly #routes: Route[] = [];

  /** The router a module adds its routes through; `owner` names the module in logs. */
  forModule(owner: string): HookRouter {
    const add =
      (method: string | undefined) =>
      (path: string, handler: RouteHandler): void => {
        if (typeof path !== 'string' || !path.startsWith('/')) {
          throw new TypeError(`route path must start with "/", got ${JSON.stringify(path)}`);
        }
        if (typeof handler !== 'function') throw new TypeError(`route ${path} needs a handler function`);
        this.#routes.push({ method, segments: segmentsOf(path), handler, owner });
      };
    return {
      get: add('GET'),
      post: add('POST'),
      put: add('PUT'),
      patch: add('PATCH'),
      delete: add('DELETE'),
      all: add(undefined),
    };
  }

  get size(): number {
    return this.#routes.length;
  }

  /** Answers the request when a route matches; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, logger: RouteFailureLogger): boolean {
    if (this.#routes.length === 0) return false;
    const pathname = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const segments = segmentsOf(pathname);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    for (const route of this.#routes) {
      if (route.method !== undefined && route.method !== method) continue;
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      const fail = (error: unknown): void => {
        logger.error({ err: error, module: route.owner, url: req.url }, 'hook module route failed');
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
          res.end('ERR_INTERNAL: a hook module route failed\n');
        } else res.destroy();
      };
      try {
        Promise.resolve(route.handler(req, res, params)).catch(fail);
      } catch (error) {
        fail(error);
      }
      return true;
    }
    return false;
  }
}
