import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Whether the request carries `Authorization: Bearer <token>`. Both sides are hashed first so the comparison
 * takes the same time whatever the length or content of the guess. Without a configured token (Wharf bound to
 * loopback only) every request is let in.
 */
export function isAuthorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  const offered = match?.[1] ?? '';
  // Always compare, even for a missing header, so that case takes no shortcut either.
  const equal = timingSafeEqual(digest(offered), digest(token));
  return equal && offered !== '';
}
