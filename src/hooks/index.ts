/** The hooks engine: events, payload formats, transports and run records. No HTTP-route knowledge. */

export {
  type HookAnswer,
  HookAnswerError,
  type HookHttpResponse,
  hookAnswerFrom,
  type MergedAnswer,
  mergeAnswers,
  parseHookAnswer,
  type UploadChange,
} from './chain/answers.ts';
export { type BlockingOutcome, rejectionByAnswer, rejectionFor } from './chain/rejections.ts';
export { composeHookParts, createHookEngine, type HookPartsOptions } from './compose-hooks.ts';
export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterReason,
  DeliveryControl,
  DeliveryNotice,
  DisabledReason,
  OutboxStats,
  RuntimeHttpTarget,
  TargetHealth,
  TargetState,
} from './delivery/delivery-control.ts';
export type { OutboxStore, OwedEntry, StoredDelivery, StoredEntry } from './delivery/outbox-store.ts';
export { HookEngine, type HookEngineOptions, type HookLogger } from './engine.ts';
export type { HooksConfig } from './engine-config.ts';
export { HookConfigError } from './errors.ts';
export {
  type HookEventName,
  type HookRequest,
  type HookUpload,
  isBlockingEvent,
  isUploadEventName,
  parseEventList,
  type UploadEvent,
  type UploadEventName,
  uploadEventNames,
} from './events.ts';
export {
  buildPayload,
  type DefaultPayload,
  formatPayload,
  type HookFormatName,
  hookFormatNames,
  isHookFormatName,
  type RustusUploadPayload,
  type TusdPayload,
  type V2Payload,
} from './formats/index.ts';
export {
  type FinalRunStatus,
  type RunListener,
  RunLog,
  type RunRecord,
  type RunStatus,
  runStatuses,
} from './history/run-log.ts';
export type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';
