/**
 * `wharf-uploads/webhooks`: what a receiver of Wharf's hooks needs, without loading the server. Verify a signed
 * request (Standard Webhooks) and read CloudEvents sent in binary mode.
 *
 * @example
 * import { verifyWebhook } from 'wharf-uploads/webhooks';
 * const payload = verifyWebhook({ payload: rawBody, headers: req.headers, secrets: [process.env.WEBHOOK_SECRET] });
 */

export type { CloudEvent, CloudEventAttributes, CloudEventData } from './hooks/formats/cloudevents.ts';
export { percentDecodeHeaderValue } from './hooks/transports/cloudevents-bindings.ts';
export {
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookRequestHeaders,
  type WebhookVerificationCode,
  WebhookVerificationError,
} from './hooks/transports/webhook-signature.ts';
