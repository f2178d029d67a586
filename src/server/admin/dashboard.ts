import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { LocalGuard } from './local-guard.ts';

/**
 * Serves the admin dashboard (`/admin`): a static page, its stylesheet and scripts, compiled into
 * dist/server/admin/dashboard by `npm run build`. Only the files listed here are served, so no request path
 * reaches the file system. The page holds no data and needs no token; it asks for one and calls the API.
 */

/** Request path under `/admin/` -> file and media type. */
const assets: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
  'app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  'api.js': { file: 'api.js', type: 'text/javascript; charset=utf-8' },
  'render.js': { file: 'render.js', type: 'text/javascript; charset=utf-8' },
  'sse.js': { file: 'sse.js', type: 'text/javascript; charset=utf-8' },
};

/**
 * Scripts and styles from this origin only, no inline script or style, API calls to this origin only, no
 * framing, and no form submission (the token form is handled by the script; without it nothing is sent).
 */
export const dashboardContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface LoadedAsset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

export interface DashboardOptions {
  /** Where the built files are; default: the `dashboard` folder next to this module. */
  readonly assetsDir?: string;
  /** Without an admin token: a `Host` that is not the bound address or a loopback name gets a 403. */
  readonly localGuard?: LocalGuard;
}

/** Handles `/admin`, `/admin/` and the dashboard's files; returns false for any other path (`/admin/api`, …). */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, pathname: string) => boolean;

export function createDashboardHandler(options: DashboardOptions = {}): DashboardHandler {
  const assetsDir = options.assetsDir ?? path.join(import.meta.dirname, 'dashboard');
  // Read once, on first use (a few KiB); a file missing from the build is a 404, not a crash.
  const loaded = new Map<string, Promise<LoadedAsset | undefined>>();
  const load = (name: string): Promise<LoadedAsset | undefined> => {
    let asset = loaded.get(name);
    if (asset === undefined) {
      const spec = assets[name]!;
      asset = readFile(path.join(assetsDir, spec.file)).then(
        (body) => ({
          body,
          type: spec.type,
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        }),
        () => {
          loaded.delete(name);
          return undefined;
        },
      );
      loaded.set(name, asset);
    }
    return asset;
  };

  return (req, res, pathname) => {
    if (pathname !== '/admin' && !pathname.startsWith('/admin/')) return false;
    if (pathname === '/admin/api' || pathname.startsWith('/admin/api/')) return false;
    const name = pathname === '/admin' ? '' : pathname.slice('/admin/'.length);
    const refused = options.localGuard?.checkHost(req);
    if (refused !== undefined) {
      sendText(res, refused.status, `${refused.code}: ${refused.message}`);
      return true;
    }
    if (!Object.hasOwn(assets, name)) {
      sendText(res, 404, 'Not found');
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'Method not allowed');
      return true;
    }
    load(name).then(
      (asset) => {
        if (asset === undefined) {
          sendText(res, 404, 'The dashboard is not built (npm run build)');
          return;
        }
        setSecurityHeaders(res);
        // Revalidated on every load (the ETag makes that cheap), so an upgraded Wharf serves its new page.
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('ETag', asset.etag);
        if (req.headers['if-none-match'] === asset.etag) {
          res.statusCode = 304;
          res.end();
          return;
        }
        res.statusCode = 200;
        res.setHeader('Content-Type', asset.type);
        res.setHeader('Content-Length', asset.body.length);
        res.end(req.method === 'HEAD' ? undefined : asset.body);
      },
      () => res.destroy(),
    );
    return true;
  };
}

function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', dashboardContentSecurityPolicy);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

function sendText(res: ServerResponse, status: number, text: string): void {
  setSecurityHeaders(res);
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}
