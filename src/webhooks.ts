/**
 * `wharf-uploads/webhooks`: what a receiver of Wharf's hooks needs, without loading the server. Verify a signed
 * request (Standard Webhooks) and read CloudEvents sent in binary mode.
 *
 * @example
 * import { verifyWebhook } from 'wharf-uploads/webhooks';
 * const payload = verifyWebhook({ payload: rawBody, headers: req.headers, secrets: [process.env.WEBHOOK_SECRET] });
 */
export { percentDecodeHeaderValue } from './hooks/cloudevents-bindings.ts';
export type { CloudEvent, CloudEventAttributes, CloudEventData } from './hooks/formats/cloudevents.ts';
export {
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookRequestHeaders,
  type WebhookVerificationCode,
  WebhookVerificationError,
} from './hooks/webhook-signature.ts';
