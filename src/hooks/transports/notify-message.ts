/**
 * The message of a `notify` named hook: a template rendered against the event payload, then shaped as the
 * chat or push service's incoming webhook documents it. Pure: the delivery (through the outbox) is elsewhere.
 */

export const notifyServices = ['slack', 'discord', 'teams', 'ntfy', 'json'] as const;
export type NotifyService = (typeof notifyServices)[number];

/** The HTTP request body (and its headers) one service expects. */
export interface NotifyRequest {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const placeholder = /\{\{\s*([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\s*\}\}/g;

/** One dotted path looked up in own properties only (no prototype, no getters called on a prototype). */
function lookup(payload: unknown, dotted: string): unknown {
  let value: unknown = payload;
  for (const key of dotted.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Replaces every `{{ a.b.c }}` with that value of the payload: a missing key (or null) renders empty, an object
 * as JSON. Nothing else is interpreted: no expressions, no helpers, no code.
 */
export function renderTemplate(template: string, payload: unknown): string {
  return template.replace(placeholder, (_, dotted: string) => text(lookup(payload, dotted)));
}

const json = { 'Content-Type': 'application/json' };

/** Discord refuses a `content` longer than 2000 characters. */
const discordLimit = 2000;

/**
 * The request for `service`: Slack `{"text"}`, Discord `{"content"}`, Teams an Adaptive Card message (what
 * Teams' Workflows incoming webhooks take), ntfy the plain text with a `Title` header, `json` `{"message"}`.
 */
export function notifyRequest(service: NotifyService, message: string, title?: string): NotifyRequest {
  switch (service) {
    case 'slack':
      return { headers: json, body: JSON.stringify({ text: message }) };
    case 'discord':
      return { headers: json, body: JSON.stringify({ content: message.slice(0, discordLimit) }) };
    case 'teams': {
      const blocks = [
        ...(title !== undefined ? [{ type: 'TextBlock', text: title, weight: 'Bolder', wrap: true }] : []),
        { type: 'TextBlock', text: message, wrap: true },
      ];
      const card = {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        body: blocks,
      };
      return {
        headers: json,
        body: JSON.stringify({
          type: 'message',
          attachments: [
            { contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card },
          ],
        }),
      };
    }
    case 'ntfy':
      return {
        // HTTP header values are Latin-1 and one line: anything else is dropped from the title.
        headers: {
          'Content-Type': 'text/plain; charset=utf-8',
          ...(title !== undefined ? { Title: title.replace(/[^\x20-\x7e\xa0-\xff]/g, '') } : {}),
        },
        body: message,
      };
    case 'json':
      return { headers: json, body: JSON.stringify({ message, ...(title !== undefined ? { title } : {}) }) };
  }
}
