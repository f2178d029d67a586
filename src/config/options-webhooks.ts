import type { HooksConfig } from '../hooks/engine-config.ts';
import { cloudEventsModes, isCloudEventSource } from '../hooks/formats/cloudevents.ts';
import { WebhookSecretError, webhookKeys } from '../hooks/transports/webhook-signature.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

const group = 'Hooks: signed webhooks and CloudEvents';

/** Standard Webhooks signing of HTTP hooks, and how `--hooks-format cloudevents` is sent. */
export const webhooksOptions: readonly OptionSpec[] = [
  {
    key: 'hooksHttpSecret',
    flag: 'hooks-http-secret',
    env: ['WHARF_HOOKS_HTTP_SECRET'],
    kind: 'list',
    help: 'Standard Webhooks secrets ("whsec_" + base64 of 24 to 64 random bytes), comma-separated, newest first. Every --hooks-http-urls request then carries webhook-id, webhook-timestamp and webhook-signature, signed with each secret (two during a rotation). Never logged.',
    group,
  },
  {
    key: 'hooksCloudeventsMode',
    flag: 'hooks-cloudevents-mode',
    env: ['WHARF_HOOKS_CLOUDEVENTS_MODE'],
    kind: 'enum',
    choices: cloudEventsModes,
    default: 'structured',
    help: 'With --hooks-format cloudevents: "structured" sends the whole event as the body (application/cloudevents+json); "binary" sends data as the body and the attributes as ce-* HTTP headers, cloudEvents_* AMQP headers and ce_* Kafka headers.',
    group,
  },
  {
    key: 'hooksCloudeventsSource',
    flag: 'hooks-cloudevents-source',
    env: ['WHARF_HOOKS_CLOUDEVENTS_SOURCE'],
    kind: 'string',
    help: 'The CloudEvents "source" of every event (an absolute URI such as https://files.example.com/files/, or an absolute path). Default: the endpoint URL as the client reached it.',
    group,
  },
];

/** The signing secrets and CloudEvents settings, validated; a bad secret is named by position, never shown. */
export function webhooksConfig(options: RawOptions): Pick<HooksConfig, 'httpSecrets' | 'cloudEvents'> {
  const secrets = options.hooksHttpSecret;
  const httpSecrets = Array.isArray(secrets) ? (secrets as readonly string[]) : [];
  try {
    webhookKeys(httpSecrets, '--hooks-http-secret');
  } catch (error) {
    if (error instanceof WebhookSecretError) throw new ConfigError(error.message);
    throw error;
  }
  const source = options.hooksCloudeventsSource;
  if (typeof source === 'string' && source !== '' && !isCloudEventSource(source)) {
    throw new ConfigError(
      `--hooks-cloudevents-source: expected an absolute URI or an absolute path, got ${JSON.stringify(source)}`,
    );
  }
  const mode = options.hooksCloudeventsMode === 'binary' ? 'binary' : 'structured';
  return {
    ...(httpSecrets.length > 0 ? { httpSecrets: Object.freeze([...httpSecrets]) } : {}),
    cloudEvents: Object.freeze({
      mode,
      ...(typeof source === 'string' && source !== '' ? { source } : {}),
    }),
  };
}
