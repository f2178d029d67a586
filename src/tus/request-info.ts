import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { RequestDescription } from '../uploads/events.ts';

function firstForwardedFor(value: string): string | undefined {
  // Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const [name, raw] = pair.split('=', 2);
      if (name?.trim().toLowerCase() === 'for' && raw !== undefined) {
        return raw.trim().replace(/^"|"$/g, '');
      }
    }
  }
  return undefined;
}

/**
 * The client's address: the socket peer, or, only with --behind-proxy, the first `for=` of `Forwarded`
 * or else the first `X-Forwarded-For` entry. Without the flag those headers are ignored: anyone can send them.
 */
export function clientAddress(req: IncomingMessage, behindProxy: boolean): string | null {
  if (behindProxy) {
    const forwarded = req.headers.forwarded;
    const fromForwarded = typeof forwarded === 'string' ? firstForwardedFor(forwarded) : undefined;
    if (fromForwarded) return fromForwarded;
    const forwardedFor = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor)?.split(',')[0]?.trim();
    if (first) return first;
  }
  const peer = req.socket.remoteAddress;
  if (!peer) return null;
  // IPv4 clients on a dual-stack socket show up as ::ffff:a.b.c.d.
  return peer.startsWith('::ffff:') && isIP(peer.slice(7)) === 4 ? peer.slice(7) : peer;
}

/** The TCP peer as `host:port` (Go's `RemoteAddr` spelling: IPv6 in brackets), for tusd-v2 hook payloads. */
export function peerAddress(req: IncomingMessage): string | undefined {
  const { remoteAddress, remotePort } = req.socket;
  if (!remoteAddress || remotePort === undefined) return undefined;
  const host =
    remoteAddress.startsWith('::ffff:') && isIP(remoteAddress.slice(7)) === 4
      ? remoteAddress.slice(7)
      : remoteAddress;
  return isIP(host) === 6 ? `[${host}]:${remotePort}` : `${host}:${remotePort}`;
}

/** Every request header, lowercase name to all its values in arrival order. */
export function headerLists(req: IncomingMessage): Record<string, string[]> {
  // Prototype-less (a header named `constructor` or `__proto__` is a plain key), made as `{}` whose prototype is
  // then dropped: Object.create(null) gives an object in V8's dictionary mode, slower to fill and to read, and
  // every request whose events hooks hear builds one.
  const headers: Record<string, string[]> = {};
  Object.setPrototypeOf(headers, null);
  const raw = req.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = (raw[index] ?? '').toLowerCase();
    const values = headers[name];
    // A literal of one: an empty array that is pushed to takes a backing store of 17 (V8's growth), and most
    // headers come once, on every request whose events hooks hear.
    if (values === undefined) headers[name] = [raw[index + 1] ?? ''];
    else values.push(raw[index + 1] ?? '');
  }
  return headers;
}

export function describeRequest(
  req: IncomingMessage,
  method: string,
  behindProxy: boolean,
  protocol?: RequestDescription['protocol'],
  res?: ServerResponse,
  hookSet?: RequestDescription['hookSet'],
): () => RequestDescription {
  let described: RequestDescription | undefined;
  let answered: Promise<number | undefined> | undefined;
  return () => {
    if (described === undefined) {
      const origin = requestOrigin(req, behindProxy);
      const peer = peerAddress(req);
      // Optional fields are set once the object is built: a literal with conditional spreads takes V8's slow
      // path, and every request with post hooks describes itself.
      const built: { -readonly [K in keyof RequestDescription]: RequestDescription[K] } = {
        uri: req.url ?? '/',
        method,
        remoteAddr: clientAddress(req, behindProxy),
        headers: headerLists(req),
      };
      // A function, called only for a post hook whose `when` tests `status`: a promise with two listeners on
      // the response cost every request the hooks heard of.
      if (res !== undefined) built.answered = () => (answered ??= answerStatus(res));
      if (hookSet !== undefined) built.hookSet = hookSet;
      if (origin !== undefined) built.origin = origin;
      if (peer !== undefined) built.peer = peer;
      if (protocol !== undefined) built.protocol = protocol;
      described = built;
    }
    return described;
  };
}

/**
 * The status code of the answer, once it is sent ('finish'), or what was sent before the connection ended
 * ('close'); undefined when the connection ended before any answer left. Asked for when first needed, which may
 * be after the answer was sent or the connection closed.
 */
function answerStatus(res: ServerResponse): Promise<number | undefined> {
  if (res.writableFinished) return Promise.resolve(res.statusCode);
  if (res.closed || res.destroyed) return Promise.resolve(res.headersSent ? res.statusCode : undefined);
  return new Promise((resolve) => {
    const settle = (): void => resolve(res.headersSent ? res.statusCode : undefined);
    res.once('finish', settle);
    res.once('close', settle);
  });
}

/** scheme://host of the request, for absolute Location URLs; proxies are believed only with --behind-proxy. */
export function requestOrigin(req: IncomingMessage, behindProxy: boolean): string | undefined {
  let proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  let host = req.headers.host;
  if (behindProxy) {
    const forwarded = req.headers.forwarded;
    if (typeof forwarded === 'string') {
      const first = forwarded.split(',')[0] ?? '';
      for (const pair of first.split(';')) {
        const [name, raw] = pair.split('=', 2);
        const value = raw?.trim().replace(/^"|"$/g, '');
        if (!value) continue;
        if (name?.trim().toLowerCase() === 'proto') proto = value;
        if (name?.trim().toLowerCase() === 'host') host = value;
      }
    }
    const forwardedProto = req.headers['x-forwarded-proto'];
    const forwardedHost = req.headers['x-forwarded-host'];
    if (typeof forwardedProto === 'string' && forwardedProto !== '')
      proto = forwardedProto.split(',')[0]?.trim() ?? proto;
    if (typeof forwardedHost === 'string' && forwardedHost !== '')
      host = forwardedHost.split(',')[0]?.trim() ?? host;
  }
  if (!host || !/^[A-Za-z0-9.\-:[\]]+$/.test(host) || !/^https?$/.test(proto)) return undefined;
  return `${proto}://${host}`;
}
