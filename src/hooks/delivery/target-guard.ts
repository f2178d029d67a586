import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { basename, dirname } from 'node:path';

/**
 * Where hooks may send events. An allow-list (`--hooks-allowed-urls`) limits every HTTP target, configured or
 * added at run time; targets added at run time are also refused when they resolve to a private, loopback or
 * link-local address (server-side request forgery into the operator's network), unless that is allowed.
 */

/** Why a target URL was refused: `400` (not an http(s) URL) or `403` (outside the policy). */
export class TargetRefusedError extends Error {
  readonly code = 'ERR_HOOK_TARGET_REFUSED';
  readonly status: 400 | 403;
  constructor(message: string, status: 400 | 403) {
    super(message);
    this.name = 'TargetRefusedError';
    this.status = status;
  }
}

/** One allow-list entry: a URL prefix (`https://host/path/`) or a host pattern (`example.com`, `*.example.com:8443`). */
type AllowRule =
  | { readonly kind: 'prefix'; readonly origin: string; readonly path: string }
  | {
      readonly kind: 'host';
      readonly host: string;
      readonly wildcard: boolean;
      readonly port: string | undefined;
    };

function parseRule(pattern: string): AllowRule {
  if (pattern.includes('://')) {
    let url: URL;
    try {
      url = new URL(pattern);
    } catch {
      throw new TargetRefusedError(`allow-list entry ${JSON.stringify(pattern)} is not a URL`, 400);
    }
    return { kind: 'prefix', origin: url.origin, path: url.pathname };
  }
  const match = /^(\*\.)?([^:/\s]+|\[[0-9a-f:.]+\])(?::(\d+))?$/i.exec(pattern.trim());
  if (!match)
    throw new TargetRefusedError(`allow-list entry ${JSON.stringify(pattern)} is not a host pattern`, 400);
  return {
    kind: 'host',
    wildcard: match[1] !== undefined,
    host: (match[2] ?? '').toLowerCase(),
    port: match[3],
  };
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

function ruleAllows(rule: AllowRule, url: URL): boolean {
  if (rule.kind === 'prefix') {
    if (url.origin !== rule.origin) return false;
    if (rule.path === '/' || url.pathname === rule.path) return true;
    // `/hooks` allows `/hooks/x` and `/hooks?…` but not `/hooks-evil`.
    const base = rule.path.endsWith('/') ? rule.path : `${rule.path}/`;
    return url.pathname.startsWith(base);
  }
  const host = url.hostname.toLowerCase();
  const hostMatches = rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host;
  if (!hostMatches) return false;
  return rule.port === undefined || rule.port === (url.port || defaultPort(url.protocol));
}

/** The parsed `--hooks-allowed-urls`; an empty list allows every URL. */
export class TargetAllowList {
  readonly #rules: readonly AllowRule[];
  constructor(patterns: readonly string[]) {
    this.#rules = patterns.map(parseRule);
  }

  get restricted(): boolean {
    return this.#rules.length > 0;
  }

  allows(url: URL): boolean {
    return this.#rules.length === 0 || this.#rules.some((rule) => ruleAllows(rule, url));
  }
}

/** Addresses a runtime target must not reach unless allowed: RFC 1918, loopback, link-local, CGNAT, ULA, … */
const privateRanges = (() => {
  const list = new BlockList();
  for (const [network, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv4');
  }
  for (const [network, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
    ['64:ff9b::', 96],
    ['2001:db8::', 32],
  ] as const) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
})();

/** Whether an IP address (v4 or v6, IPv4-mapped included) is private, loopback, link-local or otherwise internal. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1] !== undefined) return privateRanges.check(mapped[1], 'ipv4');
  const version = isIP(bare);
  if (version === 4) return privateRanges.check(bare, 'ipv4');
  if (version === 6) {
    // ::ffff:7f00:1 is the hex spelling of ::ffff:127.0.0.1.
    const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(bare);
    if (hexMapped?.[1] !== undefined && hexMapped[2] !== undefined) {
      const high = Number.parseInt(hexMapped[1], 16);
      const low = Number.parseInt(hexMapped[2], 16);
      return privateRanges.check(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`, 'ipv4');
    }
    return privateRanges.check(bare, 'ipv6');
  }
  return false;
}

/** Resolves a host name to every address it has (the system resolver, as the HTTP transport uses). */
export type HostResolver = (host: string) => Promise<readonly string[]>;

const systemResolver: HostResolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

export interface TargetPolicy {
  readonly allowList: TargetAllowList;
  readonly allowPrivate: boolean;
  readonly resolve?: HostResolver;
}

/** An absolute http(s) URL, or a 400. */
export function parseTargetUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TargetRefusedError('url: not an absolute URL', 400);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TargetRefusedError('url: must use http or https', 400);
  }
  if (!userInfoDecodes(url)) {
    throw new TargetRefusedError('url: its user name or password is not valid percent-encoding', 400);
  }
  return url;
}

/**
 * Whether a URL's user name and password percent-decode: the HTTP client decodes them for its Authorization
 * header, so one that does not is refused where the URL is given, not by a URIError when the client is built.
 */
export function userInfoDecodes(url: URL): boolean {
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return true;
  } catch {
    return false;
  }
}

/** Checks a configured hook URL against the allow-list (private addresses are the operator's choice there). */
export function checkConfiguredTarget(text: string, allowList: TargetAllowList): void {
  const url = parseTargetUrl(text);
  if (!allowList.allows(url)) {
    throw new TargetRefusedError(`hook URL ${urlLabel(text)} is not allowed by --hooks-allowed-urls`, 403);
  }
}

/**
 * Checks a target added at run time: an http(s) URL inside the allow-list whose host resolves only to public
 * addresses (unless private ones are allowed). Every address counts: one private answer is enough to refuse.
 * The check happens when the target is added; a DNS answer that changes later is not seen (see docs/admin.md).
 */
export async function checkRuntimeTarget(text: string, policy: TargetPolicy): Promise<URL> {
  const url = parseTargetUrl(text);
  if (!policy.allowList.allows(url)) {
    throw new TargetRefusedError('url: not allowed by --hooks-allowed-urls', 403);
  }
  if (policy.allowPrivate) return url;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: readonly string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(host);
    } catch {
      throw new TargetRefusedError(`url: the host ${host} does not resolve`, 400);
    }
  }
  if (addresses.length === 0 || addresses.some(isPrivateAddress)) {
    throw new TargetRefusedError(
      'url: resolves to a private, loopback or link-local address (allowed only with --hooks-allow-private-targets)',
      403,
    );
  }
  return url;
}

function defaultPortOf(protocol: string): string {
  switch (protocol) {
    case 'https:':
      return '443';
    case 'http:':
      return '80';
    case 'amqps:':
      return '5671';
    case 'amqp:':
      return '5672';
    default:
      return '';
  }
}

/**
 * A URL as logs, metrics and API answers show it: scheme, host and port only. User names, passwords, paths
 * and query strings are where secrets live (`?token=…`, Slack-style `/services/T…/B…/secret` paths), so none
 * of them is shown; when the URL had any, a short digest of the whole URL tells two targets on one host
 * apart (it reveals nothing that guessing the whole URL would not).
 */
export function urlLabel(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '<unparsable URL>';
  }
  const port = url.port || defaultPortOf(url.protocol);
  const origin = `${url.protocol}//${url.hostname}${port === '' ? '' : `:${port}`}`;
  const hidden =
    url.username !== '' ||
    url.password !== '' ||
    url.pathname.length > 1 ||
    url.search !== '' ||
    url.hash !== '';
  if (!hidden) return origin;
  const digest = createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
  return `${origin} (${digest})`;
}

/**
 * A target name (`http:<url>`, `file:<path>`, `dir:<folder>/<hook>`, `amqp:<url>#…`, …) as logs, metrics and
 * the admin API show it: URLs by scheme, host and port ({@link urlLabel}); executables by their file's base
 * name (for a hooks folder, the hook name), never their absolute path; broker exchanges, topics and named
 * hooks as they are. Targets are still stored and delivered to under their full name.
 */
export function redactTarget(name: string): string {
  let label = redactedLabels.get(name);
  if (label === undefined) {
    label = redactTargetNow(name);
    // A few targets, each named on every run record and log line: parsed once (bounded, should names vary).
    if (redactedLabels.size >= 256) redactedLabels.clear();
    redactedLabels.set(name, label);
  }
  return label;
}

const redactedLabels = new Map<string, string>();

function redactTargetNow(name: string): string {
  if (name.startsWith('http:')) return `http:${urlLabel(name.slice(5))}`;
  if (name.startsWith('file:') || name.startsWith('dir:')) {
    const colon = name.indexOf(':');
    return `${name.slice(0, colon)}:${basename(name.slice(colon + 1))}`;
  }
  if (name.startsWith('amqp:')) {
    // `amqp:<url>#<exchange>/<routing key>`: the URL may carry a user, a password and a vhost.
    const rest = name.slice(5);
    const hash = rest.indexOf('#');
    const url = hash === -1 ? rest : rest.slice(0, hash);
    return `amqp:${urlLabel(url).replace(/ \(.*\)$/, '')}${hash === -1 ? '' : rest.slice(hash)}`;
  }
  return name;
}

/**
 * A message (a run's error, a target's last error) with the target's hidden parts replaced by its label: an
 * executable that cannot be run is reported with its path, an HTTP client error may quote the URL.
 */
export function redactTargetText(text: string, target: string): string {
  const colon = target.indexOf(':');
  if (colon === -1) return text;
  const kind = target.slice(0, colon);
  const full = target.slice(colon + 1);
  const label = redactTarget(target).slice(colon + 1);
  let shown = full.length > 1 ? text.replaceAll(full, label) : text;
  if (kind === 'dir') {
    const folder = dirname(full);
    if (folder.length > 1) shown = shown.replaceAll(folder, '<hooks dir>');
  }
  return shown;
}
