import type { IncomingMessage, ServerResponse } from 'node:http';

// PUT: the IETF draft creates uploads with any method that has content.
const allowMethods = 'POST, HEAD, PATCH, OPTIONS, GET, DELETE, PUT';
const allowHeaders = [
  'Authorization',
  'Origin',
  'X-Requested-With',
  'X-Request-ID',
  'X-HTTP-Method-Override',
  'Content-Type',
  'Upload-Length',
  'Upload-Offset',
  'Tus-Resumable',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Checksum',
  // The IETF draft (Resumable Uploads for HTTP), docs/ietf-resumable-uploads.md.
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Upload-Incomplete',
  'Content-Digest',
  'Content-Disposition',
];
const exposeHeaders = [
  'Upload-Offset',
  // A pre-finish hook's refusal reason and the outcome of non-critical hooks (programmable hooks).
  'Upload-Failed',
  'Wharf-Hooks',
  // Set on HEAD while pre-finish hooks have not approved a finished upload (downloads answer 409 meanwhile).
  'Upload-Pending',
  'Location',
  'Upload-Length',
  'Tus-Version',
  'Tus-Resumable',
  'Tus-Max-Size',
  'Tus-Extension',
  'Tus-Checksum-Algorithm',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Expires',
  'Content-Disposition',
  'Content-Range',
  // The IETF draft (Resumable Uploads for HTTP).
  'Upload-Complete',
  'Upload-Incomplete',
  'Upload-Limit',
].join(', ');

function wildcardToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${escaped}$`);
}

/**
 * CORS as rustus does it: `--cors` lists allowed origins with * and ? wildcards; empty allows any origin
 * (the Origin is echoed, never '*'). Returns true when the request was a preflight and has been answered.
 */
export function createCors(origins: readonly string[], extraAllowedHeaders: readonly string[] = []) {
  const patterns = origins.map(wildcardToRegExp);
  const allowedHeaders = [...allowHeaders, ...extraAllowedHeaders].join(', ');
  const allowed = (origin: string): boolean =>
    patterns.length === 0 || patterns.some((pattern) => pattern.test(origin));
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return false;
    res.setHeader('Vary', 'Origin');
    if (!allowed(origin)) return false;
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', allowMethods);
      res.setHeader('Access-Control-Allow-Headers', allowedHeaders);
      res.setHeader('Access-Control-Max-Age', '86400');
      res.statusCode = 204;
      res.end();
      return true;
    }
    res.setHeader('Access-Control-Expose-Headers', exposeHeaders);
    return false;
  };
}
