import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks 1.0 symmetric signatures (`v1`, HMAC-SHA256): what Wharf adds to its HTTP hook requests,
 * and {@link verifyWebhook}, the check a receiver written for Node runs on them. The signed content is
 * `<webhook-id>.<webhook-timestamp>.<body>`, the body as sent, byte for byte.
 */

export const webhookSecretPrefix = 'whsec_';

/** Standard Webhooks asks for secrets of 24 to 64 random bytes. */
const minimumKeyBytes = 24;
const maximumKeyBytes = 64;

/** A secret that is not `whsec_` + base64 of 24–64 bytes. The message never contains the secret. */
export class WebhookSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookSecretError';
  }
}

/** The HMAC key of a `whsec_` secret: the base64-decoded rest. Throws {@link WebhookSecretError}. */
export function webhookKey(secret: string): Buffer {
  if (!secret.startsWith(webhookSecretPrefix)) {
    throw new WebhookSecretError('a webhook secret must start with "whsec_"');
  }
  const encoded = secret.slice(webhookSecretPrefix.length);
  if (encoded.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) {
    throw new WebhookSecretError('a webhook secret must be "whsec_" followed by standard base64');
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < minimumKeyBytes || key.length > maximumKeyBytes) {
    throw new WebhookSecretError(
      `a webhook secret must encode ${minimumKeyBytes} to ${maximumKeyBytes} bytes (it encodes ${key.length})`,
    );
  }
  return key;
}

/** The keys of several secrets, in order; the error names the secret's position, never its value. */
export function webhookKeys(secrets: readonly string[], where: string): Buffer[] {
  return secrets.map((secret, index) => {
    try {
      return webhookKey(secret);
    } catch (error) {
      const position = secrets.length === 1 ? '' : ` (secret ${index + 1} of ${secrets.length})`;
      throw new WebhookSecretError(`${where}${position}: ${(error as Error).message}`);
    }
  });
}

/** The bare base64 HMAC-SHA256 of `id.timestamp.body` with one key. */
function rawSignature(key: Buffer, id: string, timestamp: number, body: Buffer | string): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` value: `v1,<base64>` per key, space-separated, in the keys' order. */
export function webhookSignature(
  keys: readonly Buffer[],
  id: string,
  timestamp: number,
  body: Buffer | string,
): string {
  return keys.map((key) => `v1,${rawSignature(key, id, timestamp, body).toString('base64')}`).join(' ');
}

/** The three headers of one attempt (the timestamp is the attempt's, so a retry is signed afresh). */
export function webhookHeaders(
  keys: readonly Buffer[],
  id: string,
  body: Buffer | string,
  now: Date = new Date(),
): { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string } {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': webhookSignature(keys, id, timestamp, body),
  };
}

/** Why {@link verifyWebhook} refused a request. */
export type WebhookVerificationCode =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'bad_signature';

export class WebhookVerificationError extends Error {
  readonly code: WebhookVerificationCode;
  constructor(code: WebhookVerificationCode, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}

/** Node's `req.headers`, a plain record, or a Fetch `Headers`. */
export type WebhookRequestHeaders =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyWebhookOptions {
  /** The raw body, exactly as received (not re-serialised JSON). */
  readonly payload: string | Buffer | Uint8Array;
  readonly headers: WebhookRequestHeaders;
  /** One `whsec_` secret, or several during a rotation (any of them may have signed). */
  readonly secrets: string | readonly string[];
  /** How far the timestamp may be from now, either way (default 300 s). */
  readonly toleranceSeconds?: number;
  /** The current time (tests); default the clock. */
  readonly now?: Date;
}

function headerValue(headers: WebhookRequestHeaders, name: string): string | undefined {
  if (typeof headers.get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * Checks a Standard Webhooks request (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and returns the
 * parsed JSON body. Throws a {@link WebhookVerificationError} whose `code` says what was wrong. Signatures
 * are compared in constant time; a request signed with any of `secrets` passes.
 *
 * @example
 * const event = verifyWebhook({ payload: rawBody, headers: req.headers, secrets: process.env.WEBHOOK_SECRET });
 */
export function verifyWebhook<Payload = unknown>(options: VerifyWebhookOptions): Payload {
  const id = headerValue(options.headers, 'webhook-id');
  const timestampText = headerValue(options.headers, 'webhook-timestamp');
  const signatures = headerValue(options.headers, 'webhook-signature');
  if (!id || !timestampText || !signatures) {
    throw new WebhookVerificationError(
      'missing_headers',
      'the request lacks webhook-id, webhook-timestamp or webhook-signature',
    );
  }
  if (!/^\d{1,15}$/.test(timestampText)) {
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not Unix seconds');
  }
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (timestamp < now - tolerance) {
    throw new WebhookVerificationError('timestamp_too_old', 'the webhook timestamp is too old');
  }
  if (timestamp > now + tolerance) {
    throw new WebhookVerificationError('timestamp_too_new', 'the webhook timestamp is too new');
  }
  const secrets = typeof options.secrets === 'string' ? [options.secrets] : options.secrets;
  const body = Buffer.isBuffer(options.payload)
    ? options.payload
    : typeof options.payload === 'string'
      ? Buffer.from(options.payload, 'utf8')
      : Buffer.from(options.payload.buffer, options.payload.byteOffset, options.payload.byteLength);
  const expected = secrets.map((secret) => rawSignature(webhookKey(secret), id, timestamp, body));
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma === -1 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    // Every expected signature is compared, matching or not, so the time taken says nothing about which.
    let matched = false;
    for (const signature of expected) {
      if (given.length === signature.length && timingSafeEqual(given, signature)) matched = true;
    }
    if (matched) return JSON.parse(body.toString('utf8')) as Payload;
  }
  throw new WebhookVerificationError('bad_signature', 'no webhook signature matches');
}
