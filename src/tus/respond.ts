import type { IncomingMessage, ServerResponse } from 'node:http';
import { backendFailureIn } from '../backends/backend.ts';
import { WharfError } from '../errors.ts';
import { hasBody, tusVersion } from './headers.ts';

/** Seconds a client is asked to wait when the shared record store is away (clients use their own delays too). */
const backendRetryAfterSeconds = 1;

/**
 * The coded error a failure answers as. A shared backend that is down or hung answers 503 with Retry-After;
 * to HEAD it answers 423, because tus-js-client (and Uppy on top of it) retries a HEAD only on 423 and takes
 * any other non-2xx HEAD for "upload gone", creating a new upload from byte 0.
 */
export function asWharfError(error: unknown, isHead: boolean): WharfError {
  if (error instanceof WharfError && !(error.code === 'ERR_INTERNAL' && backendFailureIn(error))) {
    // An upload busy past --lock-timeout is 423 to HEAD for the same reason: a 503 made tus-js-client start over.
    if (isHead && error.code === 'ERR_LOCK_TIMEOUT') {
      return new WharfError('ERR_LOCK_TIMEOUT', {
        cause: error.cause,
        status: 423,
        headers: { ...error.headers, 'Retry-After': String(backendRetryAfterSeconds) },
      });
    }
    return error;
  }
  if (backendFailureIn(error)) {
    return new WharfError('ERR_BACKEND_UNAVAILABLE', {
      cause: error,
      status: isHead ? 423 : 503,
      headers: { 'Retry-After': String(backendRetryAfterSeconds) },
    });
  }
  return new WharfError('ERR_INTERNAL', { cause: error });
}

/** Maps any failure to the response a client sees. The only place errors become HTTP. */
export function sendError(req: IncomingMessage, res: ServerResponse, error: unknown, isHead: boolean): void {
  const wharfError = asWharfError(error, isHead);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = wharfError.status;
  // Node knows no reason phrase for tus's own status; the checksum extension names it.
  if (wharfError.status === 460) res.statusMessage = 'Checksum Mismatch';
  for (const [name, value] of Object.entries(wharfError.headers)) res.setHeader(name, value);
  if (wharfError.status === 412) res.setHeader('Tus-Version', tusVersion);
  // The body was not (fully) read: closing is cheaper and safer than draining an unwanted upload.
  if (!req.complete && hasBody(req.headers)) res.setHeader('Connection', 'close');
  if (isHead) {
    res.end();
    return;
  }
  const body = wharfError.body ?? `${wharfError.code}: ${wharfError.message}\n`;
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/**
 * Ends a successful answer with what answering hooks added (tusd 2's `httpResponse`). The protocol headers
 * already set stay Wharf's. A body cannot ride on `204 No Content`, so an answer with one becomes `200 OK`
 * (tus clients accept any 2xx).
 */
export function endWithHookResponse(
  res: ServerResponse,
  response: { readonly body?: string; readonly headers: Readonly<Record<string, string>> } | undefined,
): void {
  if (response === undefined) {
    res.end();
    return;
  }
  for (const [name, value] of Object.entries(response.headers)) {
    if (!res.hasHeader(name)) res.setHeader(name, value);
  }
  if (response.body === undefined) {
    res.end();
    return;
  }
  if (res.statusCode === 204) res.statusCode = 200;
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(response.body));
  res.end(response.body);
}
