import { namedHookTransports, runOnValues } from '../hooks/chain/pipeline.ts';
import { uploadEventNames } from '../hooks/events.ts';
import { hookFormatNames } from '../hooks/formats/index.ts';
import { notifyServices } from '../hooks/transports/notify-message.ts';
import { amqpHookKeys, kafkaHookKeys } from './config-file-brokers.ts';
import { tusExtensionNames } from './options.ts';

type Schema = Record<string, unknown>;

/** The keys of a named hook (`hooks.<name>`). */
export const hookKeys: readonly string[] = [
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
/** The keys of an endpoint (`endpoints[i]`) and of a binding (`endpoints[i].hooks[j]`). */
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

/** What a binding's `events` may name besides the event names (see eventsMatching). */
const eventPatterns = ['pre-*', 'post-*', '*'];

const text: Schema = { type: 'string', minLength: 1 };
const yesNo: Schema = { type: 'boolean' };
const bytes: Schema = { type: 'integer', minimum: 0, description: 'bytes' };

/**
 * The value each key of a named hook takes, as validateWharfFile checks it. Every key of `hookKeys` needs an
 * entry: the generator throws on one without, so a key added to the file's checks shows up here.
 */
const hookValues: Readonly<Record<string, Schema>> = {
  transport: { enum: [...namedHookTransports] },
  command: { ...text, description: 'file hooks: the executable, relative to the config file' },
  directory: { ...text, description: 'dir hooks: one executable per event name' },
  url: { ...text, description: 'http hooks: http(s) URL; amqp hooks: amqp(s) URL' },
  secret: { type: 'string', description: 'http hooks: a whsec_ signing secret' },
  secrets: {
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
    description: 'http hooks: whsec_ secrets, newest first (a list or a comma-separated string)',
  },
  module: { ...text, description: 'module hooks: a folder of --hooks-modules-dir' },
  format: { enum: [...hookFormatNames] },
  timeout: { type: 'number', minimum: 0.001, description: 'seconds' },
  retries: { type: 'integer', minimum: 0 },
  retrySchedule: {
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: ['string', 'number'] } }],
    description: 'http hooks: delays between outbox attempts of post-* deliveries',
  },
  critical: yesNo,
  continueOnFailure: {
    type: 'boolean',
    description: "a failure is recorded and the operation goes on (critical: false, Borgitory's name)",
  },
  shell: { type: 'boolean', description: 'file hooks: run command through /bin/sh -c' },
  env: {
    type: 'object',
    propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    additionalProperties: { type: ['string', 'number', 'boolean'] },
    description: 'file and dir hooks',
  },
  cwd: { ...text, description: 'file and dir hooks: the working folder, relative to the config file' },
  runOn: { enum: [...runOnValues] },
  args: { type: 'object' },
  service: {
    enum: [...notifyServices],
    description: 'notify hooks: the service whose message shape is sent',
  },
  template: {
    type: 'string',
    description: 'notify hooks: the message, with {{field.path}} from the payload',
  },
  title: { type: 'string', description: 'notify hooks: a title (ntfy, Teams)' },
  exchange: { type: 'string' },
  exchangeKind: { type: 'string' },
  routingKey: { type: 'string' },
  queuesPrefix: { type: 'string' },
  declareExchange: yesNo,
  declareQueues: yesNo,
  durableExchange: yesNo,
  durableQueues: yesNo,
  autoDelete: yesNo,
  celery: yesNo,
  brokers: {
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
    description: 'kafka hooks: host:port addresses (a list or a comma-separated string)',
  },
  topic: { type: 'string' },
  prefix: { type: 'string' },
  clientId: { type: 'string' },
};

const endpointValues: Readonly<Record<string, Schema>> = {
  path: { type: 'string', pattern: '^/?[A-Za-z0-9._~/-]*$' },
  dataDir: text,
  maxFileSize: bytes,
  maxBodySize: bytes,
  extensions: {
    anyOf: [{ type: 'string' }, { type: 'array', items: { enum: [...tusExtensionNames] } }],
  },
  // Empty (YAML's `hooks:` with nothing under it) is no bindings, as it always was.
  hooks: { type: ['array', 'null'], items: { $ref: '#/$defs/binding' } },
  globalHooks: {
    type: 'boolean',
    description:
      'false: only the hooks bound here run (no flag-defined targets, unbound modules, admin targets)',
  },
};

const bindingValues: Readonly<Record<string, Schema>> = {
  hook: { type: 'string', description: 'the name of a hook declared under hooks' },
  events: {
    anyOf: [
      { type: 'string', description: 'comma-separated event names or patterns' },
      { type: 'array', items: { enum: [...uploadEventNames, ...eventPatterns] }, minItems: 1 },
    ],
  },
  args: { type: 'object' },
  when: { type: 'object', description: 'conditions, all of which must match' },
  priority: {
    type: 'integer',
    description: 'lower runs first; equal priorities keep file order (default 0)',
  },
};

function mapping(
  keys: readonly string[],
  values: Readonly<Record<string, Schema>>,
  required: string[],
): Schema {
  const properties: Record<string, Schema> = {};
  for (const key of keys) {
    const value = values[key];
    if (value === undefined) throw new Error(`config-file-schema: no schema for key "${key}"`);
    properties[key] = value;
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

/**
 * The JSON Schema of `wharf.yaml` (`--config`): validateWharfFile checks every file with it first (keys, types,
 * value sets, ranges; config-file-check.ts). What a schema cannot say (a binding naming a declared hook, paths
 * that overlap, keys that belong to one transport, retries against the events bound, the parts of a
 * comma-separated string) stays with validateWharfFile. `npm run docs` writes it to
 * wharf.schema.json; a test fails when that file is stale.
 */
export function wharfFileSchema(): Schema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'wharf.schema.json',
    title: 'wharf.yaml (--config)',
    description: 'Named hooks and the endpoints that bind them; see docs/hooks.md.',
    type: 'object',
    properties: {
      hooks: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z0-9_.-]+$' },
        additionalProperties: { $ref: '#/$defs/hook' },
      },
      endpoints: { type: ['array', 'null'], items: { $ref: '#/$defs/endpoint' } },
    },
    additionalProperties: false,
    $defs: {
      hook: mapping(hookKeys, hookValues, ['transport']),
      endpoint: mapping(endpointKeys, endpointValues, ['path']),
      binding: mapping(bindingKeys, bindingValues, ['hook', 'events']),
    },
  };
}

/** The committed file's text. */
export function renderWharfFileSchema(): string {
  return `${JSON.stringify(wharfFileSchema(), null, 2)}\n`;
}
