import type { CloudEventEnvelope } from '../formats/cloudevents.ts';

/**
 * How each protocol binding of CloudEvents 1.0 carries an event: the content type, and in binary mode the
 * context attributes as headers (HTTP `ce-*`, AMQP `cloudEvents_*`, Kafka `ce_*`). Used by the transports.
 */

/** The JSON event format's media type (structured mode). */
export const structuredContentType = 'application/cloudevents+json; charset=UTF-8';
/** Binary mode's content type: the `datacontenttype` Wharf always uses. */
export const binaryContentType = 'application/json';

/** The message's content type: structured or binary. */
export function cloudEventContentType(envelope: CloudEventEnvelope): string {
  return envelope.mode === 'structured' ? structuredContentType : binaryContentType;
}

/**
 * HTTP binding §3.1.3.2: a header value percent-encodes space, `"`, `%` and every character outside
 * U+0021–U+007E, as its UTF-8 bytes (`%xy`).
 */
export function percentEncodeHeaderValue(value: string): string {
  let encoded = '';
  for (const character of value) {
    const code = character.codePointAt(0) ?? 0;
    if (code >= 0x21 && code <= 0x7e && character !== '"' && character !== '%') {
      encoded += character;
      continue;
    }
    for (const byte of Buffer.from(character, 'utf8')) {
      encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return encoded;
}

/** The inverse of {@link percentEncodeHeaderValue}, as a receiver decodes a `ce-*` header. */
export function percentDecodeHeaderValue(value: string): string {
  return decodeURIComponent(value);
}

/** HTTP: `Content-Type` and, in binary mode, one `ce-<attribute>` header per attribute. */
export function httpCloudEventHeaders(envelope: CloudEventEnvelope): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': cloudEventContentType(envelope) };
  if (envelope.mode === 'binary') {
    for (const [name, value] of Object.entries(envelope.attributes)) {
      headers[`ce-${name}`] = percentEncodeHeaderValue(value);
    }
  }
  return headers;
}

/**
 * AMQP: the AMQP 1.0 binding puts attributes in application-properties named `cloudEvents_<attribute>` (the
 * `_` form, which JMS selectors accept); on RabbitMQ's AMQP 0-9-1 that is the message's `headers` table. The
 * content type is the `content-type` property in both modes (structured: `application/cloudevents+json`).
 */
export function amqpCloudEventProperties(envelope: CloudEventEnvelope): {
  contentType: string;
  headers: Record<string, string>;
} {
  if (envelope.mode === 'structured') return { contentType: 'application/cloudevents+json', headers: {} };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.attributes)) headers[`cloudEvents_${name}`] = value;
  return { contentType: binaryContentType, headers };
}

/** Kafka: a `content-type` header and, in binary mode, one `ce_<attribute>` header per attribute. */
export function kafkaCloudEventHeaders(envelope: CloudEventEnvelope): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': cloudEventContentType(envelope) };
  if (envelope.mode === 'binary') {
    for (const [name, value] of Object.entries(envelope.attributes)) headers[`ce_${name}`] = value;
  }
  return headers;
}

/** Executables (file/dir hooks): binary attributes as `CE_<ATTRIBUTE>` environment variables. */
export function cloudEventEnvironment(envelope: CloudEventEnvelope | undefined): Record<string, string> {
  if (envelope?.mode !== 'binary') return {};
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.attributes)) env[`CE_${name.toUpperCase()}`] = value;
  return env;
}
