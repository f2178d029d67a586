import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

/*
 * node:http and node:https, required rather than imported, for the start's CPU (docs/architecture.md, "Start
 * cost"). An ESM `import … from 'node:http'` builds a facade that reads every export of the module, and on
 * Node 22 and 24 some of them are getters that load undici (fetch's client: WebSocket, MessageEvent, …):
 * about 40 ms of CPU at every start, for nothing Wharf uses. `require` hands back the module object, and only
 * the names below are read. node:https brings tls (10-20 ms): it is loaded on first use, so a start with no
 * https hook target and no cloud storage never pays for it. Type-only imports of node:http stay as they are.
 */
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof Http;

export const { Agent, createServer, request, STATUS_CODES, validateHeaderName, validateHeaderValue } = http;

let https: typeof Https | undefined;

/** node:https, loaded on the first call (it brings tls). */
export function nodeHttps(): typeof Https {
  https ??= require('node:https') as typeof Https;
  return https;
}
