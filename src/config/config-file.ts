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
import { userInfoDecodes } from '../hooks/delivery/target-guard.ts';
import { eventsMatching, type UploadEventName, uploadEventNames } from '../hooks/events.ts';
import { type HookFormatName, isHookFormatName } from '../hooks/formats/index.ts';
import { type NotifyService, notifyServices } from '../hooks/transports/notify-message.ts';
import { WebhookSecretError, webhookKeys } from '../hooks/transports/webhook-signature.ts';
import {
  amqpHookKeys,
  type InheritedBrokers,
  kafkaHookKeys,
  namedAmqpConfig,
  namedKafkaConfig,
} from './config-file-brokers.ts';
import { schemaProblems } from './config-file-check.ts';
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

/**
 * Collects every problem with its place in the file, so one run shows them all. The schema's problems come first
 * (config-file-check.ts); what follows here are the checks a schema cannot express, so the readers below skip a
 * value of the wrong type silently: the schema has named it already.
 */
class Problems {
  readonly list: string[] = [];
  add(where: string, message: string): void {
    this.list.push(`${where}: ${message}`);
  }
}

/** A non-empty string, else undefined (the schema reports a wrong type or an empty one). */
function optionalString(value: Json, key: string): string | undefined {
  const item = value[key];
  return typeof item === 'string' && item !== '' ? item : undefined;
}

/** A finite number, else undefined (the schema reports a wrong type or one out of range). */
function optionalNumber(value: Json, key: string): number | undefined {
  const item = value[key];
  return typeof item === 'number' && Number.isFinite(item) ? item : undefined;
}

function argsOf(value: Json): Record<string, unknown> {
  return isObject(value.args) ? value.args : {};
}

/**
 * What makes a file hook's `command` a shell line rather than a path: run without a shell it would fail on
 * every upload, so it is refused at start unless the hook says `shell: true`.
 */
const shellSyntax = /[\s|&;<>()$`*?~"'\\]/;

/** A hook's `env`: a mapping of variable names to strings (numbers and booleans are written out). */
function envOf(value: Json): Record<string, string> | undefined {
  const raw = value.env;
  if (!isObject(raw)) return undefined;
  const env: Record<string, string> = {};
  for (const [key, item] of Object.entries(raw)) {
    if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean')
      env[key] = String(item);
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
  if (!isObject(value)) return undefined;
  const transport = value.transport;
  if (!(namedHookTransports as readonly unknown[]).includes(transport)) return undefined;
  for (const [owner, keys] of brokerOnlyKeys) {
    for (const key of keys) {
      if (value[key] !== undefined && transport !== owner)
        problems.add(`${where}.${key}`, `is a setting of ${owner} hooks only`);
    }
  }
  const command = optionalString(value, 'command');
  const url = transport === 'http' || transport === 'notify' ? optionalString(value, 'url') : undefined;
  const notify = transport === 'notify' ? notifyOf(value, where, problems) : undefined;
  if (transport !== 'http' && (value.secret !== undefined || value.secrets !== undefined)) {
    problems.add(where, '"secret" and "secrets" sign http hooks only');
  }
  const secrets = transport === 'http' ? secretsOf(value, where, problems) : undefined;
  const module = optionalString(value, 'module');
  const directory = optionalString(value, 'directory');
  if (transport === 'dir' && directory === undefined) problems.add(where, 'a dir hook needs "directory"');
  if (transport === 'module' && module === undefined) {
    problems.add(where, 'a module hook needs "module" (a folder of --hooks-modules-dir)');
  }
  if (transport === 'file' && command === undefined) problems.add(where, 'a file hook needs "command"');
  const shell = value.shell;
  if (shell !== undefined && transport !== 'file')
    problems.add(`${where}.shell`, 'is a setting of file hooks only');
  if (transport === 'file' && shell !== true && command !== undefined && shellSyntax.test(command)) {
    problems.add(
      `${where}.command`,
      'looks like a shell line (spaces, |, >, $, ;, &, …): add "shell: true" to run it through /bin/sh -c, or name a script',
    );
  }
  const executable = transport === 'file' || transport === 'dir';
  const env = envOf(value);
  if (env !== undefined && !executable)
    problems.add(`${where}.env`, 'is a setting of file and dir hooks only');
  const cwd = optionalString(value, 'cwd');
  if (cwd !== undefined && !executable)
    problems.add(`${where}.cwd`, 'is a setting of file and dir hooks only');
  if (transport === 'http' || transport === 'notify') {
    if (url === undefined) problems.add(where, `an ${transport} hook needs "url"`);
    else if (!/^https?:\/\/./.test(url)) problems.add(`${where}.url`, 'must be an http:// or https:// URL');
    // A text that is not a URL at all is refused later (the allow-list check), by its own message.
    else if (URL.canParse(url) && !userInfoDecodes(new URL(url)))
      problems.add(`${where}.url`, 'its user name or password is not valid percent-encoding');
  }
  const format = value.format;
  const timeout = optionalNumber(value, 'timeout');
  const retries = optionalNumber(value, 'retries') ?? 0;
  const retrySchedule = retryScheduleIn(value, transport, where, problems);
  const critical = value.critical;
  const continueOnFailure = value.continueOnFailure;
  if (continueOnFailure === true && critical === true) {
    problems.add(
      `${where}.continueOnFailure`,
      'a critical hook stops the operation when it fails: set critical: true or continueOnFailure: true, not both',
    );
  }
  const runOn = (runOnValues as readonly unknown[]).includes(value.runOn) ? value.runOn : 'success';
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
    args: argsOf(value),
  };
}

/** A notify hook's `service`, `template` and `title`, checked. */
function notifyOf(value: Json, where: string, problems: Problems): NamedHookDeclaration['notify'] {
  const service = value.service ?? 'json';
  if (!(notifyServices as readonly unknown[]).includes(service)) return undefined;
  const template = optionalString(value, 'template');
  if (template === undefined) {
    problems.add(where, 'a notify hook needs "template" (e.g. "{{upload.metadata.filename}} finished")');
    return undefined;
  }
  const title = optionalString(value, 'title');
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
  // A binding without events: the schema names the missing key.
  if (value === undefined) return [];
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
  if (!isObject(value)) return undefined;
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

/**
 * One binding of a named hook to an endpoint, its cross-references checked (`at` names its place in the
 * problems; keys and types were checked by the schema). `names`: the hooks it may bind.
 */
function bindingOf(
  binding: unknown,
  at: string,
  endpointPath: string,
  names: ReadonlySet<string>,
  problems: Problems,
): HookBindingDeclaration | undefined {
  if (!isObject(binding)) return undefined;
  const hook = binding.hook;
  if (typeof hook !== 'string') return undefined;
  if (!names.has(hook)) {
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
  return {
    hook,
    endpoint: endpointPath,
    events,
    args: argsOf(binding),
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
  // Keys, types and values through the file's schema, as the file's `hooks:` and an endpoint's binding.
  for (const problem of schemaProblems({ hooks: raw.hooks })) problems.add(problem.where, problem.message);
  for (const { id, endpoint: _endpoint, ...binding } of raw.bindings) {
    const bindingAt = 'endpoints[0].hooks[0]';
    for (const problem of schemaProblems({ endpoints: [{ path: '/', hooks: [binding] }] })) {
      const where = problem.where.startsWith(bindingAt)
        ? `bindings[${id}]${problem.where.slice(bindingAt.length)}`
        : `bindings[${id}]`;
      problems.add(where, problem.message);
    }
  }
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
    const { endpoint: _endpoint, ...bindingKeysOnly } = rest;
    const bound = bindingOf(bindingKeysOnly, at, endpointPath, names, problems);
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
  for (const problem of schemaProblems(raw)) problems.add(problem.where, problem.message);
  const base = path.dirname(path.resolve(file));
  const root = isObject(raw) ? raw : {};

  const hooks: NamedHookDeclaration[] = [];
  for (const [name, value] of Object.entries(isObject(root.hooks) ? root.hooks : {})) {
    const hook = namedHook(name, value, base, problems, inherited);
    if (hook !== undefined) hooks.push(hook);
  }
  const names = new Set(Object.keys(isObject(root.hooks) ? root.hooks : {}));

  const endpoints: EndpointDeclaration[] = [];
  const bindings: HookBindingDeclaration[] = [];
  const rawEndpoints = root.endpoints;
  const seen = new Set<string>();
  for (const [index, value] of (Array.isArray(rawEndpoints) ? rawEndpoints : []).entries()) {
    const where = `endpoints[${index}]`;
    if (!isObject(value)) continue;
    const pathText = optionalString(value, 'path');
    if (pathText === undefined) continue;
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
    const dataDir = optionalString(value, 'dataDir');
    const maxFileSize = optionalNumber(value, 'maxFileSize');
    const maxBodySize = optionalNumber(value, 'maxBodySize');
    const extensions = extensionsOf(value.extensions, `${where}.extensions`, problems);
    const globalHooks = value.globalHooks;
    endpoints.push({
      path: endpointPath,
      ...(dataDir !== undefined ? { dataDir: path.resolve(base, dataDir) } : {}),
      ...(maxFileSize !== undefined ? { maxFileSize } : {}),
      ...(maxBodySize !== undefined ? { maxBodySize } : {}),
      ...(extensions !== undefined ? { extensions } : {}),
      ...(globalHooks === false ? { globalHooks: false } : {}),
    });
    const rawBindings = Array.isArray(value.hooks) ? value.hooks : [];
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
