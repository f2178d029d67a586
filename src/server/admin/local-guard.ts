import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { type ErrorCode, errorCatalogue } from '../../errors.ts';

/**
 * The admin API without a token is open to local processes, and so to any web page the operator's browser
 * shows: a page can POST to http://127.0.0.1:<port>/admin/api (a "simple" cross-origin request needs no
 * preflight), or rebind its own host name to 127.0.0.1 and then read the answers too. These checks close
 * both doors while leaving same-origin use (the dashboard) and non-browser clients (curl, scripts) working:
 *
 * - `Host` must name the bound address or a loopback name (DNS rebinding sends the attacker's host name);
 * - `Origin`, when sent, must be this very origin, and `Sec-Fetch-Site`, when sent, `same-origin` or `none`
 *   (browsers send them on every cross-origin request; curl sends neither);
 * - a write must declare `Content-Type: application/json`: a browser cannot send that cross-origin without
 *   a CORS preflight, which Wharf never grants for the admin API.
 */

/** A refused request: status and published code (src/errors.ts). */
export interface LocalRefusal {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
}

function refusal(code: ErrorCode): LocalRefusal {
  const { status, message } = errorCatalogue[code];
  return { status, code, message };
}

/** `[::1]:8080` -> `::1`, `Localhost.:80` -> `localhost`. */
function hostnameOf(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    return end === -1 ? name : name.slice(1, end);
  }
  const colon = name.lastIndexOf(':');
  if (colon !== -1 && name.indexOf(':') === colon) name = name.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

/** Whether a method changes something (the admin API's writes are POSTs; any other unsafe method counts too). */
function isWrite(method: string | undefined): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(';', 1)[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

/** Whether the request carries a body (a declared length above zero, or chunks). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length.trim() !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

export class LocalGuard {
  /** Host names (no port) a request may name: the bound address and loopback names. */
  readonly #boundName: string;

  /** @param boundHost `--host`, as given (`127.0.0.1`, `::1`, `[::1]`, `localhost`). */
  constructor(boundHost: string) {
    this.#boundName = hostnameOf(
      boundHost.includes(':') && !boundHost.startsWith('[') ? `[${boundHost}]` : boundHost,
    );
  }

  #hostAllowed(host: string | undefined): boolean {
    if (host === undefined || host === '') return false;
    const name = hostnameOf(host);
    return name === this.#boundName || isLoopbackName(name);
  }

  /** `Host` only: for the dashboard's static files (no data, but a rebound name must not get them either). */
  checkHost(req: IncomingMessage): LocalRefusal | undefined {
    return this.#hostAllowed(req.headers.host) ? undefined : refusal('ERR_ADMIN_HOST');
  }

  /** Every check, for the API and its stream. */
  check(req: IncomingMessage): LocalRefusal | undefined {
    const host = req.headers.host;
    if (!this.#hostAllowed(host)) return refusal('ERR_ADMIN_HOST');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      return refusal('ERR_ADMIN_CROSS_SITE');
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#sameOrigin(origin, host ?? '')) return refusal('ERR_ADMIN_CROSS_SITE');
    if (isWrite(req.method) && !isJson(req.headers['content-type'])) return refusal('ERR_ADMIN_CONTENT_TYPE');
    return undefined;
  }

  /** `Origin: null` (sandboxed frames, files) or any other origin than `http://<Host>` is another site. */
  #sameOrigin(origin: string, host: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    const requested = host.toLowerCase().replace(/:80$/, '');
    return parsed.protocol === 'http:' && parsed.host === requested && this.#hostAllowed(parsed.host);
  }
}

/**
 * With a token the API is unchanged but for this: a body that is not declared as JSON is refused (the API
 * only ever read JSON; a body labelled otherwise is a mistake or a cross-site form).
 */
export function checkBodyType(req: IncomingMessage): LocalRefusal | undefined {
  if (isWrite(req.method) && hasBody(req) && !isJson(req.headers['content-type'])) {
    return refusal('ERR_ADMIN_CONTENT_TYPE');
  }
  return undefined;
}
