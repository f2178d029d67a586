import { ConfigError } from './option-table.ts';

/**
 * tusd's command-line flags (tusd 2, cmd/tusd/cli/flags.go), so a tusd command line starts Wharf the way a
 * rustus one does. Go's flag package takes `-flag value`, `--flag value` and `-flag=value`; a boolean flag
 * takes no separate value (`-behind-proxy`, `-behind-proxy=false`). Each flag either maps one to one onto a
 * Wharf option, or is refused (it would change what Wharf serves: TLS, another storage, gRPC hooks), or is
 * accepted with a warning naming it (it only tunes tusd internals or output). None is ignored silently.
 */

type Translation =
  /** Becomes `--<flag> <value>`; `convert` rewrites the value (a Go duration into Wharf's unit). */
  | { readonly kind: 'option'; readonly flag: string; readonly convert?: (value: string) => string }
  /** A boolean tusd flag that becomes a boolean Wharf flag. */
  | { readonly kind: 'switch'; readonly flag: string }
  /** A boolean tusd flag that removes a tus extension when true. */
  | { readonly kind: 'disable'; readonly extension: string }
  /** Collected into another option after the whole command line is read. */
  | { readonly kind: 'collect'; readonly slot: 'httpRetry' | 'httpBackoff' }
  | { readonly kind: 'refuse'; readonly why: string }
  | { readonly kind: 'warn'; readonly why: string; readonly boolean?: boolean };

const goDurationPart = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const goUnitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`1s`, `500ms`, `1m30s`, `0`) in milliseconds. */
export function goDurationMs(text: string, flag: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  let total = 0;
  let consumed = '';
  for (const match of trimmed.matchAll(goDurationPart)) {
    total += Number(match[1]) * (goUnitMs[match[2] ?? 's'] ?? 1000);
    consumed += match[0];
  }
  if (consumed === '' || consumed !== trimmed) {
    throw new ConfigError(
      `-${flag}: expected a Go duration such as 1s, 500ms or 1m30s, got ${JSON.stringify(text)}`,
    );
  }
  return total;
}

/** Whole seconds, rounded up (Wharf's timeouts are seconds; a sub-second tusd timeout becomes 1 s). */
function seconds(flag: string): (value: string) => string {
  return (value) => String(Math.max(1, Math.ceil(goDurationMs(value, flag) / 1000)));
}

function milliseconds(flag: string): (value: string) => string {
  return (value) => String(Math.round(goDurationMs(value, flag)));
}

const quiet = 'Wharf has no such setting; the flag is accepted and has no effect';

/** Every flag of tusd 2.9 (plus tusd 1's -hooks-stop-code), and what Wharf does with it. */
export const tusdFlags: ReadonlyMap<string, Translation> = new Map<string, Translation>([
  ['host', { kind: 'option', flag: 'host' }],
  ['port', { kind: 'option', flag: 'port' }],
  ['unix-sock', { kind: 'refuse', why: 'Wharf listens on TCP only' }],
  ['base-path', { kind: 'option', flag: 'url' }],
  ['behind-proxy', { kind: 'switch', flag: 'behind-proxy' }],
  ['enable-h2c', { kind: 'refuse', why: 'Wharf serves HTTP/1.1 only' }],
  ['tls-certificate', { kind: 'refuse', why: 'Wharf does not terminate TLS; put a TLS proxy in front' }],
  ['tls-key', { kind: 'refuse', why: 'Wharf does not terminate TLS; put a TLS proxy in front' }],
  ['tls-mode', { kind: 'refuse', why: 'Wharf does not terminate TLS; put a TLS proxy in front' }],
  ['enable-experimental-protocol', { kind: 'refuse', why: 'Wharf speaks tus 1.0 only, not the IETF draft' }],
  ['disable-download', { kind: 'disable', extension: 'getting' }],
  ['disable-termination', { kind: 'disable', extension: 'termination' }],
  ['disable-concatenation', { kind: 'disable', extension: 'concatenation' }],
  ['max-size', { kind: 'option', flag: 'max-file-size' }],
  ['disable-cors', { kind: 'warn', why: `${quiet} (CORS follows --cors)`, boolean: true }],
  [
    'cors-allow-origin',
    { kind: 'refuse', why: 'tusd takes a regular expression; give Wharf --cors with the origins' },
  ],
  ['cors-allow-credentials', { kind: 'warn', why: quiet, boolean: true }],
  ['cors-allow-methods', { kind: 'warn', why: quiet }],
  ['cors-allow-headers', { kind: 'warn', why: quiet }],
  ['cors-max-age', { kind: 'warn', why: quiet }],
  ['cors-expose-headers', { kind: 'warn', why: quiet }],
  ['upload-dir', { kind: 'option', flag: 'data-dir' }],
  ['filelock-holder-poll-interval', { kind: 'warn', why: `${quiet} (Wharf's file locks do not poll)` }],
  ['filelock-acquirer-poll-interval', { kind: 'warn', why: `${quiet} (Wharf's file locks do not poll)` }],
  ['dir-perms', { kind: 'warn', why: quiet }],
  ['file-perms', { kind: 'warn', why: quiet }],
  [
    's3-bucket',
    { kind: 'refuse', why: 'use --storage s3 with --s3-bucket, --s3-url and the --s3-* credentials' },
  ],
  ['s3-object-prefix', { kind: 'refuse', why: 'use --storage s3 and --dir-structure' }],
  ['s3-endpoint', { kind: 'refuse', why: 'use --storage s3 with --s3-url' }],
  ['s3-part-size', { kind: 'refuse', why: 'use --storage s3 with --s3-part-size' }],
  ['s3-min-part-size', { kind: 'refuse', why: 'use --storage s3 with --s3-part-size' }],
  ['s3-max-buffered-parts', { kind: 'refuse', why: 'use --storage s3 with --s3-part-concurrency' }],
  ['s3-disable-content-hashes', { kind: 'refuse', why: 'use --storage s3 with the --s3-* options' }],
  ['s3-disable-ssl', { kind: 'refuse', why: 'use --storage s3 with an http:// --s3-url' }],
  ['s3-concurrent-part-uploads', { kind: 'refuse', why: 'use --storage s3 with --s3-part-concurrency' }],
  ['s3-transfer-acceleration', { kind: 'refuse', why: 'Wharf has no S3 transfer acceleration' }],
  ['s3-log-api-calls', { kind: 'refuse', why: 'use --storage s3 and --log-level debug' }],
  ['gcs-bucket', { kind: 'refuse', why: 'Wharf has no Google Cloud Storage store' }],
  ['gcs-object-prefix', { kind: 'refuse', why: 'Wharf has no Google Cloud Storage store' }],
  ['gcs-endpoint', { kind: 'refuse', why: 'Wharf has no Google Cloud Storage store' }],
  ['azure-storage', { kind: 'refuse', why: 'Wharf has no Azure store' }],
  ['azure-container-access-type', { kind: 'refuse', why: 'Wharf has no Azure store' }],
  ['azure-blob-access-tier', { kind: 'refuse', why: 'Wharf has no Azure store' }],
  ['azure-object-prefix', { kind: 'refuse', why: 'Wharf has no Azure store' }],
  ['azure-endpoint', { kind: 'refuse', why: 'Wharf has no Azure store' }],
  [
    'hooks-enabled-events',
    { kind: 'option', flag: 'hooks', convert: (value) => (value.trim() === '' ? allEvents : value) },
  ],
  [
    'progress-hooks-interval',
    { kind: 'option', flag: 'hooks-progress-interval', convert: milliseconds('progress-hooks-interval') },
  ],
  ['hooks-dir', { kind: 'option', flag: 'hooks-dir' }],
  ['hooks-http', { kind: 'option', flag: 'hooks-http-urls' }],
  ['hooks-http-forward-headers', { kind: 'option', flag: 'hooks-http-proxy-headers' }],
  ['hooks-http-retry', { kind: 'collect', slot: 'httpRetry' }],
  ['hooks-http-backoff', { kind: 'collect', slot: 'httpBackoff' }],
  [
    'hooks-http-timeout',
    { kind: 'option', flag: 'http-hook-timeout', convert: seconds('hooks-http-timeout') },
  ],
  [
    'hooks-http-size-limit',
    { kind: 'warn', why: `${quiet} (Wharf reads at most 64 KiB of a hook's answer)` },
  ],
  ['hooks-grpc', { kind: 'refuse', why: 'Wharf has no gRPC hooks; use -hooks-http' }],
  ['hooks-grpc-retry', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-backoff', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-secure', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-server-tls-certificate', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-client-tls-certificate', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-client-tls-key', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-grpc-forward-headers', { kind: 'refuse', why: 'Wharf has no gRPC hooks' }],
  ['hooks-plugin', { kind: 'refuse', why: 'Wharf loads hook modules (--hooks-modules-dir), not Go plugins' }],
  ['hooks-stop-code', { kind: 'option', flag: 'hooks-stop-code' }],
  ['expose-metrics', { kind: 'switch', flag: 'metrics' }],
  ['metrics-path', { kind: 'warn', why: `${quiet} (metrics are at /metrics)` }],
  ['expose-pprof', { kind: 'warn', why: quiet, boolean: true }],
  ['pprof-path', { kind: 'warn', why: quiet }],
  ['pprof-block-profile-rate', { kind: 'warn', why: quiet }],
  ['pprof-mutex-profile-rate', { kind: 'warn', why: quiet }],
  ['show-greeting', { kind: 'warn', why: quiet, boolean: true }],
  ['verbose', { kind: 'warn', why: `${quiet} (use --log-level)`, boolean: true }],
  ['show-startup-logs', { kind: 'warn', why: `${quiet} (use --log-level)`, boolean: true }],
  ['log-format', { kind: 'warn', why: `${quiet} (Wharf logs JSON lines)` }],
  ['network-timeout', { kind: 'option', flag: 'network-timeout', convert: seconds('network-timeout') }],
  ['shutdown-timeout', { kind: 'option', flag: 'shutdown-timeout', convert: seconds('shutdown-timeout') }],
  [
    'acquire-lock-timeout',
    { kind: 'option', flag: 'lock-timeout', convert: seconds('acquire-lock-timeout') },
  ],
  ['request-completion-timeout', { kind: 'warn', why: quiet }],
]);

const allEvents = 'pre-create,post-create,post-receive,pre-finish,post-finish,pre-terminate,post-terminate';

/** What a tusd command line means when Wharf is not told otherwise: tusd's own defaults. */
export const tusdDefaults: Readonly<Record<string, string>> = {
  'hooks-format': 'tusd-v2',
  hooks: 'pre-create,post-create,post-receive,post-terminate,post-finish',
  'hooks-progress-interval': '1000',
  'hooks-retry-schedule': '1s,1s,1s',
  'http-hook-timeout': '15',
  url: '/files/',
  'data-dir': './data',
  port: '8080',
};

export interface TranslatedCommandLine {
  /** The command line in Wharf's spelling. */
  readonly argv: readonly string[];
  /** True when at least one flag is tusd's own spelling (then tusd's defaults apply, see {@link tusdDefaults}). */
  readonly tusd: boolean;
  /** One line per accepted flag that has no effect, naming it. */
  readonly warnings: readonly string[];
}

function isWharfFlag(name: string, wharfFlags: ReadonlySet<string>): boolean {
  return wharfFlags.has(name) || wharfFlags.has(name.replaceAll('_', '-'));
}

const goTrue = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const goFalse = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

/**
 * Rewrites tusd's flags into Wharf's. A flag spelled as a Wharf flag (`--port`, `--hooks-dir`) is left to
 * Wharf's parser; a single-dash flag only counts as tusd's when tusd has it. With tusd's flags, each default
 * of {@link tusdDefaults} is added unless the command line sets that option itself.
 */
export function translateTusdFlags(
  argv: readonly string[],
  wharfFlags: ReadonlySet<string>,
  defaultExtensions: readonly string[],
): TranslatedCommandLine {
  const out: string[] = [];
  const warnings: string[] = [];
  const disabled = new Set<string>();
  let retry: number | undefined;
  let backoffMs: number | undefined;
  let tusd = false;
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] ?? '';
    if (token === '--') {
      out.push(...argv.slice(index));
      break;
    }
    const match = /^--?([a-z0-9][a-z0-9-]*)(?:=([\s\S]*))?$/.exec(token);
    const name = match?.[1];
    const translation = name === undefined ? undefined : tusdFlags.get(name);
    const doubleDash = token.startsWith('--');
    if (match === null || name === undefined || translation === undefined) {
      out.push(token);
      continue;
    }
    // `--port 1080` is Wharf's own flag; `-port 1080` and tusd-only names are tusd's.
    if (doubleDash && isWharfFlag(name, wharfFlags)) {
      out.push(token);
      continue;
    }
    tusd = true;
    const inline = match[2];
    const isBoolean =
      translation.kind === 'switch' ||
      translation.kind === 'disable' ||
      (translation.kind === 'warn' && translation.boolean === true);
    let value: string;
    if (isBoolean) {
      value = inline ?? 'true';
      if (!goTrue.has(value) && !goFalse.has(value)) {
        throw new ConfigError(`-${name}: expected true or false, got ${JSON.stringify(value)}`);
      }
      value = goTrue.has(value) ? 'true' : 'false';
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[index + 1];
      if (next === undefined) throw new ConfigError(`-${name} needs a value`);
      // As Wharf's own parser: a flag never swallows the next flag as its value.
      if (next.startsWith('--') || /^-[a-zA-Z]/.test(next)) {
        throw new ConfigError(
          `-${name} needs a value, but the next argument ${JSON.stringify(next)} looks like an option; for a value that starts with "-", write -${name}=<value>`,
        );
      }
      value = next;
      index++;
    }
    switch (translation.kind) {
      case 'option':
        out.push(`--${translation.flag}=${translation.convert ? translation.convert(value) : value}`);
        break;
      case 'switch':
        out.push(`--${translation.flag}=${value}`);
        break;
      case 'disable':
        if (value === 'true') disabled.add(translation.extension);
        else disabled.delete(translation.extension);
        break;
      case 'collect':
        if (translation.slot === 'httpRetry') {
          if (!/^\d+$/.test(value.trim()))
            throw new ConfigError(`-${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
          retry = Number(value.trim());
        } else backoffMs = goDurationMs(value, name);
        break;
      case 'refuse':
        throw new ConfigError(`tusd flag -${name} is not supported: ${translation.why}`);
      case 'warn':
        warnings.push(`tusd flag -${name} is ignored: ${translation.why}`);
        break;
    }
  }
  if (!tusd) return { argv: out, tusd, warnings };
  const given = new Set(
    out.flatMap((token) => {
      const flag = /^--([a-z0-9_-]+)/.exec(token)?.[1];
      return flag === undefined ? [] : [flag.replaceAll('_', '-')];
    }),
  );
  if (disabled.size > 0 && !given.has('tus-extensions')) {
    const kept = defaultExtensions.filter(
      (extension) =>
        !disabled.has(extension) &&
        !(disabled.has('concatenation') && extension === 'concatenation-unfinished'),
    );
    out.push(`--tus-extensions=${kept.join(',')}`);
  }
  if ((retry !== undefined || backoffMs !== undefined) && !given.has('hooks-retry-schedule')) {
    const delay = `${backoffMs ?? 1000}ms`;
    out.push(`--hooks-retry-schedule=${Array.from({ length: retry ?? 3 }, () => delay).join(',')}`);
  }
  for (const [flag, value] of Object.entries(tusdDefaults)) {
    if (!given.has(flag) && !out.some((token) => token.startsWith(`--${flag}=`)))
      out.push(`--${flag}=${value}`);
  }
  return { argv: out, tusd, warnings };
}

/** The "tusd's flags" section of docs/configuration.md. */
export function renderTusdFlagsDoc(): string[] {
  const lines = [
    '',
    "## tusd's flags",
    '',
    "A tusd 2 command line starts Wharf too: tusd's flags are read the way Go reads them (`-flag value`,",
    '`--flag value`, `-flag=value`; a boolean flag alone means true, `-flag=false` turns it off). A double-dash',
    "flag that is also Wharf's (`--port`, `--hooks-dir`, `--host`) is Wharf's, with the same meaning. As soon as",
    "one tusd spelling is used, tusd's defaults apply to what the command line does not set itself:",
    Object.entries(tusdDefaults)
      .map(([flag, value]) => `\`--${flag}=${value}\``)
      .join(', ') +
      ' (so a tusd hook server receives tusd 2 payloads and works unchanged; `--hooks-format` or any other flag',
    "on the command line still wins). `--host` keeps Wharf's default. A flag Wharf cannot honour stops it with",
    "exit code 2 naming the flag; one that only tunes tusd's internals is accepted with a warning naming it.",
    '',
    '| tusd flag | In Wharf |',
    '| --- | --- |',
  ];
  for (const [name, translation] of tusdFlags) {
    let text: string;
    switch (translation.kind) {
      case 'option':
        text = `\`--${translation.flag}\`${translation.convert ? ' (the Go duration converted)' : ''}`;
        break;
      case 'switch':
        text = `\`--${translation.flag}\``;
        break;
      case 'disable':
        text = `removes \`${translation.extension}\` from \`--tus-extensions\``;
        break;
      case 'collect':
        text =
          '`--hooks-retry-schedule`: `-hooks-http-retry` delays of `-hooks-http-backoff` (default 3 × 1s), for post hooks delivered through the outbox';
        break;
      case 'refuse':
        text = `refused: ${translation.why}`;
        break;
      case 'warn':
        text = `warning, no effect: ${translation.why}`;
        break;
    }
    lines.push(`| \`-${name}\` | ${text.replaceAll('|', '\\|')} |`);
  }
  return lines;
}
