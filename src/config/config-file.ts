import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { conditionProblem, type WhenCondition } from '../hooks/chain/conditions.ts';
import {
  type HookBindingDeclaration,
  type NamedHookDeclaration,
  type NamedHookTransport,
  namedHookTransports,
  type RunOn,
  runOnValues,
} from '../hooks/chain/pipeline.ts';
import { retryScheduleOf } from '../hooks/delivery/retry-policy.ts';
import { eventsMatching, type UploadEventName, uploadEventNames } from '../hooks/events.ts';
import { type HookFormatName, hookFormatNames, isHookFormatName } from '../hooks/formats/index.ts';
import { type NotifyService, notifyServices } from '../hooks/transports/notify-message.ts';
import { WebhookSecretError, webhookKeys } from '../hooks/transports/webhook-signature.ts';
import {
  amqpHookKeys,
  type InheritedBrokers,
  kafkaHookKeys,
  namedAmqpConfig,
  namedKafkaConfig,
} from './config-file-brokers.ts';
import { normaliseExtensions } from './load.ts';
import { ConfigError } from './option-table.ts';
import { type TusExtensionName, tusExtensionNames } from './options.ts';

/** One endpoint of the config file: a URL path with its own storage and limits, and its hook bindings. */
export interface EndpointDeclaration {
  /** Normalised: leading slash, no trailing slash. */
  readonly path: string;
  /** Default: the flag-defined `--data-dir` (for the default endpoint) or `<data-dir>/<path>`. */
  readonly dataDir?: string;
  /** Bytes; default `--max-file-size`. */
  readonly maxFileSize?: number;
  /** Bytes per request body; default `--max-body-size`. */
  readonly maxBodySize?: number;
  /** The tus extensions this endpoint offers (with the ones they imply); default `--tus-extensions`. */
  readonly extensions?: ReadonlySet<TusExtensionName>;
  /**
   * false: the endpoint runs only the hooks its bindings list, none of the global ones (flag-defined targets,
   * hook modules no named hook binds, targets added through the admin API). Default true.
   */
  readonly globalHooks?: boolean;
}

/** What the file's hooks inherit from the flags: broker settings, and whether the HTTP outbox is on. */
export interface InheritedHookSettings extends InheritedBrokers {
  /** `--hooks-http-outbox` (default true): post deliveries of http hooks go through the outbox. */
  readonly httpOutbox?: boolean;
}

/** `--config wharf.yaml` (or .json): named hooks, endpoints and bindings, validated. */
export interface WharfFile {
  readonly file: string;
  readonly hooks: readonly NamedHookDeclaration[];
  readonly endpoints: readonly EndpointDeclaration[];
  readonly bindings: readonly HookBindingDeclaration[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects every problem with its place in the file, so one run shows them all. */
class Problems {
  readonly list: string[] = [];
  add(where: string, message: string): void {
    this.list.push(`${where}: ${message}`);
  }
}

function allowedKeys(value: Json, allowed: readonly string[], where: string, problems: Problems): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) problems.add(where, `unknown key "${key}" (expected ${allowed.join(', ')})`);
  }
}

function optionalString(value: Json, key: string, where: string, problems: Problems): string | undefined {
  const item = value[key];
  if (item === undefined) return undefined;
  if (typeof item !== 'string' || item === '') {
    problems.add(`${where}.${key}`, 'must be a non-empty string');
    return undefined;
  }
  return item;
}

function optionalNumber(
  value: Json,
  key: string,
  where: string,
  problems: Problems,
  min: number,
): number | undefined {
  const item = value[key];
  if (item === undefined) return undefined;
  if (typeof item !== 'number' || !Number.isFinite(item) || item < min) {
    problems.add(`${where}.${key}`, `must be a number >= ${min}`);
    return undefined;
  }
  return item;
}

function argsOf(value: Json, where: string, problems: Problems): Record<string, unknown> {
  const args = value.args;
  if (args === undefined) return {};
  if (!isObject(args)) {
    problems.add(`${where}.args`, 'must be a mapping');
    return {};
  }
  return args;
}

export const hookKeys = [
  'transport',
  'command',
  'directory',
  'url',
  'secret',
  'secrets',
  'module',
  'format',
  'timeout',
  'retries',
  'retrySchedule',
  'critical',
  'runOn',
  'args',
  'service',
  'template',
  'title',
  'continueOnFailure',
  'shell',
  'env',
  'cwd',
  ...amqpHookKeys.filter((key) => key !== 'url'),
  ...kafkaHookKeys,
];

/**
 * What makes a file hook's `command` a shell line rather than a path: run without a shell it would fail on
 * every upload, so it is refused at start unless the hook says `shell: true`.
 */
const shellSyntax = /[\s|&;<>()$`*?~"'\\]/;

/** A hook's `env`: a mapping of variable names to strings (numbers and booleans are written out). */
function envOf(value: Json, where: string, problems: Problems): Record<string, string> | undefined {
  const raw = value.env;
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    problems.add(`${where}.env`, 'must be a mapping of variable names to strings');
    return undefined;
  }
  const env: Record<string, string> = {};
  for (const [key, item] of Object.entries(raw)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.add(`${where}.env.${key}`, 'is not a variable name');
    else if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean')
      env[key] = String(item);
    else problems.add(`${where}.env.${key}`, 'must be a string');
  }
  return env;
}

/** Keys that mean something for one broker transport only. */
const brokerOnlyKeys: readonly [string, readonly string[]][] = [
  ['amqp', amqpHookKeys.filter((key) => key !== 'url')],
  ['kafka', kafkaHookKeys],
];

function namedHook(
  name: string,
  value: unknown,
  base: string,
  problems: Problems,
  inherited: InheritedBrokers,
): NamedHookDeclaration | undefined {
  const where = `hooks.${name}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    problems.add(where, 'a hook name may use letters, digits, ".", "_" and "-"');
  if (!isObject(value)) {
    problems.add(where, 'must be a mapping');
    return undefined;
  }
  allowedKeys(value, hookKeys, where, problems);
  const transport = value.transport;
  if (!(namedHookTransports as readonly unknown[]).includes(transport)) {
    problems.add(`${where}.transport`, `expected one of ${namedHookTransports.join(', ')}`);
    return undefined;
  }
  for (const [owner, keys] of brokerOnlyKeys) {
    for (const key of keys) {
      if (value[key] !== undefined && transport !== owner)
        problems.add(`${where}.${key}`, `is a setting of ${owner} hooks only`);
    }
  }
  const command = optionalString(value, 'command', where, problems);
  const url =
    transport === 'http' || transport === 'notify'
      ? optionalString(value, 'url', where, problems)
      : undefined;
  const notify = transport === 'notify' ? notifyOf(value, where, problems) : undefined;
  if (transport !== 'http' && (value.secret !== undefined || value.secrets !== undefined)) {
    problems.add(where, '"secret" and "secrets" sign http hooks only');
  }
  const secrets = transport === 'http' ? secretsOf(value, where, problems) : undefined;
  const module = optionalString(value, 'module', where, problems);
  const directory = optionalString(value, 'directory', where, problems);
  if (transport === 'dir' && directory === undefined) problems.add(where, 'a dir hook needs "directory"');
  if (transport === 'module' && module === undefined) {
    problems.add(where, 'a module hook needs "module" (a folder of --hooks-modules-dir)');
  }
  if (transport === 'file' && command === undefined) problems.add(where, 'a file hook needs "command"');
  const shell = value.shell;
  if (shell !== undefined && typeof shell !== 'boolean')
    problems.add(`${where}.shell`, 'must be true or false');
  if (shell !== undefined && transport !== 'file')
    problems.add(`${where}.shell`, 'is a setting of file hooks only');
  if (transport === 'file' && shell !== true && command !== undefined && shellSyntax.test(command)) {
    problems.add(
      `${where}.command`,
      'looks like a shell line (spaces, |, >, $, ;, &, …): add "shell: true" to run it through /bin/sh -c, or name a script',
    );
  }
  const executable = transport === 'file' || transport === 'dir';
  const env = envOf(value, where, problems);
  if (env !== undefined && !executable)
    problems.add(`${where}.env`, 'is a setting of file and dir hooks only');
  const cwd = optionalString(value, 'cwd', where, problems);
  if (cwd !== undefined && !executable)
    problems.add(`${where}.cwd`, 'is a setting of file and dir hooks only');
  if (transport === 'http' || transport === 'notify') {
    if (url === undefined) problems.add(where, `an ${transport} hook needs "url"`);
    else if (!/^https?:\/\/./.test(url)) problems.add(`${where}.url`, 'must be an http:// or https:// URL');
  }
  const format = value.format;
  if (format !== undefined && (typeof format !== 'string' || !isHookFormatName(format))) {
    problems.add(`${where}.format`, `expected one of ${hookFormatNames.join(', ')}`);
  }
  const timeout = optionalNumber(value, 'timeout', where, problems, 0.001);
  const retries = optionalNumber(value, 'retries', where, problems, 0) ?? 0;
  if (!Number.isInteger(retries)) problems.add(`${where}.retries`, 'must be an integer');
  const retrySchedule = retryScheduleIn(value, transport, where, problems);
  const critical = value.critical;
  if (critical !== undefined && typeof critical !== 'boolean')
    problems.add(`${where}.critical`, 'must be true or false');
  const continueOnFailure = value.continueOnFailure;
  if (continueOnFailure !== undefined && typeof continueOnFailure !== 'boolean')
    problems.add(`${where}.continueOnFailure`, 'must be true or false');
  if (continueOnFailure === true && critical === true) {
    problems.add(
      `${where}.continueOnFailure`,
      'a critical hook stops the operation when it fails: set critical: true or continueOnFailure: true, not both',
    );
  }
  const runOn = value.runOn ?? 'success';
  if (!(runOnValues as readonly unknown[]).includes(runOn)) {
    problems.add(`${where}.runOn`, `expected one of ${runOnValues.join(', ')}`);
  }
  const broker = transport === 'amqp' || transport === 'kafka';
  if (broker && critical === true) {
    problems.add(`${where}.critical`, `${transport} hooks are never blocking: they cannot be critical`);
  }
  if (broker && retries > 0) {
    problems.add(`${where}.retries`, 'broker hooks are retried by the outbox until the broker confirms');
  }
  const report = (at: string, message: string): void => problems.add(at, message);
  const timeoutMs = timeout !== undefined ? Math.round(timeout * 1000) : undefined;
  const amqp =
    transport === 'amqp' ? namedAmqpConfig(value, where, report, inherited.amqp, timeoutMs) : undefined;
  const kafka =
    transport === 'kafka' ? namedKafkaConfig(value, where, report, inherited.kafka, timeoutMs) : undefined;
  return {
    name,
    transport: transport as NamedHookTransport,
    ...(command !== undefined ? { command: shell === true ? command : path.resolve(base, command) } : {}),
    ...(shell === true ? { shell: true } : {}),
    ...(env !== undefined ? { env } : {}),
    ...(cwd !== undefined ? { cwd: path.resolve(base, cwd) } : {}),
    ...(url !== undefined ? { url } : {}),
    ...(secrets !== undefined ? { secrets } : {}),
    ...(notify !== undefined ? { notify } : {}),
    ...(module !== undefined ? { module } : {}),
    ...(directory !== undefined ? { directory: path.resolve(base, directory) } : {}),
    ...(typeof format === 'string' && isHookFormatName(format) ? { format: format as HookFormatName } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    retries,
    ...(retrySchedule !== undefined ? { retrySchedule } : {}),
    ...(typeof critical === 'boolean' ? { critical } : {}),
    ...(continueOnFailure === true ? { continueOnFailure: true } : {}),
    ...(amqp !== undefined ? { amqp } : {}),
    ...(kafka !== undefined ? { kafka } : {}),
    runOn: runOn as RunOn,
    args: argsOf(value, where, problems),
  };
}

/** A notify hook's `service`, `template` and `title`, checked. */
function notifyOf(value: Json, where: string, problems: Problems): NamedHookDeclaration['notify'] {
  const service = value.service ?? 'json';
  if (!(notifyServices as readonly unknown[]).includes(service)) {
    problems.add(`${where}.service`, `expected one of ${notifyServices.join(', ')}`);
    return undefined;
  }
  const template = optionalString(value, 'template', where, problems);
  if (template === undefined) {
    problems.add(where, 'a notify hook needs "template" (e.g. "{{upload.metadata.filename}} finished")');
    return undefined;
  }
  const title = optionalString(value, 'title', where, problems);
  return { service: service as NotifyService, template, ...(title !== undefined ? { title } : {}) };
}

/** An http hook's `retrySchedule` (a list or a comma string of durations), checked. */
function retryScheduleIn(
  value: Json,
  transport: unknown,
  where: string,
  problems: Problems,
): readonly number[] | undefined {
  const raw = value.retrySchedule;
  if (raw === undefined) return undefined;
  if (transport !== 'http' && transport !== 'notify') {
    problems.add(
      `${where}.retrySchedule`,
      transport === 'amqp' || transport === 'kafka'
        ? 'broker hooks are retried by the outbox until the broker confirms'
        : 'is a setting of http hooks only (their post-* deliveries through the outbox)',
    );
    return undefined;
  }
  try {
    return Object.freeze(retryScheduleOf(raw));
  } catch (error) {
    problems.add(`${where}.retrySchedule`, (error as Error).message);
    return undefined;
  }
}

/**
 * `retries` (immediate retries of blocking runs) and `retrySchedule` (the outbox's retries of post deliveries)
 * of an http hook each apply to one kind of event: a hook whose bindings never reach that kind is refused, as
 * the setting would do nothing. Without the HTTP outbox (`--hooks-http-outbox false`), `retries` covers post runs
 * too and `retrySchedule` is refused.
 */
function httpRetryProblems(
  hooks: readonly NamedHookDeclaration[],
  bindings: readonly HookBindingDeclaration[],
  httpOutbox: boolean,
  problems: Problems,
): void {
  for (const hook of hooks) {
    if (hook.transport !== 'http' && hook.transport !== 'notify') continue;
    const events = bindings
      .filter((binding) => binding.hook === hook.name)
      .flatMap((binding) => binding.events);
    if (events.length === 0) continue;
    const blocking = events.some((event) => event.startsWith('pre-'));
    const posts = events.some((event) => !event.startsWith('pre-'));
    const where = `hooks.${hook.name}`;
    if (hook.retries > 0 && !blocking && httpOutbox) {
      problems.add(
        `${where}.retries`,
        'retries are immediate retries of blocking (pre-*) runs, and this hook is bound to post-* events only; ' +
          'its post deliveries go through the outbox: set retrySchedule (e.g. [5s, 30s, 2m])',
      );
    }
    if (hook.retrySchedule !== undefined && !httpOutbox) {
      problems.add(
        `${where}.retrySchedule`,
        'needs the HTTP outbox (--hooks-http-outbox false sends post hooks once, plus retries)',
      );
    } else if (hook.retrySchedule !== undefined && !posts) {
      problems.add(
        `${where}.retrySchedule`,
        'applies to post-* deliveries, and this hook is bound to pre-* events only (use retries)',
      );
    }
  }
}

/**
 * An http hook's `secret` (one) or `secrets` (a list, or a comma-separated string; newest first). Problems name
 * the key and the secret's position, never its value.
 */
function secretsOf(value: Json, where: string, problems: Problems): readonly string[] | undefined {
  if (value.secret !== undefined && value.secrets !== undefined) {
    problems.add(where, 'give "secret" or "secrets", not both');
    return undefined;
  }
  const key = value.secret !== undefined ? 'secret' : 'secrets';
  const raw = value[key];
  if (raw === undefined) return undefined;
  const items =
    typeof raw === 'string'
      ? key === 'secret'
        ? [raw]
        : raw.split(',').map((item) => item.trim())
      : Array.isArray(raw) && key === 'secrets'
        ? raw
        : undefined;
  if (items === undefined || items.length === 0 || !items.every((item) => typeof item === 'string')) {
    problems.add(`${where}.${key}`, key === 'secret' ? 'must be a string' : 'must list whsec_ secrets');
    return undefined;
  }
  const secrets = (items as string[]).filter((item) => item !== '');
  try {
    webhookKeys(secrets, key);
  } catch (error) {
    if (!(error instanceof WebhookSecretError)) throw error;
    problems.add(where, error.message);
    return undefined;
  }
  return secrets;
}

function normalisePath(text: string): string {
  const trimmed = `/${text.replace(/^\/+|\/+$/g, '')}`;
  return trimmed === '/' ? '' : trimmed;
}

function eventsOf(value: unknown, where: string, problems: Problems): UploadEventName[] {
  const items = typeof value === 'string' ? value.split(',').map((item) => item.trim()) : value;
  if (!Array.isArray(items) || items.length === 0) {
    problems.add(where, `must list events (${uploadEventNames.join(', ')})`);
    return [];
  }
  const events: UploadEventName[] = [];
  for (const item of items) {
    const matched = typeof item === 'string' ? eventsMatching(item) : undefined;
    if (matched === undefined) {
      problems.add(
        where,
        `unknown event ${JSON.stringify(item)} (expected ${uploadEventNames.join(', ')}, or pre-*, post-*, *)`,
      );
      continue;
    }
    // A pattern and a name it covers bind the hook once per event.
    for (const name of matched) if (!events.includes(name)) events.push(name);
  }
  return events;
}

function whenOf(value: unknown, where: string, problems: Problems): WhenCondition | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    problems.add(where, 'must be a mapping of conditions');
    return undefined;
  }
  const when: Record<string, string | readonly string[]> = {};
  for (const [key, item] of Object.entries(value)) {
    const problem = conditionProblem(key, item);
    if (problem !== undefined) problems.add(where, problem);
    else when[key] = item as string | readonly string[];
  }
  return when;
}

/** An endpoint's `extensions`: a list or a comma-separated string, as `--tus-extensions` takes them. */
function extensionsOf(
  value: unknown,
  where: string,
  problems: Problems,
): ReadonlySet<TusExtensionName> | undefined {
  if (value === undefined) return undefined;
  const items = typeof value === 'string' ? value.split(',').map((item) => item.trim()) : value;
  if (!Array.isArray(items)) {
    problems.add(where, `must list tus extensions (${tusExtensionNames.join(', ')})`);
    return undefined;
  }
  const names: TusExtensionName[] = [];
  for (const item of items) {
    if (item === '') continue;
    if (typeof item === 'string' && (tusExtensionNames as readonly string[]).includes(item)) {
      names.push(item as TusExtensionName);
    } else {
      problems.add(
        where,
        `unknown tus extension ${JSON.stringify(item)} (expected ${tusExtensionNames.join(', ')})`,
      );
    }
  }
  return normaliseExtensions(names);
}

export const endpointKeys = [
  'path',
  'dataDir',
  'maxFileSize',
  'maxBodySize',
  'extensions',
  'hooks',
  'globalHooks',
];
export const bindingKeys = ['hook', 'events', 'args', 'when', 'priority'];

/**
 * One binding of a named hook to an endpoint, checked (`at` names its place in the problems). `names`: the
 * hooks it may bind. `extraKeys`: keys allowed beside the file's (the admin API's `endpoint`).
 */
function bindingOf(
  binding: unknown,
  at: string,
  endpointPath: string,
  names: ReadonlySet<string>,
  problems: Problems,
  extraKeys: readonly string[] = [],
): HookBindingDeclaration | undefined {
  if (!isObject(binding)) {
    problems.add(at, 'must be a mapping with "hook" and "events"');
    return undefined;
  }
  allowedKeys(binding, [...bindingKeys, ...extraKeys], at, problems);
  const hook = binding.hook;
  if (typeof hook !== 'string' || !names.has(hook)) {
    problems.add(`${at}.hook`, `names no declared hook (declared: ${[...names].join(', ') || 'none'})`);
    return undefined;
  }
  const when = whenOf(binding.when, `${at}.when`, problems);
  const events = eventsOf(binding.events, `${at}.events`, problems);
  if (when?.status !== undefined && events.some((event) => event.startsWith('pre-'))) {
    problems.add(
      `${at}.when.status`,
      'tests the answer the client got, known only after the operation: bind it to post-* events only',
    );
  }
  const priority = binding.priority;
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority)))
    problems.add(`${at}.priority`, 'must be an integer (lower runs first)');
  return {
    hook,
    endpoint: endpointPath,
    events,
    args: argsOf(binding, at, problems),
    ...(when !== undefined ? { when } : {}),
    ...(typeof priority === 'number' && Number.isInteger(priority) ? { priority } : {}),
  };
}

/** The named hooks and bindings added through the admin API, as stored: hooks by name, bindings by id. */
export interface RuntimeHooksDocument {
  readonly hooks: Readonly<Record<string, unknown>>;
  readonly bindings: readonly (Readonly<Record<string, unknown>> & { readonly id: string })[];
}

/** What the admin API's named hooks add to the running set, validated. */
export interface RuntimeHooks {
  readonly hooks: readonly NamedHookDeclaration[];
  readonly bindings: readonly (HookBindingDeclaration & { readonly id: string })[];
}

/**
 * Validates the admin API's named hooks and bindings with the checks and messages of `--config`: a hook as a
 * file's `hooks.<name>`, a binding as an endpoint's binding plus its `endpoint` (one of `endpoints`). Bindings
 * may name the file's hooks (`fileHooks`) or the document's; a document hook may not take a file hook's name.
 * Throws one ConfigError listing every problem (`hooks.<name>…`, `bindings[<id>]…`).
 */
export function validateRuntimeHooks(
  raw: RuntimeHooksDocument,
  fileHooks: readonly NamedHookDeclaration[],
  endpoints: readonly string[],
  inherited: InheritedHookSettings = {},
): RuntimeHooks {
  const problems = new Problems();
  const hooks: NamedHookDeclaration[] = [];
  const fileNames = new Set(fileHooks.map((hook) => hook.name));
  for (const [name, value] of Object.entries(raw.hooks)) {
    if (fileNames.has(name)) {
      problems.add(`hooks.${name}`, 'is declared in --config: change it there (and reload)');
      continue;
    }
    const hook = namedHook(name, value, process.cwd(), problems, inherited);
    if (hook !== undefined) hooks.push(hook);
  }
  const names = new Set([...fileNames, ...Object.keys(raw.hooks)]);
  const bindings: (HookBindingDeclaration & { id: string })[] = [];
  for (const binding of raw.bindings) {
    const { id, ...rest } = binding;
    const at = `bindings[${id}]`;
    const endpointText = rest.endpoint;
    const endpointPath = typeof endpointText === 'string' ? normalisePath(endpointText) : undefined;
    if (endpointPath === undefined || !endpoints.includes(endpointPath)) {
      problems.add(
        `${at}.endpoint`,
        `names no endpoint of this server (endpoints: ${endpoints.map((path) => path || '/').join(', ')})`,
      );
      continue;
    }
    const bound = bindingOf(rest, at, endpointPath, names, problems, ['endpoint']);
    if (bound !== undefined) bindings.push({ ...bound, id });
  }
  httpRetryProblems([...fileHooks, ...hooks], bindings, inherited.httpOutbox !== false, problems);
  if (problems.list.length > 0) throw new ConfigError(problems.list.join('\n'));
  return { hooks, bindings };
}

/**
 * Validates a parsed config file. `defaultEndpoint` is the flag-defined one (`--url`); relative paths are
 * resolved from the file's folder; named broker hooks start from `inherited` (the `--hooks-amqp-*` and
 * `--hooks-kafka-*` settings, when those flags are set). Throws one ConfigError listing every problem.
 */
export function validateWharfFile(
  raw: unknown,
  file: string,
  defaultEndpoint: string,
  inherited: InheritedHookSettings = {},
): WharfFile {
  const problems = new Problems();
  const base = path.dirname(path.resolve(file));
  const root = isObject(raw) ? raw : {};
  if (!isObject(raw)) problems.add('(top)', 'must be a mapping with "hooks" and "endpoints"');
  allowedKeys(root, ['hooks', 'endpoints'], '(top)', problems);

  const hooks: NamedHookDeclaration[] = [];
  if (root.hooks !== undefined && !isObject(root.hooks))
    problems.add('hooks', 'must be a mapping of hook names');
  for (const [name, value] of Object.entries(isObject(root.hooks) ? root.hooks : {})) {
    const hook = namedHook(name, value, base, problems, inherited);
    if (hook !== undefined) hooks.push(hook);
  }
  const names = new Set(Object.keys(isObject(root.hooks) ? root.hooks : {}));

  const endpoints: EndpointDeclaration[] = [];
  const bindings: HookBindingDeclaration[] = [];
  const rawEndpoints = root.endpoints ?? [];
  if (!Array.isArray(rawEndpoints)) problems.add('endpoints', 'must be a list');
  const seen = new Set<string>();
  for (const [index, value] of (Array.isArray(rawEndpoints) ? rawEndpoints : []).entries()) {
    const where = `endpoints[${index}]`;
    if (!isObject(value)) {
      problems.add(where, 'must be a mapping');
      continue;
    }
    allowedKeys(value, endpointKeys, where, problems);
    const pathText = optionalString(value, 'path', where, problems);
    if (pathText === undefined) {
      problems.add(where, 'needs "path" (e.g. /files)');
      continue;
    }
    if (!/^\/?[A-Za-z0-9._~/-]*$/.test(pathText))
      problems.add(`${where}.path`, 'may use letters, digits and ._~-/');
    const endpointPath = normalisePath(pathText);
    if (seen.has(endpointPath)) problems.add(`${where}.path`, `"${endpointPath}" is declared twice`);
    seen.add(endpointPath);
    if (endpointPath !== defaultEndpoint) {
      for (const other of seen) {
        if (
          other !== endpointPath &&
          (other.startsWith(`${endpointPath}/`) || endpointPath.startsWith(`${other}/`))
        ) {
          problems.add(`${where}.path`, `"${endpointPath}" overlaps "${other}"`);
        }
      }
    }
    const dataDir = optionalString(value, 'dataDir', where, problems);
    const maxFileSize = optionalNumber(value, 'maxFileSize', where, problems, 0);
    const maxBodySize = optionalNumber(value, 'maxBodySize', where, problems, 0);
    for (const [key, size] of [
      ['maxFileSize', maxFileSize],
      ['maxBodySize', maxBodySize],
    ] as const) {
      if (size !== undefined && !Number.isInteger(size))
        problems.add(`${where}.${key}`, 'must be a whole number of bytes');
    }
    const extensions = extensionsOf(value.extensions, `${where}.extensions`, problems);
    const globalHooks = value.globalHooks;
    if (globalHooks !== undefined && typeof globalHooks !== 'boolean')
      problems.add(`${where}.globalHooks`, 'must be true or false');
    endpoints.push({
      path: endpointPath,
      ...(dataDir !== undefined ? { dataDir: path.resolve(base, dataDir) } : {}),
      ...(maxFileSize !== undefined ? { maxFileSize } : {}),
      ...(maxBodySize !== undefined ? { maxBodySize } : {}),
      ...(extensions !== undefined ? { extensions } : {}),
      ...(globalHooks === false ? { globalHooks: false } : {}),
    });
    const rawBindings = value.hooks ?? [];
    if (!Array.isArray(rawBindings)) {
      problems.add(`${where}.hooks`, 'must be a list of bindings');
      continue;
    }
    for (const [position, binding] of rawBindings.entries()) {
      const bound = bindingOf(binding, `${where}.hooks[${position}]`, endpointPath, names, problems);
      if (bound !== undefined) bindings.push(bound);
    }
  }
  httpRetryProblems(hooks, bindings, inherited.httpOutbox !== false, problems);
  if (problems.list.length > 0) {
    throw new ConfigError(`${file} is not valid:\n  ${problems.list.join('\n  ')}`);
  }
  return { file, hooks, endpoints, bindings };
}

/** Reads and validates `--config`: YAML, or JSON (a JSON document is valid YAML; `.json` is parsed as JSON). */
export async function loadWharfFile(
  file: string,
  defaultEndpoint: string,
  inherited: InheritedHookSettings = {},
): Promise<WharfFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (error) {
    throw new ConfigError(
      `${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
  return validateWharfFile(raw ?? {}, file, defaultEndpoint, inherited);
}
