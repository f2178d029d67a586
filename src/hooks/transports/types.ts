import type { HookEventName, HookRequest } from '../events.ts';
import type { CloudEventEnvelope } from '../formats/cloudevents.ts';

/** What a transport needs to deliver one event to one target. */
export interface HookDelivery {
  readonly eventId: string;
  readonly event: HookEventName;
  /** The hook's name as the target sees it (argv, file name, `Hook-Name`). */
  readonly hook: string;
  readonly uploadId: string;
  /** The upload's event number, also in the payload (`UploadEvent.sequence`); brokers get it as a header. */
  readonly sequence?: number;
  /** The formatted payload, built once per event. */
  readonly payload: string;
  /** The client request, for proxied headers. */
  readonly request: HookRequest;
  /** Aborted when the engine closes: a transport stops what it is doing and answers `aborted`. */
  readonly signal: AbortSignal;
  /** Environment added for executables (upload offset/length, endpoint, a named hook's name and args). */
  readonly env?: Readonly<Record<string, string>>;
  /** How run records name the hook when it is not the event name (a named hook). */
  readonly label?: string;
  /** `--hooks-format cloudevents`: the mode, and in binary mode the attributes the transport sends as headers. */
  readonly cloudEvent?: CloudEventEnvelope;
}

/**
 * The typed result of one delivery. Transports describe what happened; the engine alone decides what it
 * means for the client (see `rejectionFor` in engine.ts).
 */
export type DeliveryResult =
  | {
      readonly kind: 'delivered';
      readonly exitCode?: number;
      readonly httpStatus?: number;
      /** What the hook answered (HTTP 2xx body, executable stdout); a blocking hook may answer JSON. */
      readonly answer?: string;
      /** The `webhook-delivery` response header (`disable` asks the sender to stop calling it). */
      readonly webhookDelivery?: string;
    }
  /** An executable ran and exited non-zero or was killed by a signal (not by our timeout). */
  | {
      readonly kind: 'exited';
      readonly exitCode: number | null;
      readonly signal: string | null;
      readonly stderr: string;
    }
  /** The executable does not exist or may not be executed. */
  | { readonly kind: 'not_runnable'; readonly detail: string }
  /** The executable could not be started for another reason (e.g. the payload is too long for argv). */
  | { readonly kind: 'spawn_failed'; readonly detail: string }
  /** An HTTP target answered with a non-2xx status. */
  | {
      readonly kind: 'responded';
      readonly httpStatus: number;
      readonly body: string;
      readonly contentType: string | null;
      /** The `Retry-After` response header: seconds or an HTTP date. */
      readonly retryAfter?: string;
      /** The `webhook-delivery` response header: `disable` (the target) or `abort-message` (this event). */
      readonly webhookDelivery?: string;
    }
  /** An HTTP target could not be reached or the exchange broke (DNS, refused, reset, bad URL). */
  | { readonly kind: 'unreachable'; readonly detail: string }
  | { readonly kind: 'timed_out'; readonly timeoutMs: number }
  | { readonly kind: 'aborted' };

/** One place a hook event can go: the hooks file, one file of the hooks dir, one HTTP url. */
export interface HookTransport {
  /** How run records and logs name the target: `file:/path`, `dir:/path/<hook>`, `http:<url>`. */
  describe(hook: string): string;
  deliver(delivery: HookDelivery): Promise<DeliveryResult>;
  /**
   * The request headers (lower-case names) {@link HookTransport.deliver} reads from `delivery.request.headers`;
   * absent: it may read any. The outbox stores only these with each event: the payload already carries what a
   * receiver sees of the request, and a broker target reads none (a stored event was twice its payload's size).
   */
  readonly requestHeaders?: readonly string[];
  /**
   * Loads the client library without connecting: awaited before the server listens, so that its one-off cost
   * (@platformatic/kafka compiles its option schemas when loaded: ~0.3 s of CPU) falls at start, not on the
   * requests of the first uploads. A failure is left for the first delivery to report.
   */
  load?(): Promise<void>;
  /** Connects (and declares what it must) ahead of the first event; a failure is only worth a warning. */
  open?(): Promise<void>;
  /** Releases connections the transport holds (brokers, kept-alive HTTP); called once when the engine closes. */
  close?(): Promise<void>;
  /**
   * false: stops keeping connections between deliveries, for a transport whose named hook was replaced
   * (engine.ts): idle ones close now, those in use when their delivery ends. Unlike close, deliveries still
   * work after it (a request that started with the replaced hooks), on connections that are not kept. true:
   * keeps them again (the hook's declaration came back, and its outbox target delivers through it again).
   */
  keepConnections?(keep: boolean): void;
}
