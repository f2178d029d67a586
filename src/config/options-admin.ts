import { isIP } from 'node:net';
import {
  checkConfiguredTarget,
  TargetAllowList,
  TargetRefusedError,
  urlLabel,
} from '../hooks/delivery/target-guard.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

/**
 * A refused `--hooks-http-urls` entry as an error shows it: a URL by its label (no user, password, path or
 * query: where secrets live); text that is no URL at all as typed, so the user sees the mistake.
 */
function shownUrl(text: string): string {
  return URL.canParse(text) ? urlLabel(text) : text.slice(0, 200);
}

const group = 'Admin API, metrics and hook safety';

/** `--admin`, its token and history, `/metrics`, and the limits on where hooks may send events. */
export const adminOptions: readonly OptionSpec[] = [
  {
    key: 'admin',
    flag: 'admin',
    env: ['WHARF_ADMIN'],
    kind: 'boolean',
    default: 'false',
    help: 'Serve the admin API under /admin/api (uploads, hook runs, resend, dead letters, targets, a live stream) and the dashboard at /admin. Needs --admin-token unless --host is a loopback address.',
    group,
  },
  {
    key: 'adminToken',
    flag: 'admin-token',
    env: ['WHARF_ADMIN_TOKEN'],
    kind: 'string',
    help: 'Bearer token the admin API asks for (Authorization: Bearer <token>). Prefer the environment variable: a flag shows in the process list. Never logged.',
    group,
  },
  {
    key: 'adminHistoryLimit',
    flag: 'admin-history-limit',
    env: ['WHARF_ADMIN_HISTORY_LIMIT'],
    kind: 'integer',
    min: 1,
    default: '10000',
    help: 'Hook events whose runs are kept in the run history (in the info storage: files under <info-dir>/.wharf-history, Redis or PostgreSQL); older ones are removed.',
    group,
  },
  {
    key: 'adminHistoryMaxAge',
    flag: 'admin-history-max-age',
    env: ['WHARF_ADMIN_HISTORY_MAX_AGE'],
    kind: 'string',
    default: '7d',
    help: 'How long hook events stay in the run history: a number of seconds or a duration such as 90s, 30m, 12h, 7d.',
    group,
  },
  {
    key: 'metrics',
    flag: 'metrics',
    env: ['WHARF_METRICS'],
    kind: 'boolean',
    default: 'true',
    help: 'Serve Prometheus metrics at /metrics (outside the base URL, as rustus does): uploads, requests, bytes, hook runs and the outbox.',
    group,
  },
  {
    key: 'metricsToken',
    flag: 'metrics-token',
    env: ['WHARF_METRICS_TOKEN'],
    kind: 'string',
    help: 'Bearer token /metrics asks for (Authorization: Bearer <token>; 401 without it). Unset: /metrics is open, and shows no secret (targets by scheme, host and port). Prefer the environment variable. Never logged.',
    group,
  },
  {
    key: 'hooksAllowedUrls',
    flag: 'hooks-allowed-urls',
    env: ['WHARF_HOOKS_ALLOWED_URLS'],
    kind: 'list',
    default: '',
    help: 'Where HTTP hooks may send events, comma separated: URL prefixes (https://hooks.example.com/wharf/) or host patterns (example.com, *.example.com, hooks.example.net:8080). Configured hook URLs outside the list stop Wharf at start; targets added through the admin API are refused (403). Empty: no limit.',
    group,
  },
  {
    key: 'hooksAllowPrivateTargets',
    flag: 'hooks-allow-private-targets',
    env: ['WHARF_HOOKS_ALLOW_PRIVATE_TARGETS'],
    kind: 'boolean',
    default: 'false',
    help: 'Let targets added through the admin API resolve to private, loopback or link-local addresses (refused by default, against server-side request forgery).',
    group,
  },
];

export interface AdminConfig {
  /** `--admin`: serve /admin/api and /admin. */
  readonly enabled: boolean;
  /** The bearer token; undefined only when bound to loopback. Never logged. */
  readonly token: string | undefined;
  /** Hook events kept in the run history. */
  readonly historyLimit: number;
  /** Milliseconds a hook event stays in the run history. */
  readonly historyMaxAgeMs: number;
  /** `/metrics` on. */
  readonly metrics: boolean;
  /** `--metrics-token`: /metrics needs `Authorization: Bearer <token>`; undefined: open. Never logged. */
  readonly metricsToken: string | undefined;
  /** `--hooks-allowed-urls`; empty: any URL. */
  readonly allowedUrls: readonly string[];
  readonly allowPrivateTargets: boolean;
}

const units: Readonly<Record<string, number>> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `90s`, `30m`, `12h`, `7d` -> milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(text.trim());
  const unit = match ? units[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new ConfigError(
      `--${flag}: expected a duration such as 3600, 30m, 12h or 7d, got ${JSON.stringify(text)}`,
    );
  }
  return Number(match[1]) * unit;
}

/** Whether `host` (as given to --host) only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

function allowListOf(patterns: readonly string[]): TargetAllowList {
  try {
    return new TargetAllowList(patterns);
  } catch (error) {
    if (error instanceof TargetRefusedError) throw new ConfigError(`--hooks-allowed-urls: ${error.message}`);
    throw error;
  }
}

/** One `--hooks-http-urls` entry: an error names that flag and the URL (by its label). */
function checkHttpHookUrl(url: string, allowList: TargetAllowList): void {
  try {
    checkConfiguredTarget(url, allowList);
  } catch (error) {
    if (!(error instanceof TargetRefusedError)) throw error;
    if (error.status === 400 && !error.message.includes('percent-encoding')) {
      throw new ConfigError(
        `--hooks-http-urls: expected absolute http:// or https:// URLs, got ${JSON.stringify(shownUrl(url))}`,
      );
    }
    throw new ConfigError(`--hooks-http-urls: ${error.message}`);
  }
}

/** The admin settings, checked: with --admin and no token, only a loopback --host is accepted. */
export function adminConfig(options: RawOptions, host: string): AdminConfig {
  const enabled = options.admin === true;
  const token =
    typeof options.adminToken === 'string' && options.adminToken !== '' ? options.adminToken : undefined;
  if (enabled && token === undefined && !isLoopbackHost(host)) {
    throw new ConfigError(
      `--admin needs --admin-token (or WHARF_ADMIN_TOKEN) when --host is not a loopback address (got ${host}): the admin API can resend events and add hook targets`,
    );
  }
  const allowedUrls = Array.isArray(options.hooksAllowedUrls) ? options.hooksAllowedUrls : [];
  const allowList = allowListOf(allowedUrls);
  const httpUrls = Array.isArray(options.hooksHttpUrls) ? options.hooksHttpUrls : [];
  for (const url of httpUrls) checkHttpHookUrl(url, allowList);
  return {
    enabled,
    token,
    historyLimit: typeof options.adminHistoryLimit === 'number' ? options.adminHistoryLimit : 10_000,
    historyMaxAgeMs: parseDuration(
      typeof options.adminHistoryMaxAge === 'string' ? options.adminHistoryMaxAge : '7d',
      'admin-history-max-age',
    ),
    metrics: options.metrics !== false,
    metricsToken:
      typeof options.metricsToken === 'string' && options.metricsToken !== ''
        ? options.metricsToken
        : undefined,
    allowedUrls,
    allowPrivateTargets: options.hooksAllowPrivateTargets === true,
  };
}
