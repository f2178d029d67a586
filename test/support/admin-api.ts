import { send } from './http.ts';
import type { WharfProcess } from './wharf-process.ts';

export interface AdminReply {
  readonly status: number;
  readonly text: string;
  /** The JSON body; `{}` for an empty one (204). */
  readonly body: Record<string, unknown>;
}

/**
 * Requests to a Wharf's admin API (`/admin/api/<route>`) with this bearer token: JSON in, the status, text and
 * parsed JSON out.
 */
export function adminClient(
  token: string,
): (wharf: WharfProcess, method: string, route: string, body?: unknown) => Promise<AdminReply> {
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  return async (wharf, method, route, body) => {
    const reply = await send(method, `${wharf.origin}/admin/api/${route}`, {
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return {
      status: reply.status,
      text: reply.text,
      body: reply.text === '' ? {} : (JSON.parse(reply.text) as Record<string, unknown>),
    };
  };
}
