import type { HooksConfig } from '../hooks/engine-config.ts';
import type { UploadEventName } from '../hooks/events.ts';
import {
  ConfigError,
  coerceOption,
  type OptionSpec,
  type OptionValue,
  type RawOptions,
} from './option-table.ts';
import { optionTable, type TusExtensionName } from './options.ts';
import { type AdminConfig, adminConfig } from './options-admin.ts';
import { amqpHooksConfig } from './options-amqp.ts';
import { type AzureSettings, azureSettingsFrom, type GcsSettings, gcsSettingsFrom } from './options-cloud.ts';
import { deliveryConfig } from './options-delivery.ts';
import { kafkaHooksConfig } from './options-kafka.ts';
import { outboxConfig } from './options-outbox.ts';
import { type S3Settings, s3SettingsFrom } from './options-s3.ts';
import { translateTusdFlags } from './options-tusd.ts';
import { webhooksConfig } from './options-webhooks.ts';
import { type InfoStorageName, sharedStateConfig } from './state.ts';

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** The validated, frozen configuration handed down explicitly to every part of Wharf. */
export interface Config {
  readonly host: string;
  readonly port: number;
  /** Normalised base path: leading slash, no trailing slash ('' when mounted at the root). */
  readonly basePath: string;
  readonly workers: number;
  readonly corsOrigins: readonly string[];
  readonly behindProxy: boolean;
  readonly extensions: ReadonlySet<TusExtensionName>;
  readonly storage: 'file-storage' | 's3' | 'hybrid-s3' | 'gcs' | 'azure';
  /** Set when --storage is s3 or hybrid-s3. */
  readonly s3: S3Settings | undefined;
  /** Set when --storage is gcs. */
  readonly gcs: GcsSettings | undefined;
  /** Set when --storage is azure. */
  readonly azure: AzureSettings | undefined;
  readonly dataDir: string;
  readonly dirStructure: string;
  readonly forceFsync: boolean;
  readonly infoStorage: InfoStorageName;
  readonly infoDir: string;
  /** Redis or PostgreSQL URL for redis-info-storage / db-info-storage. */
  readonly infoDbDsn: string | undefined;
  /** Seconds; 0 = records never expire. */
  readonly redisInfoExpirationSeconds: number;
  readonly lockTtlMs: number;
  /** How long one Redis command or PostgreSQL query may take (--backend-timeout). */
  readonly backendTimeoutMs: number;
  /** Prefix of every Redis key Wharf writes (--redis-key-prefix). */
  readonly redisKeyPrefix: string;
  /** The PostgreSQL schema of every Wharf table (--postgres-schema); undefined: the default search path. */
  readonly postgresSchema: string | undefined;
  readonly removeParts: boolean;
  /** Milliseconds; 0 = uploads never expire. */
  readonly uploadExpirationMs: number;
  readonly expirationSweepIntervalMs: number;
  /** Bytes; 0 = unlimited. */
  readonly maxBodySize: number;
  /** Bytes; 0 = unlimited. */
  readonly maxFileSize: number;
  readonly allowEmpty: boolean;
  /** `--ietf-draft`: serve the IETF draft (Resumable Uploads for HTTP) next to tus 1.0. */
  readonly ietfDraft: boolean;
  readonly maxHeaderSize: number;
  readonly networkTimeoutMs: number;
  /** Bytes per second a body must average over each network-timeout window; 0 = no minimum. */
  readonly minBodyRate: number;
  readonly lockTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly accessLog: boolean;
  readonly healthAccessLog: boolean;
  readonly hooks: HooksConfig;
  /** `--hooks-progress-interval`: ms between post-receive events during a PATCH; 0 = one per PATCH. */
  readonly hooksProgressIntervalMs: number;
  /** `--hooks-modules-dir`: folder of hook modules (may not exist). */
  readonly hooksModulesDir: string;
  /** `--config`: the named hooks and endpoints file, read at start-up; undefined when not given. */
  readonly configFile: string | undefined;
  /** `--admin`, its token and run history, `/metrics`, and the hook target allow-list. */
  readonly admin: AdminConfig;
  /** Environment the config was read from; only config/ reads process.env. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface ParsedCommandLine {
  readonly options: RawOptions;
  readonly positionals: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
  /** True when the command line used tusd's flags (see options-tusd.ts): tusd's defaults then apply. */
  readonly tusd?: boolean;
  /** tusd flags accepted without effect, each naming the flag: the CLI logs them as warnings. */
  readonly warnings?: readonly string[];
}

const wharfFlagNames: ReadonlySet<string> = new Set(
  optionTable.flatMap((spec) => [spec.flag, ...(spec.aliases ?? [])]),
);

function findSpec(name: string): OptionSpec | undefined {
  return optionTable.find((spec) => spec.flag === name || spec.aliases?.includes(name));
}

/**
 * Parses argv against the option table: `--flag value`, `--flag=value`, `-p value`, boolean flags
 * bare or with `=true|false`, and rustus's underscore spellings (`--data_dir`).
 */
export function parseCommandLine(original: readonly string[]): ParsedCommandLine {
  const extensions = optionTable.find((spec) => spec.key === 'tusExtensions')?.default?.split(',') ?? [];
  const translated = translateTusdFlags(original, wharfFlagNames, extensions);
  const argv = translated.argv;
  const options: Record<string, OptionValue> = {};
  const positionals: string[] = [];
  let help = false;
  let version = false;
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] ?? '';
    if (token === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (token === '--help' || token === '-h') {
      help = true;
      continue;
    }
    if (token === '--version' || token === '-V') {
      version = true;
      continue;
    }
    let spec: OptionSpec | undefined;
    let inlineValue: string | undefined;
    // The flag as the user typed it (`--data_dir`, `-p`): errors name it.
    let given = token;
    if (token.startsWith('--')) {
      const equals = token.indexOf('=');
      given = equals === -1 ? token : token.slice(0, equals);
      const name = given.slice(2).replaceAll('_', '-');
      inlineValue = equals === -1 ? undefined : token.slice(equals + 1);
      spec = findSpec(name);
      if (!spec) throw new ConfigError(`unknown option --${name} (see --help)`);
    } else if (/^-[a-zA-Z]$/.test(token)) {
      spec = optionTable.find((candidate) => candidate.short === token.slice(1));
      if (!spec) throw new ConfigError(`unknown option ${token} (see --help)`);
    } else if (/^-[a-zA-Z][a-zA-Z0-9_-]+(=|$)/.test(token)) {
      // Go-style single-dash flags are tusd's (translated above); any other is a mistake, not an argument.
      throw new ConfigError(`unknown option ${token.split('=')[0]} (see --help)`);
    } else {
      positionals.push(token);
      continue;
    }
    let text: string;
    if (inlineValue !== undefined) {
      text = inlineValue;
    } else if (spec.kind === 'boolean') {
      text = 'true';
    } else {
      const next = argv[index + 1];
      if (next === undefined) throw new ConfigError(`${given} needs a value`);
      // `--data-dir --no-access` must not make a folder named `--no-access`. A negative number (`-1` for
      // --hooks-kafka-required-acks) is a value, as no flag is a digit; any other value that starts with '-'
      // is given as `--flag=-value`.
      if (next.startsWith('--') || /^-[a-zA-Z]/.test(next)) {
        throw new ConfigError(
          `${given} needs a value, but the next argument ${JSON.stringify(next)} looks like an option; for a value that starts with "-", write --${spec.flag}=<value>`,
        );
      }
      text = next;
      index++;
    }
    options[spec.key] = coerceOption(spec, text, given);
  }
  return {
    options,
    positionals,
    help,
    version,
    ...(translated.tusd ? { tusd: true, warnings: translated.warnings } : {}),
  };
}

/** The variable each option is read from in `env` (Wharf's name first, then rustus's), by option key. */
function environmentSources(env: Readonly<Record<string, string | undefined>>): Map<string, string> {
  const sources = new Map<string, string>();
  for (const spec of optionTable) {
    const name = spec.env.find((candidate) => env[candidate] !== undefined);
    if (name !== undefined) sources.set(spec.key, name);
  }
  return sources;
}

/** Reads every option from the environment (Wharf's name first, then rustus's). */
export function readEnvironment(env: Readonly<Record<string, string | undefined>>): RawOptions {
  const options: Record<string, OptionValue> = {};
  for (const [key, name] of environmentSources(env)) {
    const spec = optionTable.find((candidate) => candidate.key === key);
    const text = env[name];
    if (spec !== undefined && text !== undefined) options[key] = coerceOption(spec, text, name);
  }
  return options;
}

/**
 * Checks made once options are merged name the option by its flag (`--hooks-http-urls: …`). When the user gave
 * that option through the environment, the error names the variable they set, as the parse errors do.
 */
function namingTheVariable(
  error: ConfigError,
  commandLine: RawOptions,
  env: Readonly<Record<string, string | undefined>>,
): ConfigError {
  const match = /^--([a-z0-9-]+)(: [\s\S]*)$/.exec(error.message);
  const spec = match === null ? undefined : optionTable.find((candidate) => candidate.flag === match[1]);
  if (match === null || spec === undefined || commandLine[spec.key] !== undefined) return error;
  const variable = environmentSources(env).get(spec.key);
  return variable === undefined ? error : new ConfigError(`${variable} (--${spec.flag})${match[2]}`);
}

function defaults(): RawOptions {
  const options: Record<string, OptionValue> = {};
  for (const spec of optionTable) {
    if (spec.default !== undefined) options[spec.key] = coerceOption(spec, spec.default, 'default');
  }
  return options;
}

function normaliseBasePath(url: string): string {
  const trimmed = url.trim().replace(/^\/+|\/+$/g, '');
  if (trimmed.includes('..') || /[?#\s]/.test(trimmed)) {
    throw new ConfigError(`--url: ${JSON.stringify(url)} is not a usable base path`);
  }
  return trimmed === '' ? '' : `/${trimmed.replace(/\/+/g, '/')}`;
}

/** Extensions that need another one to make sense pull it in, as rustus does for creation. */
/** `--tus-extensions` (or an endpoint's `extensions`) with the extensions the chosen ones imply. */
export function normaliseExtensions(names: readonly string[]): ReadonlySet<TusExtensionName> {
  const set = new Set(names as readonly TusExtensionName[]);
  if (set.has('creation-with-upload') || set.has('creation-defer-length')) set.add('creation');
  if (set.has('concatenation-unfinished')) set.add('concatenation');
  return set;
}

function toLogLevel(text: string): LogLevel {
  const lowered = text.toLowerCase();
  return lowered === 'off' ? 'silent' : (lowered as LogLevel);
}

function text(options: RawOptions, key: string): string {
  const value = options[key];
  return typeof value === 'string' ? value : '';
}
function optionalText(options: RawOptions, key: string): string | undefined {
  const value = options[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
function integer(options: RawOptions, key: string): number {
  const value = options[key];
  return typeof value === 'number' ? value : 0;
}
function flag(options: RawOptions, key: string): boolean {
  return options[key] === true;
}
function list(options: RawOptions, key: string): readonly string[] {
  const value = options[key];
  return Array.isArray(value) ? value : [];
}

/** Broker hook targets, present only when configured (`exactOptionalPropertyTypes`). */
function brokerHooks(
  options: RawOptions,
  env: Readonly<Record<string, string | undefined>>,
): Pick<
  HooksConfig,
  | 'amqp'
  | 'kafka'
  | 'outboxDirectory'
  | 'outboxLimit'
  | 'outboxMaxBackoffMs'
  | 'httpOutbox'
  | 'retrySchedule'
  | 'disableAfterMs'
  | 'deadLetterLimit'
> {
  const amqp = amqpHooksConfig(options);
  const kafka = kafkaHooksConfig(options);
  return {
    ...(amqp === undefined ? {} : { amqp }),
    ...(kafka === undefined ? {} : { kafka }),
    ...outboxConfig(options, env),
    ...deliveryConfig(options),
  };
}

/** Merges defaults < environment < command line and shapes the result into a frozen Config. */
export function buildConfig(
  commandLine: RawOptions,
  env: Readonly<Record<string, string | undefined>>,
  overrides: RawOptions = {},
): Config {
  const options: RawOptions = { ...defaults(), ...readEnvironment(env), ...commandLine, ...overrides };
  try {
    return shapeConfig(options, env);
  } catch (error) {
    throw error instanceof ConfigError
      ? namingTheVariable(error, { ...commandLine, ...overrides }, env)
      : error;
  }
}

function shapeConfig(options: RawOptions, env: Readonly<Record<string, string | undefined>>): Config {
  const config: Config = {
    host: text(options, 'host'),
    port: integer(options, 'port'),
    basePath: normaliseBasePath(text(options, 'url')),
    workers: integer(options, 'workers'),
    corsOrigins: list(options, 'cors'),
    behindProxy: flag(options, 'behindProxy'),
    extensions: normaliseExtensions(list(options, 'tusExtensions')),
    storage: text(options, 'storage') as Config['storage'],
    s3: ['s3', 'hybrid-s3'].includes(text(options, 'storage')) ? s3SettingsFrom(options) : undefined,
    gcs: text(options, 'storage') === 'gcs' ? gcsSettingsFrom(options) : undefined,
    azure: text(options, 'storage') === 'azure' ? azureSettingsFrom(options) : undefined,
    dataDir: text(options, 'dataDir'),
    dirStructure: text(options, 'dirStructure'),
    forceFsync: flag(options, 'forceFsync'),
    ...sharedStateConfig(options),
    infoDir: text(options, 'infoDir'),
    removeParts: flag(options, 'removeParts'),
    uploadExpirationMs: integer(options, 'uploadExpiration') * 1000,
    expirationSweepIntervalMs: integer(options, 'expirationSweepInterval') * 1000,
    maxBodySize: integer(options, 'maxBodySize'),
    maxFileSize: integer(options, 'maxFileSize'),
    allowEmpty: flag(options, 'allowEmpty'),
    ietfDraft: flag(options, 'ietfDraft'),
    maxHeaderSize: integer(options, 'maxHeaderSize'),
    networkTimeoutMs: integer(options, 'networkTimeout') * 1000,
    minBodyRate: integer(options, 'minBodyRate'),
    lockTimeoutMs: integer(options, 'lockTimeout') * 1000,
    shutdownTimeoutMs: integer(options, 'shutdownTimeout') * 1000,
    logLevel: toLogLevel(text(options, 'logLevel')),
    accessLog: !flag(options, 'noAccess'),
    healthAccessLog: !flag(options, 'disableHealthAccessLog'),
    hooks: Object.freeze({
      enabledEvents: new Set(list(options, 'hooks') as readonly UploadEventName[]),
      format: text(options, 'hooksFormat') as HooksConfig['format'],
      hooksFile: optionalText(options, 'hooksFile'),
      hooksDir: optionalText(options, 'hooksDir'),
      httpUrls: list(options, 'hooksHttpUrls'),
      httpProxyHeaders: list(options, 'hooksHttpProxyHeaders'),
      httpTimeoutMs: integer(options, 'httpHookTimeout') * 1000,
      executableTimeoutMs: integer(options, 'hooksExecutableTimeout') * 1000,
      postConcurrency: integer(options, 'hooksPostConcurrency'),
      postQueueLimit: integer(options, 'hooksPostQueueLimit'),
      ...(integer(options, 'hooksStopCode') > 0 ? { stopCode: integer(options, 'hooksStopCode') } : {}),
      ...brokerHooks(options, env),
      ...webhooksConfig(options),
    }),
    hooksProgressIntervalMs: integer(options, 'hooksProgressInterval'),
    hooksModulesDir: text(options, 'hooksModulesDir'),
    configFile: optionalText(options, 'config'),
    admin: Object.freeze(adminConfig(options, text(options, 'host'))),
    env: { ...env },
  };
  return Object.freeze(config);
}

/** Builds a Config for library users from a partial set of option keys (camelCase table keys). */
export function configFromOptions(overrides: RawOptions = {}): Config {
  return buildConfig({}, {}, overrides);
}
