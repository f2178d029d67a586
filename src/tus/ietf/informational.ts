import type { ServerResponse } from 'node:http';
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from '../../node-http.ts';

/** Node 24.x and 26+ (`res.writeInformation`, nodejs/node#63155); typed here since Node 20's types lack it. */
interface WithWriteInformation {
  writeInformation(status: number, headers: Record<string, string>): void;
}

/** What ServerResponse uses for 100, 102 and 103 itself: queued behind earlier pipelined answers. */
interface WithRawWrite {
  _writeRaw(data: string, encoding: BufferEncoding): boolean;
}

/**
 * Sends an informational (1xx) response ahead of the final one; false when it cannot be sent. Node 20 and 22
 * have public calls for 100, 102 and 103 only. They all end in the response's `_writeRaw`, which writes on the
 * socket when this response owns it and otherwise queues the bytes behind the answers to earlier pipelined
 * requests; a write on the socket itself would overtake those. So: Node's own `writeInformation` when it has
 * one, else the same path as `writeProcessing`, with header names and values checked as `setHeader` checks them.
 * `writeInformation` takes its reason phrase from `STATUS_CODES`, which has no 104 (Node 24 sends "104 unknown"),
 * so it is used only when it would send the given reason, or when the raw path is gone. Nothing is sent once the final head is out, to an HTTP/1.0 client (RFC 9110 15.2), or to a gone socket.
 */
export function sendInformational(
  res: ServerResponse,
  status: number,
  reason: string,
  headers: Readonly<Record<string, string>>,
): boolean {
  if (status < 100 || status > 199 || status === 101) throw new RangeError(`${status} is not a 1xx status`);
  if (res.headersSent || res.writableEnded || res.destroyed) return false;
  if (res.req.httpVersionMajor !== 1 || res.req.httpVersionMinor < 1) return false;
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  }
  const native = res as unknown as Partial<WithWriteInformation>;
  const raw = res as unknown as Partial<WithRawWrite>;
  if (
    typeof native.writeInformation === 'function' &&
    (STATUS_CODES[status] === reason || typeof raw._writeRaw !== 'function')
  ) {
    native.writeInformation(status, { ...headers });
    return true;
  }
  if (typeof raw._writeRaw !== 'function') return false;
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  raw._writeRaw(`HTTP/1.1 ${status} ${reason}\r\n${lines.join('')}\r\n`, 'latin1');
  return true;
}
